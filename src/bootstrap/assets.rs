//! rafter's asset list (`asset-list.yaml`, embedded): every file a node downloads and every
//! image it runs, pinned by version, with SHA-256 digests per architecture; resolved for one
//! cluster with its mirrors and per-file overrides (`spec.assets`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::spec::{Addons, AssetOverride, Assets, Cluster, Cni};

const ASSET_LIST: &str = include_str!("asset-list.yaml");

/// The machine architectures rafter installs.
pub const ARCHITECTURES: [&str; 2] = ["amd64", "arm64"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssetList {
    files: Vec<FileEntry>,
    images: BTreeMap<String, String>,
    minor_images: BTreeMap<String, MinorImage>,
    versions: BTreeMap<String, String>,
}

/// An image released once per Kubernetes minor: `{release}` in `image` becomes the release
/// pinned for the cluster's minor.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MinorImage {
    image: String,
    /// Kubernetes minor (`1.34`) -> release (`1.34.3`).
    releases: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileEntry {
    name: String,
    kind: InstallKind,
    dest: String,
    /// Leading path components an archive's entries lose when unpacked.
    #[serde(default)]
    strip: u8,
    nodes: Needed,
    #[serde(default)]
    cni: Option<Cni>,
    /// A version, or `kubernetes` (`etcd`) for the cluster's Kubernetes (etcd) version.
    version: String,
    url: String,
    #[serde(default)]
    sha256: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default = "pinned_by_default")]
    pinned: bool,
}

fn pinned_by_default() -> bool {
    true
}

/// Which nodes download a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Needed {
    All,
    ControlPlane,
    /// Only the node that applies the cluster's add-ons.
    Addons,
}

/// How the bootstrap script installs a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallKind {
    /// An executable at `dest`.
    Binary,
    /// A `.tar.gz` unpacked into the directory `dest`.
    Archive,
    /// A plain file at `dest`.
    File,
}

/// What a node is, as far as its downloads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeNeeds {
    pub control_plane: bool,
    pub applies_addons: bool,
}

/// One file for one architecture, as the bootstrap script installs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Download {
    pub name: String,
    pub version: String,
    pub kind: InstallKind,
    pub dest: String,
    /// Leading path components an archive's entries lose when unpacked.
    pub strip: u8,
    pub url: String,
    /// `None` only for files the asset list pins by version tag alone.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    #[error(
        "rafter has no SHA-256 of {name} {version} for {arch} (it has them for {known}); give it in spec.assets.files (name: {name}, sha256: {{{arch}: …}}) or use a version rafter lists"
    )]
    NoDigest {
        name: String,
        version: String,
        arch: String,
        known: String,
    },
    #[error("the asset list has no image `{0}`")]
    NoImage(String),
    #[error(
        "rafter pins no {name} for Kubernetes {kubernetes} (it pins releases for Kubernetes {known})"
    )]
    NoRelease {
        name: String,
        kubernetes: String,
        known: String,
    },
    #[error("rafter's embedded asset list does not parse: {0}")]
    Unreadable(String),
}

/// The embedded list, parsed once. It is part of the binary (the tests below prove it
/// parses), but a broken one is an error, never an empty list.
fn asset_list() -> Result<&'static AssetList, AssetError> {
    static LIST: OnceLock<Result<AssetList, String>> = OnceLock::new();
    LIST.get_or_init(|| serde_saphyr::from_str(ASSET_LIST).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| AssetError::Unreadable(error.clone()))
}

/// The names `spec.assets.files` may override.
pub fn file_names() -> Result<Vec<&'static str>, AssetError> {
    Ok(asset_list()?
        .files
        .iter()
        .map(|file| file.name.as_str())
        .collect())
}

/// The versions of file `name` whose digests the asset list pins.
pub fn listed_versions(name: &str) -> Result<Vec<&'static str>, AssetError> {
    Ok(asset_list()?
        .files
        .iter()
        .filter(|file| file.name == name)
        .flat_map(|file| file.sha256.keys().map(String::as_str))
        .collect())
}

