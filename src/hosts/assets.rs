//! Assets that live on the operator's machine (`file://` addresses in `spec.assets`, an
//! air-gapped site's local cache): checked against their SHA-256 here, uploaded once into the
//! host's verified download cache, where the node's bootstrap finds them instead of
//! downloading (and checks them again).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::bootstrap::assets::{self, Download, NodeNeeds};
use crate::spec::Cluster;
use crate::ssh::Session;

use super::HostsError;

/// The host's cache of verified downloads (`RAFTER_ASSET_CACHE` of the bootstrap script).
pub const HOST_CACHE: &str = "/var/cache/rafter/assets";

/// The machine architecture the asset list calls `uname -m`.
pub fn asset_arch(uname: &str) -> Option<&'static str> {
    match uname {
        "x86_64" | "amd64" => Some("amd64"),
        "aarch64" | "arm64" => Some("arm64"),
        _ => None,
    }
}

/// The downloads of a node of this kind and architecture that come from the operator's disk.
pub fn local_downloads(
    cluster: &Cluster,
    needs: NodeNeeds,
    arch: &str,
) -> Result<Vec<Download>, HostsError> {
    let per_arch = assets::downloads(cluster, needs)?;
    Ok(per_arch
        .into_iter()
        .filter(|(candidate, _)| *candidate == arch)
        .flat_map(|(_, files)| files)
        .filter(|file| file.url.starts_with("file://"))
        .collect())
}

fn remote_path(download: &Download) -> Result<(PathBuf, String), HostsError> {
    let local = PathBuf::from(download.url.trim_start_matches("file://"));
    let Some(sha256) = &download.sha256 else {
        return Err(HostsError::Setup(format!(
            "{} comes from {} but has no SHA-256: give one in spec.assets.files",
            download.name, download.url
        )));
    };
    let file_name = local
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| download.name.clone());
    Ok((local, format!("{HOST_CACHE}/{sha256}-{file_name}")))
}

/// The `downloads` the host does not hold yet in its verified cache (one command for all).
pub async fn missing(
    session: &Session,
    downloads: &[Download],
) -> Result<Vec<Download>, HostsError> {
    if downloads.is_empty() {
        return Ok(Vec::new());
    }
    let mut checklist = String::new();
    let mut remotes = Vec::new();
    for download in downloads {
        let (_, remote) = remote_path(download)?;
        let sha256 = download.sha256.as_deref().unwrap_or_default();
        checklist.push_str(&format!("{sha256}  {remote}\n"));
        remotes.push(remote);
    }
    // `PATH: OK` for each verified file; anything else is missing or damaged.
    let output = session
        .run_as_root(
            "sha256sum --check 2>/dev/null || true",
            checklist.as_bytes(),
        )
        .await?;
    let verified = output.stdout_text();
    Ok(downloads
        .iter()
        .zip(remotes)
        .filter(|(_, remote)| !verified.lines().any(|line| line == format!("{remote}: OK")))
        .map(|(download, _)| download.clone())
        .collect())
}

/// A local file's content once read and verified (filled by the first host that needs it).
type Verified = Arc<tokio::sync::OnceCell<Arc<Vec<u8>>>>;

/// Local asset files, each read and checked against its digest once per run however many
/// hosts receive it.
#[derive(Default)]
pub struct LocalFiles {
    verified: tokio::sync::Mutex<HashMap<PathBuf, Verified>>,
}

impl LocalFiles {
    /// The content of `download`'s local file, verified against its SHA-256.
    async fn content(&self, download: &Download) -> Result<Arc<Vec<u8>>, HostsError> {
        let (local, _) = remote_path(download)?;
        let cell = {
            let mut verified = self.verified.lock().await;
            Arc::clone(verified.entry(local.clone()).or_default())
        };
        cell.get_or_try_init(|| read_verified(download, local))
            .await
            .cloned()
    }
}

async fn read_verified(download: &Download, local: PathBuf) -> Result<Arc<Vec<u8>>, HostsError> {
    let sha256 = download.sha256.as_deref().unwrap_or_default();
    let content = tokio::fs::read(&local).await.map_err(|error| {
        HostsError::Setup(format!(
            "cannot read {} for {}: {error}",
            local.display(),
            download.name
        ))
    })?;
    let actual = format!("{:x}", Sha256::digest(&content));
    if actual != sha256 {
        return Err(HostsError::Setup(format!(
            "{} ({}) has SHA-256 {actual}, not the pinned {sha256}; nothing was uploaded (check the file, or the digest in spec.assets.files)",
            download.name,
            local.display()
        )));
    }
    Ok(Arc::new(content))
}

/// Uploads each of `downloads` the host does not hold yet; returns how many were sent.
pub async fn upload(
    session: &Session,
    downloads: &[Download],
    files: &LocalFiles,
) -> Result<usize, HostsError> {
    let missing = missing(session, downloads).await?;
    for download in &missing {
        let (_, remote) = remote_path(download)?;
        let content = files.content(download).await?;
        session.upload(&remote, &content, 0o644).await?;
    }
    Ok(missing.len())
}
