//! The command-line grammar (`rafter VERB NOUN`, as kops and kubectl).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rafter",
    version,
    about = "Provision highly-available Kubernetes clusters from one declarative spec"
)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    /// State store: file:///dir, a directory, or s3://bucket/prefix
    /// [default: $XDG_STATE_HOME/rafter or ~/.local/state/rafter]
    #[arg(long, global = true, env = "RAFTER_STATE", value_name = "URL")]
    pub state: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a cluster (stores its spec and shows the plan; --yes applies it)
    #[command(subcommand)]
    Create(CreateCommand),
    /// Converge a cluster to its spec (shows the plan; --yes applies it)
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Show clusters and their specs
    #[command(subcommand)]
    Get(GetCommand),
    /// Delete a cluster (shows what would go; --yes deletes)
    #[command(subcommand)]
    Delete(DeleteCommand),
    /// Write a cluster out in another form
    #[command(subcommand)]
    Export(ExportCommand),
    /// Check that a cluster is healthy (with --wait, until it is)
    #[command(subcommand)]
    Validate(ValidateCommand),
    /// Take a backup now
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Bring a cluster back from a backup (shows the plan; --yes restores)
    #[command(subcommand)]
    Restore(RestoreCommand),
    /// Move a cluster to new Kubernetes or etcd versions, one host at a time (shows the
    /// plan; --yes upgrades)
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Replace out-of-date AWS instances one at a time, each behind a gate (shows the plan;
    /// --yes replaces)
    #[command(subcommand, name = "rolling-update")]
    RollingUpdate(RollingUpdateCommand),
    /// Print the shell completion script for SHELL (e.g. `rafter completion bash >
    /// /etc/bash_completion.d/rafter`)
    Completion(CompletionArgs),
    /// Write rafter's manual pages (rafter.1 and one per command) into a directory
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where the pages go (made if missing)
    #[arg(long, value_name = "DIR", default_value = "man")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum RollingUpdateCommand {
    /// Control-plane members whose launch template changed (or all, --force), one at a time
    Cluster(RollingUpdateClusterArgs),
}

#[derive(Debug, Args)]
pub struct RollingUpdateClusterArgs {
    pub name: String,
    /// Only this group: a control-plane member (eu-west-1a) or an auto-scaling group's name;
    /// repeat for more
    #[arg(long = "instance-group", value_name = "GROUP")]
    pub instance_groups: Vec<String>,
    /// Replace instances even if their launch template is current
    #[arg(long)]
    pub force: bool,
    /// How many of a node group's instances are replaced at once (their replacements are
    /// launched before they go)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_surge: u32,
    /// Terminate node groups' instances without draining their nodes first (when the API
    /// server cannot be reached): their pods stop with the instance
    #[arg(long)]
    pub no_drain: bool,
    /// The longest one node's drain may take before the update stops (e.g. 10m)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub drain_timeout: String,
    /// Replace (without it, only show the plan)
    #[arg(long)]
    pub yes: bool,
    /// Break a lock whose lease has run out; with =ID, break that lock even if live (the id
    /// the refusal printed). A lock whose holder ran here and is gone is broken anyway.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// A quorum-checked, resumable rolling upgrade (bare hosts)
    Cluster(UpgradeClusterArgs),
}

#[derive(Debug, Args)]
pub struct UpgradeClusterArgs {
    pub name: String,
    /// A spec overlaying the stored one: new versions and their spec.assets.files overrides
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The Kubernetes version to upgrade to (one minor at a time)
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// The etcd version to upgrade to (one minor at a time)
    #[arg(long, value_name = "VERSION")]
    pub etcd_version: Option<String>,
    /// How many workers are upgraded at once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_unavailable: u32,
    /// AWS: how many of a node group's instances are replaced at once (their replacements
    /// are launched before they go)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_surge: u32,
    /// Upgrade workers without cordoning and draining them first (when the API server cannot
    /// be reached): their pods stop while the kubelet restarts
    #[arg(long)]
    pub no_drain: bool,
    /// The longest one worker's drain may take before the upgrade stops (e.g. 10m)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub drain_timeout: String,
    /// Upgrade (without it, only show the plan)
    #[arg(long)]
    pub yes: bool,
    /// Break a lock whose lease has run out; with =ID, break that lock even if live (the id
    /// the refusal printed). A lock whose holder ran here and is gone is broken anyway.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Subcommand)]
pub enum ValidateCommand {
    /// Hosts, etcd and cloud resources checked against the spec, each problem with its fix
    Cluster(ValidateClusterArgs),
}

#[derive(Debug, Args)]
pub struct ValidateClusterArgs {
    pub name: String,
    /// Check again until the cluster passes 3 times in a row, for at most this long (e.g. 10m)
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub wait: String,
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Snapshot the cluster's etcd into the state store, verify it, and apply retention
    Etcd(BackupEtcdArgs),
}

#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Restore every etcd member from one backup (every write after it is lost)
    Etcd(RestoreEtcdArgs),
}

