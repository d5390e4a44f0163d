//! `rafter get backups NAME`: a cluster's etcd backups, oldest first, with their age,
//! revision, keys, size, the member that took each and whether it was verified.

use rafter::backup::catalog;
use time::OffsetDateTime;

use crate::cli::args::{GetBackupsArgs, ListFormat};
use crate::cli::settings;

use super::stored_cluster;

pub async fn run(state: Option<&str>, args: GetBackupsArgs) -> anyhow::Result<()> {
    let store = settings::open_store(state).await?;
    let name = &args.name;
    stored_cluster::load(&store, name).await?;
    let catalog = catalog::list(store.store(), name).await?;
    match args.output {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&catalog.backups)?),
        ListFormat::Yaml => print!("{}", serde_saphyr::to_string(&catalog.backups)?),
        ListFormat::Table => print!("{}", table(&catalog.backups)),
    }
    if catalog.backups.is_empty() {
        eprintln!("Cluster {name} has no backups yet: `rafter backup etcd {name}` takes one.");
    }
    for id in &catalog.incomplete {
        eprintln!(
            "warning: backup {id} is incomplete (its run was interrupted); the next backup removes it"
        );
    }
    Ok(())
}

fn table(backups: &[rafter::backup::BackupRecord]) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut rows = vec![
        [
            "ID", "AGE", "REVISION", "KEYS", "SIZE", "MEMBER", "VERIFIED",
        ]
        .map(String::from),
    ];
    for backup in backups {
        rows.push([
            backup.id.clone(),
            age(now.saturating_sub(backup.taken_at_unix)),
            backup.facts.revision.to_string(),
            backup
                .facts
                .keys
                .map_or_else(|| "-".to_string(), |keys| keys.to_string()),
            size(backup.size),
            backup.member.clone(),
            backup.verified_text(),
        ]);
    }
    crate::cli::output::table(&rows)
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b < 10 * 1024 => format!("{b}B"),
        b if b < 10 * 1024 * 1024 => format!("{}KiB", b / 1024),
        b => format!("{}MiB", b / (1024 * 1024)),
    }
}

#[cfg(test)]
mod tests {
    use super::{age, size};

    #[test]
    fn ages_and_sizes_read_at_a_glance() {
        assert_eq!(age(59), "59s");
        assert_eq!(age(3600), "60m");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(3 * 86_400), "3d");
        assert_eq!(size(2048), "2048B");
        assert_eq!(size(2 * 1024 * 1024), "2048KiB");
        assert_eq!(size(20 * 1024 * 1024), "20MiB");
    }
}