/// A version the asset list pins outside images (e.g. `cilium`).
pub fn pinned_version(name: &str) -> Result<Option<&'static str>, AssetError> {
    Ok(asset_list()?.versions.get(name).map(String::as_str))
}

/// `https://host/path` moved under a mirror: `<repository>/host/path`.
fn mirrored(url: &str, repository: Option<&str>) -> String {
    match (repository, url.split_once("://")) {
        (Some(repository), Some((_, rest))) => {
            format!("{}/{rest}", repository.trim_end_matches('/'))
        }
        _ => url.to_string(),
    }
}

fn fill(pattern: &str, version: &str, arch: &str) -> String {
    pattern
        .replace("{version}", version)
        .replace("{arch}", arch)
}

fn override_for<'a>(assets: &'a Assets, name: &str) -> Option<&'a AssetOverride> {
    assets.files.iter().find(|entry| entry.name == name)
}

/// Every download of a node of `cluster`, per architecture in [`ARCHITECTURES`] order.
pub fn downloads(
    cluster: &Cluster,
    needs: NodeNeeds,
) -> Result<Vec<(&'static str, Vec<Download>)>, AssetError> {
    let spec = &cluster.spec;
    let wanted = asset_list()?.files.iter().filter(|file| {
        let for_node = match file.nodes {
            Needed::All => true,
            Needed::ControlPlane => needs.control_plane,
            Needed::Addons => needs.applies_addons,
        };
        for_node && file.cni.is_none_or(|cni| cni == spec.networking.cni)
    });
    let wanted: Vec<&FileEntry> = wanted.collect();
    ARCHITECTURES
        .iter()
        .map(|arch| {
            let files = wanted
                .iter()
                .map(|file| download(file, cluster, arch))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((*arch, files))
        })
        .collect()
}