#[derive(Debug, Args)]
pub struct BackupEtcdArgs {
    pub name: String,
    /// Verify an existing backup (restore it into a scratch etcd) instead of taking one
    #[arg(long, value_name = "BACKUP")]
    pub verify: Option<String>,
    /// Store the new backup without verifying it
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    /// On AWS: how long to wait for the leading member to take the backup (e.g. 5m)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
    /// Break a lock whose lease has run out; with =ID, break that lock even if live (the id
    /// the refusal printed). A lock whose holder ran here and is gone is broken anyway.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Args)]
pub struct RestoreEtcdArgs {
    pub name: String,
    /// The backup to restore (an id from `rafter get backups NAME`)
    #[arg(long, value_name = "BACKUP")]
    pub from: String,
    /// Restore (without it, only show the plan)
    #[arg(long)]
    pub yes: bool,
    /// On AWS: how long each gate waits for the members' reports (that every member restored,
    /// then that the restored cluster is healthy) before the restore stops (e.g. 15m)
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub gate_timeout: String,
    /// Break a lock whose lease has run out; with =ID, break that lock even if live (the id
    /// the refusal printed). A lock whose holder ran here and is gone is broken anyway.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Args)]
pub struct GetBackupsArgs {
    pub name: String,
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a cluster from a spec file, a profile and flags
    Cluster(Box<CreateClusterArgs>),
}

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Plan (and with --yes apply) the changes that bring a cluster to its spec
    Cluster(UpdateClusterArgs),
}

#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// List the clusters of the state store
    Clusters(GetClustersArgs),
    /// Print one cluster's full spec (valid input for `create cluster -f`)
    Cluster(GetClusterArgs),
    /// List a cluster's certificate authorities and when they expire
    Certificates(GetCertificatesArgs),
    /// List a cluster's etcd backups: age, revision, size, and whether each was verified
    Backups(GetBackupsArgs),
    /// Print a short-lived admin credential for kubectl (the plugin `export kubeconfig --exec` sets up)
    Credentials(GetCredentialsArgs),
}

#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Delete a cluster and everything rafter made for it
    Cluster(DeleteClusterArgs),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write a cluster's resources as a Terraform module
    Terraform(ExportTerraformArgs),
    /// Merge the cluster's context into a kubeconfig file
    Kubeconfig(ExportKubeconfigArgs),
    /// Write exactly the files one node receives (for audit, or to bootstrap a node by hand)
    Bootstrap(ExportBootstrapArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpecFormat {
    Yaml,
    Json,
}

/// Flags that overlay the profile and the spec file.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Spec file (YAML); overlays the profile
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Profile to start from: dev-aws, ha-aws, ha-ssh, or a path to a .yaml file
    #[arg(long)]
    pub profile: Option<String>,
    /// Cluster name, a DNS name such as prod.example.com
    #[arg(long)]
    pub name: Option<String>,
    /// Availability zones, comma-separated (the region is taken from them)
    #[arg(long, value_delimiter = ',', value_name = "ZONES")]
    pub zones: Option<Vec<String>>,
    /// Size of every node group (sets minSize and maxSize)
    #[arg(long, value_name = "N")]
    pub node_count: Option<u32>,
    /// Number of control-plane nodes: 1, 3, 5 or 7
    #[arg(long, value_name = "N")]
    pub control_plane_count: Option<u32>,
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// The etcd release of the control plane (default: the one rafter's asset list pins)
    #[arg(long, value_name = "VERSION")]
    pub etcd_version: Option<String>,
    /// Route53 zone for api.<name> and api.internal.<name>
    #[arg(long, value_name = "ZONE")]
    pub dns_zone: Option<String>,
    /// VPC CIDR block
    #[arg(long, value_name = "CIDR")]
    pub network_cidr: Option<String>,
    /// Instance type of every node group
    #[arg(long, value_name = "TYPE")]
    pub node_size: Option<String>,
    /// Instance type of the control plane
    #[arg(long, value_name = "TYPE")]
    pub control_plane_size: Option<String>,
    /// private (nodes behind NAT) or public
    #[arg(long)]
    pub topology: Option<String>,
    /// OpenSSH public key file to install on instances
    #[arg(long, value_name = "FILE")]
    pub ssh_public_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateClusterArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Apply the plan (without it nothing is created in the cloud)
    #[arg(long)]
    pub yes: bool,
    /// Only show the plan: do not store the spec either
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// How long `--yes` waits for the auto-scaling groups' instances to be in service
    /// (e.g. 10m; 0s: do not wait)
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub capacity_timeout: String,
    /// How long `--yes` then waits for the control-plane members to report a healthy etcd,
    /// as `validate cluster` judges it (e.g. 15m; 0s: do not wait)
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub etcd_timeout: String,
    /// Plan output format
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    #[command(flatten)]
    pub hosts: HostArgs,
}

