//! One file per command, named verb_noun.

mod admin_credential;
mod backup_etcd;
mod completion;
mod create_cluster;
mod delete_cluster;
mod export_bootstrap;
mod export_kubeconfig;
mod export_terraform;
mod get_backups;
mod get_certificates;
mod get_cluster;
mod get_clusters;
mod get_credentials;
mod man;
mod restore_etcd;
mod rolling_update_cluster;
mod stored_cluster;
mod update_cluster;
mod update_members_aws;
mod upgrade_cluster;
mod upgrade_cluster_aws;
mod validate_cluster;

use super::args::{
    BackupCommand, Cli, Command, CreateCommand, DeleteCommand, ExportCommand, GetCommand,
    RestoreCommand, RollingUpdateCommand, UpdateCommand, UpgradeCommand, ValidateCommand,
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let state = cli.state.as_deref();
    match cli.command {
        Command::Create(CreateCommand::Cluster(args)) => create_cluster::run(state, args).await,
        Command::Update(UpdateCommand::Cluster(args)) => update_cluster::run(state, args).await,
        Command::Get(GetCommand::Clusters(args)) => get_clusters::run(state, args).await,
        Command::Get(GetCommand::Cluster(args)) => get_cluster::run(state, args).await,
        Command::Get(GetCommand::Backups(args)) => get_backups::run(state, args).await,
        Command::Get(GetCommand::Certificates(args)) => get_certificates::run(state, args).await,
        Command::Get(GetCommand::Credentials(args)) => get_credentials::run(state, args).await,
        Command::Delete(DeleteCommand::Cluster(args)) => delete_cluster::run(state, args).await,
        Command::Export(ExportCommand::Terraform(args)) => export_terraform::run(state, args).await,
        Command::Export(ExportCommand::Kubeconfig(args)) => {
            export_kubeconfig::run(state, args).await
        }
        Command::Export(ExportCommand::Bootstrap(args)) => export_bootstrap::run(state, args).await,
        Command::Validate(ValidateCommand::Cluster(args)) => {
            validate_cluster::run(state, args).await
        }
        Command::Backup(BackupCommand::Etcd(args)) => backup_etcd::run(state, args).await,
        Command::Restore(RestoreCommand::Etcd(args)) => restore_etcd::run(state, args).await,
        Command::Upgrade(UpgradeCommand::Cluster(args)) => upgrade_cluster::run(state, args).await,
        Command::RollingUpdate(RollingUpdateCommand::Cluster(args)) => {
            rolling_update_cluster::run(state, args).await
        }
        Command::Completion(args) => completion::run(&args),
        Command::Man(args) => man::run(&args),
    }
}
