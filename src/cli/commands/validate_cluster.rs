//! `rafter validate cluster NAME [--wait D]`: the cluster's health (hosts or cloud, etcd,
//! then Kubernetes through its API), each problem on its own line with what to do. With `--wait`, checks again until the cluster passes
//! [`PASSES_IN_A_ROW`] times in a row or the time runs out. Exit codes tell "not healthy"
//! (7) from "cannot check" (1).

use std::time::{Duration, Instant};

use rafter::aws::AwsProvisioner;
use rafter::spec::{Cluster, Provider};
use rafter::state::{AnyStore, ClusterStore};
use rafter::validate::kubernetes::{self, Expected};
use rafter::validate::{self, Area, Finding, Report};

use crate::cli::args::{PlanFormat, ValidateClusterArgs};
use crate::cli::aws_apply::{aws_config, aws_region};
use crate::cli::durations::wait_duration;
use crate::cli::failure::{EXIT_UNHEALTHY, Failure};
use crate::cli::settings;

use super::admin_credential::AdminCredential;
use super::export_kubeconfig::api_server;
use super::stored_cluster;

/// How long validate's own admin certificate lasts: one check.
const CREDENTIAL_VALIDITY: time::Duration = time::Duration::minutes(10);

/// Passes in a row that count as healthy when waiting: one pass can be a moment between
/// two failures (a member restarting, an election).
pub const PASSES_IN_A_ROW: u32 = 3;
const PAUSE: Duration = Duration::from_secs(2);

pub async fn run(state: Option<&str>, args: ValidateClusterArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = args.name.as_str();
    let cluster = stored_cluster::load(&store, name).await?.cluster;
    let wait = wait_duration(&args.wait)?;
    let started = Instant::now();
    let mut passes = 0;
    let mut last_count = None;
    let report = loop {
        let report = check(&store, &cluster, &args).await?;
        passes = if report.healthy() { passes + 1 } else { 0 };
        let done = wait.is_zero() || passes >= PASSES_IN_A_ROW;
        if done || started.elapsed() + PAUSE > wait {
            break report;
        }
        if !report.healthy() && last_count != Some(report.findings.len()) {
            eprintln!(
                "Not healthy yet ({} problem(s), first: {} {}: {}); checking again for up to {}s…",
                report.findings.len(),
                report.findings[0].area.name(),
                report.findings[0].subject,
                report.findings[0].problem,
                wait.saturating_sub(started.elapsed()).as_secs()
            );
        }
        last_count = Some(report.findings.len());
        tokio::time::sleep(PAUSE).await;
    };
    print(name, &report, args.output)?;
    if report.healthy() {
        return Ok(());
    }
    let waited = match wait.is_zero() {
        true => String::new(),
        false => format!(" after waiting {}s", started.elapsed().as_secs()),
    };
    Err(Failure::new(
        EXIT_UNHEALTHY,
        format!(
            "cluster {name} is not healthy{waited}: {} problem(s)",
            report.findings.len()
        ),
    )
    .into())
}

async fn check(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    args: &ValidateClusterArgs,
) -> anyhow::Result<Report> {
    let (mut report, expected) = match cluster.spec.provider {
        Provider::Ssh => {
            let hosts =
                rafter::hosts::connect::every_host(cluster, args.hosts.accept_new_host_keys)
                    .await?;
            let report = validate::hosts::validate(cluster, &hosts).await;
            hosts.close().await;
            let (control_plane, workers) = rafter::hosts::inventory::hosts(cluster)
                .into_iter()
                .map(|entry| (entry.is_control_plane(), entry.name().to_string()))
                .partition::<Vec<_>, _>(|(control_plane, _)| *control_plane);
            let names =
                |hosts: Vec<(bool, String)>| hosts.into_iter().map(|(_, name)| name).collect();
            (
                report?,
                Expected {
                    control_plane: names(control_plane),
                    workers: names(workers),
                },
            )
        }
        Provider::Aws => {
            let config = aws_config(aws_region(cluster)?).await;
            let provisioner = AwsProvisioner::new(&config, &cluster.metadata.name);
            let recorded = store.read_resources(&cluster.metadata.name).await?;
            validate::aws::validate(&provisioner.context, store.store(), cluster, &recorded).await?
        }
    };
    kubernetes(store, cluster, &expected, &mut report).await?;
    Ok(report)
}

/// The Kubernetes checks, with an admin certificate valid for [`CREDENTIAL_VALIDITY`].
async fn kubernetes(
    store: &ClusterStore<AnyStore>,
    cluster: &Cluster,
    expected: &Expected,
    report: &mut Report,
) -> anyhow::Result<()> {
    let name = &cluster.metadata.name;
    let server = match api_server(store, cluster, false).await {
        Ok(server) => server,
        Err(error) => {
            report.findings.push(Finding {
                area: Area::Kubernetes,
                subject: name.clone(),
                problem: format!("has no API endpoint to ask: {error}"),
                fix: format!("`rafter update cluster {name} --yes`"),
            });
            return Ok(());
        }
    };
    let credential = AdminCredential::issue(
        store,
        cluster,
        server,
        "rafter:validate",
        CREDENTIAL_VALIDITY,
    )
    .await?;
    let access = credential.access();
    kubernetes::validate(&access, expected, report).await;
    Ok(())
}

fn print(name: &str, report: &Report, format: PlanFormat) -> anyhow::Result<()> {
    if format == PlanFormat::Json {
        let json = serde_json::json!({
            "cluster": name,
            "healthy": report.healthy(),
            "passed": report.passed,
            "findings": report.findings,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    if report.healthy() {
        println!(
            "Cluster {name} is healthy: {} checks passed.",
            report.passed.len()
        );
        for check in &report.passed {
            println!("  ok  {check}");
        }
        return Ok(());
    }
    println!(
        "Cluster {name} is not healthy: {} problem(s), {} check(s) passed.",
        report.findings.len(),
        report.passed.len()
    );
    for finding in &report.findings {
        println!(
            "  {} {}: {}\n      fix: {}",
            finding.area.name(),
            finding.subject,
            finding.problem,
            finding.fix
        );
    }
    Ok(())
}
