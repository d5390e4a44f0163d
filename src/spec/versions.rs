//! Kubernetes versions rafter knows how to install.

use std::fmt;

/// The version used when a spec names none.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.34.2";

/// The etcd release used when a spec names none (the asset list pins its digests).
pub const DEFAULT_ETCD_VERSION: &str = "3.5.21";
/// The oldest etcd minor rafter runs (3.4: Debian 12's `etcd-server`).
pub const MIN_ETCD_MINOR: u32 = 4;

/// Oldest and newest supported minor versions (of 1.x).
pub const MIN_SUPPORTED_MINOR: u32 = 31;
pub const MAX_SUPPORTED_MINOR: u32 = 37;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubernetesVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "`{0}` is not a Kubernetes version (expected MAJOR.MINOR.PATCH, e.g. {DEFAULT_KUBERNETES_VERSION})"
    )]
    Unparseable(String),
    #[error(
        "Kubernetes {0} is not supported (supported: 1.{MIN_SUPPORTED_MINOR} to 1.{MAX_SUPPORTED_MINOR})"
    )]
    Unsupported(KubernetesVersion),
}

/// An etcd release, `3.5.21`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EtcdVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for EtcdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdVersionError {
    #[error(
        "`{0}` is not an etcd version (expected MAJOR.MINOR.PATCH, e.g. {DEFAULT_ETCD_VERSION})"
    )]
    Unparseable(String),
    #[error(
        "etcd {0} is not supported (rafter runs etcd 3.{MIN_ETCD_MINOR} and later 3.x releases)"
    )]
    Unsupported(EtcdVersion),
}

/// `MAJOR.MINOR.PATCH` of plain decimal numbers (a leading `v` accepted), or `None`.
fn three_numbers(text: &str) -> Option<(u32, u32, u32)> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    let parts: Vec<&str> = digits.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return None;
    };
    let number = |part: &str| -> Option<u32> {
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    Some((number(major)?, number(minor)?, number(patch)?))
}

/// Parses `3.5.21` (a leading `v` is accepted, as etcd's release tags have it).
pub fn parse_etcd_version(text: &str) -> Result<EtcdVersion, EtcdVersionError> {
    let (major, minor, patch) =
        three_numbers(text).ok_or_else(|| EtcdVersionError::Unparseable(text.to_string()))?;
    let version = EtcdVersion {
        major,
        minor,
        patch,
    };
    if major != 3 || minor < MIN_ETCD_MINOR {
        return Err(EtcdVersionError::Unsupported(version));
    }
    Ok(version)
}

/// Parses `1.34.2` (a leading `v` is accepted, as kubeadm does).
pub fn parse_kubernetes_version(text: &str) -> Result<KubernetesVersion, VersionError> {
    let (major, minor, patch) =
        three_numbers(text).ok_or_else(|| VersionError::Unparseable(text.to_string()))?;
    let version = KubernetesVersion {
        major,
        minor,
        patch,
    };
    if version.major != 1 || !(MIN_SUPPORTED_MINOR..=MAX_SUPPORTED_MINOR).contains(&version.minor) {
        return Err(VersionError::Unsupported(version));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_versions() {
        assert_eq!(
            parse_kubernetes_version("1.34.2").unwrap().to_string(),
            "1.34.2"
        );
        assert_eq!(parse_kubernetes_version("v1.31.0").unwrap().minor, 31);
        assert!(parse_kubernetes_version(DEFAULT_KUBERNETES_VERSION).is_ok());
    }

    #[test]
    fn etcd_versions_parse_from_3_4_on() {
        assert_eq!(
            parse_etcd_version("v3.4.23").unwrap(),
            EtcdVersion {
                major: 3,
                minor: 4,
                patch: 23
            }
        );
        assert!(parse_etcd_version(DEFAULT_ETCD_VERSION).is_ok());
        for bad in ["3.5", "3.5.x", "", "3.5.1-rc.0"] {
            assert!(
                matches!(
                    parse_etcd_version(bad),
                    Err(EtcdVersionError::Unparseable(_))
                ),
                "{bad}"
            );
        }
        for old in ["3.3.27", "2.3.8", "4.0.0"] {
            assert!(
                matches!(
                    parse_etcd_version(old),
                    Err(EtcdVersionError::Unsupported(_))
                ),
                "{old}"
            );
        }
    }

    #[test]
    fn rejects_malformed_and_unsupported() {
        for bad in [
            "1.34", "1.34.x", "latest", "", "1..2", "1.34.2.1", "+1.34.2",
        ] {
            assert!(
                matches!(
                    parse_kubernetes_version(bad),
                    Err(VersionError::Unparseable(_))
                ),
                "{bad}"
            );
        }
        for old in ["1.20.0", "1.30.9", "1.38.0", "2.0.0"] {
            assert!(
                matches!(
                    parse_kubernetes_version(old),
                    Err(VersionError::Unsupported(_))
                ),
                "{old}"
            );
        }
    }
}