fn download(file: &FileEntry, cluster: &Cluster, arch: &str) -> Result<Download, AssetError> {
    let spec = &cluster.spec;
    let version = match file.version.as_str() {
        "kubernetes" => spec.kubernetes_version.trim_start_matches('v').to_string(),
        "etcd" => spec.etcd.version.trim_start_matches('v').to_string(),
        pinned => pinned.to_string(),
    };
    let overridden = override_for(&spec.assets, &file.name);
    let url = match overridden.and_then(|entry| entry.url.as_deref()) {
        Some(pattern) => fill(pattern, &version, arch),
        None => mirrored(
            &fill(&file.url, &version, arch),
            spec.assets.file_repository.as_deref(),
        ),
    };
    let given = overridden.and_then(|entry| match arch {
        "amd64" => entry.sha256.amd64.clone(),
        _ => entry.sha256.arm64.clone(),
    });
    let listed = file
        .sha256
        .get(&version)
        .and_then(|digests| digests.get(arch))
        .cloned();
    let sha256 = match given.or(listed) {
        Some(digest) => Some(digest.to_ascii_lowercase()),
        None if !file.pinned => None,
        None => {
            return Err(AssetError::NoDigest {
                name: file.name.clone(),
                version,
                arch: arch.to_string(),
                known: file.sha256.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
    };
    Ok(Download {
        name: file.name.clone(),
        version,
        kind: file.kind,
        dest: file.dest.clone(),
        strip: file.strip,
        url,
        sha256,
    })
}

/// The images each AWS add-on that is on runs, with its field under `spec.addons`.
pub fn addon_images(addons: &Addons) -> Vec<(&'static str, &'static str)> {
    addons
        .each()
        .into_iter()
        .filter(|addon| addon.enabled)
        .flat_map(|addon| match addon.name {
            // The driver's own image is the first of them.
            "aws-ebs-csi-driver" => EBS_CSI_IMAGES
                .iter()
                .map(|(_, image)| (*image, addon.field))
                .collect::<Vec<_>>(),
            name => vec![(name, addon.field)],
        })
        .collect()
}

/// The EBS CSI driver's images: (its manifest's name for it, the asset list's).
pub const EBS_CSI_IMAGES: [(&str, &str); 6] = [
    ("driver", "aws-ebs-csi-driver"),
    ("provisioner", "csi-provisioner"),
    ("attacher", "csi-attacher"),
    ("resizer", "csi-resizer"),
    ("livenessprobe", "csi-livenessprobe"),
    ("node_driver_registrar", "csi-node-driver-registrar"),
];

/// The release of a per-minor image for Kubernetes `version`: its own minor's, else the
/// previous minor's (a component one minor older than the API server is within Kubernetes'
/// version skew policy).
fn minor_release<'a>(
    name: &str,
    entry: &'a MinorImage,
    version: &str,
) -> Result<&'a str, AssetError> {
    let no_release = || AssetError::NoRelease {
        name: name.to_string(),
        kubernetes: version.to_string(),
        known: entry
            .releases
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    };
    let parsed =
        crate::spec::versions::parse_kubernetes_version(version).map_err(|_| no_release())?;
    [parsed.minor, parsed.minor.saturating_sub(1)]
        .iter()
        .find_map(|minor| entry.releases.get(&format!("{}.{minor}", parsed.major)))
        .map(String::as_str)
        .ok_or_else(no_release)
}

/// The image `name` of the asset list for `cluster`, from its mirror if it has one.
pub fn image(cluster: &Cluster, name: &str) -> Result<String, AssetError> {
    let list = asset_list()?;
    let version = cluster.spec.kubernetes_version.trim_start_matches('v');
    let reference = match (list.images.get(name), list.minor_images.get(name)) {
        (Some(pattern), _) => pattern.replace("{kubernetes}", version),
        (None, Some(entry)) => entry
            .image
            .replace("{release}", minor_release(name, entry, version)?),
        (None, None) => return Err(AssetError::NoImage(name.to_string())),
    };
    Ok(match cluster.spec.assets.container_registry.as_deref() {
        // `registry.k8s.io/coredns/coredns:v1` -> `<mirror>/coredns/coredns:v1`
        Some(mirror) => match reference.split_once('/') {
            Some((_, path)) => format!("{}/{path}", mirror.trim_end_matches('/')),
            None => reference,
        },
        None => reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ArchDigests, ClusterSpec, Metadata};

    fn cluster(version: &str) -> Cluster {
        Cluster {
            api_version: crate::spec::API_VERSION.to_string(),
            kind: crate::spec::KIND.to_string(),
            metadata: Metadata {
                name: "assets.example.com".to_string(),
            },
            spec: ClusterSpec {
                kubernetes_version: version.to_string(),
                ..ClusterSpec::default()
            },
        }
    }

    const WORKER: NodeNeeds = NodeNeeds {
        control_plane: false,
        applies_addons: false,
    };

    #[test]
    fn the_asset_list_parses_and_every_digest_is_sha256() {
        let list: AssetList = serde_saphyr::from_str(ASSET_LIST).unwrap();
        assert!(!list.files.is_empty());
        for file in &list.files {
            assert_eq!(file.pinned, !file.sha256.is_empty(), "{}", file.name);
            for (version, digests) in &file.sha256 {
                assert_eq!(
                    digests.keys().map(String::as_str).collect::<Vec<_>>(),
                    ARCHITECTURES,
                    "{} {version}",
                    file.name
                );
                for digest in digests.values() {
                    assert_eq!(digest.len(), 64, "{} {version}", file.name);
                    assert!(digest.bytes().all(|byte| byte.is_ascii_hexdigit()));
                }
            }
        }
    }

    #[test]
    fn per_minor_images_take_the_minors_release_or_the_one_before() {
        let image = |version: &str| super::image(&cluster(version), "aws-cloud-controller-manager");
        assert_eq!(
            image("1.34.2").unwrap(),
            "registry.k8s.io/provider-aws/cloud-controller-manager:v1.34.3"
        );
        // No 1.37 line yet: 1.36's, one minor older, within the version skew policy.
        assert_eq!(
            image("1.37.0").unwrap(),
            "registry.k8s.io/provider-aws/cloud-controller-manager:v1.36.1"
        );
        // Two minors past the newest: none.
        let error = image("1.38.0").unwrap_err().to_string();
        assert!(
            error.contains("pins no aws-cloud-controller-manager for Kubernetes 1.38.0"),
            "{error}"
        );
        // Every supported minor has one.
        for minor in
            crate::spec::versions::MIN_SUPPORTED_MINOR..=crate::spec::versions::MAX_SUPPORTED_MINOR
        {
            for name in ["aws-cloud-controller-manager", "cluster-autoscaler"] {
                super::image(&cluster(&format!("1.{minor}.0")), name).unwrap();
            }
        }
    }

    #[test]
    fn the_default_kubernetes_version_is_fully_pinned() {
        let cluster = cluster(crate::spec::versions::DEFAULT_KUBERNETES_VERSION);
        for (_, files) in downloads(&cluster, WORKER).unwrap() {
            assert!(files.iter().all(|file| file.sha256.is_some()));
            assert!(files.iter().any(|file| file.name == "kubelet"));
            assert!(!files.iter().any(|file| file.name == "kubectl"));
        }
    }

    #[test]
    fn the_default_etcd_version_is_fully_pinned_and_follows_the_spec() {
        let control_plane = NodeNeeds {
            control_plane: true,
            applies_addons: false,
        };
        let mut cluster = cluster(crate::spec::versions::DEFAULT_KUBERNETES_VERSION);
        for (_, files) in downloads(&cluster, control_plane).unwrap() {
            let etcd = files.iter().find(|file| file.name == "etcd").unwrap();
            assert_eq!(etcd.version, crate::spec::versions::DEFAULT_ETCD_VERSION);
            assert!(etcd.sha256.is_some());
        }
        cluster.spec.etcd.version = "3.4.23".to_string();
        let message = downloads(&cluster, control_plane).unwrap_err().to_string();
        assert!(message.contains("etcd 3.4.23 for amd64"), "{message}");
    }

    #[test]
    fn a_version_without_digests_is_refused_naming_the_fix() {
        let error = downloads(&cluster("1.33.1"), WORKER).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("kubelet 1.33.1 for amd64"), "{message}");
        assert!(message.contains("spec.assets.files"), "{message}");
    }

    #[test]
    fn overrides_and_mirrors_apply() {
        let mut cluster = cluster("1.33.1");
        cluster.spec.assets = Assets {
            file_repository: Some("https://mirror.internal/files/".to_string()),
            container_registry: Some("mirror.internal:5000/k8s".to_string()),
            files: vec![AssetOverride {
                name: "kubelet".to_string(),
                url: Some("https://bin.internal/{version}/{arch}/kubelet".to_string()),
                sha256: ArchDigests {
                    amd64: Some("AB".repeat(32)),
                    arm64: Some("cd".repeat(32)),
                },
            }],
        };
        let per_arch = downloads(&cluster, WORKER).unwrap();
        let (arch, files) = &per_arch[0];
        assert_eq!(*arch, "amd64");
        let kubelet = files.iter().find(|file| file.name == "kubelet").unwrap();
        assert_eq!(kubelet.url, "https://bin.internal/1.33.1/amd64/kubelet");
        assert_eq!(kubelet.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        let runc = files.iter().find(|file| file.name == "runc").unwrap();
        assert_eq!(
            runc.url,
            "https://mirror.internal/files/github.com/opencontainers/runc/releases/download/v1.3.4/runc.amd64"
        );
        assert_eq!(
            image(&cluster, "coredns").unwrap(),
            "mirror.internal:5000/k8s/coredns/coredns:v1.12.1"
        );
        assert_eq!(
            image(&cluster, "kube-apiserver").unwrap(),
            "mirror.internal:5000/k8s/kube-apiserver:v1.33.1"
        );
    }
}