/// How `provider: ssh` clusters are reached and which phases run.
#[derive(Debug, Args, Default, Clone)]
pub struct HostArgs {
    /// Trust a host seen for the first time and record its key in known_hosts (a changed key
    /// is always refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Phases to leave out on bare hosts: files, node, etcd, control-plane, workers, addons
    #[arg(long, value_delimiter = ',', value_name = "PHASE")]
    pub skip_phases: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateClusterArgs {
    pub name: String,
    /// A new spec for the cluster (as printed by `get cluster NAME -o yaml`, edited)
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply the plan
    #[arg(long)]
    pub yes: bool,
    /// Break a lock whose lease has run out; with =ID, break that lock even if live (the id
    /// the refusal printed). A lock whose holder ran here and is gone is broken anyway.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,
    /// How long `--yes` waits for the auto-scaling groups' instances to be in service
    /// (e.g. 10m; 0s: do not wait)
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub capacity_timeout: String,
    /// Check which recorded AWS resources still exist before planning (false: plan against
    /// the record alone, without AWS calls)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub refresh: bool,
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Args)]
pub struct GetClustersArgs {
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct GetClusterArgs {
    pub name: String,
    #[arg(short, long, value_enum, default_value_t = SpecFormat::Yaml)]
    pub output: SpecFormat,
}

#[derive(Debug, Args)]
pub struct DeleteClusterArgs {
    pub name: String,
    /// Really delete
    #[arg(long)]
    pub yes: bool,
    /// Break a lock whose lease has run out; with =ID, break that lock even if live (the id
    /// the refusal printed). A lock whose holder ran here and is gone is broken anyway.
    #[arg(long, value_name = "ID", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub force_unlock: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportTerraformArgs {
    pub name: String,
    /// Directory to write the module to (replaced if rafter wrote it before)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportKubeconfigArgs {
    pub name: String,
    /// Also export an admin client certificate valid this long (e.g. 18h, 30m, 7d)
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "18h", require_equals = true)]
    pub admin: Option<String>,
    /// The kubeconfig file to merge into (default: $KUBECONFIG, else ~/.kube/config)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Use the API's internal name (api.internal.<name>), for clients inside the VPC
    #[arg(long)]
    pub internal: bool,
    /// Keep no key in the file: kubectl asks `rafter get credentials` for a short-lived admin
    /// certificate when it needs one
    #[arg(long, conflicts_with = "admin")]
    pub exec: bool,
}

#[derive(Debug, Args)]
pub struct GetCredentialsArgs {
    pub name: String,
    /// How long the certificate is valid (e.g. 1h, 30m)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub valid_for: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeRoleArg {
    ControlPlane,
    Worker,
}

#[derive(Debug, Args)]
pub struct ExportBootstrapArgs {
    pub name: String,
    #[arg(long, value_enum)]
    pub role: NodeRoleArg,
    /// The host (bare hosts) or node group (AWS workers); default: the first of the role
    #[arg(long, value_name = "N")]
    pub node: Option<String>,
    /// Directory to write the node's files under, laid out as on the node (made 0700)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write DIR/bundle.sh: all files in one script that writes them and runs the bootstrap
    #[arg(long)]
    pub bundle: bool,
}

#[derive(Debug, Args)]
pub struct GetCertificatesArgs {
    pub name: String,
}
