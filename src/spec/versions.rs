//! Kubernetes versions rafter knows how to install.

use std::fmt;

/// The version used when a spec names none.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.34.2";

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

/// Parses `1.34.2` (a leading `v` is accepted, as kubeadm does).
pub fn parse_kubernetes_version(text: &str) -> Result<KubernetesVersion, VersionError> {
    let unparseable = || VersionError::Unparseable(text.to_string());
    let digits = text.strip_prefix('v').unwrap_or(text);
    let parts: Vec<&str> = digits.split('.').collect();
    let [major, minor, patch] = parts.as_slice() else {
        return Err(unparseable());
    };
    let number = |part: &str| -> Result<u32, VersionError> {
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(unparseable());
        }
        part.parse().map_err(|_| unparseable())
    };
    let version = KubernetesVersion {
        major: number(major)?,
        minor: number(minor)?,
        patch: number(patch)?,
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
