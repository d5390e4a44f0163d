//! Parsing `--state` / `RAFTER_STATE` into a store location.

use std::path::PathBuf;

use super::StateError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl StateLocation {
    /// `file:///dir`, a plain path, or `s3://bucket/prefix`.
    pub fn parse(url: &str) -> Result<Self, StateError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StateError::BadLocation {
                    url: url.to_string(),
                });
            }
            let prefix = prefix.trim_end_matches('/');
            // S3 takes keys literally: `a/../b` would be a folder named `..`, not `b`.
            if !prefix.is_empty()
                && prefix
                    .split('/')
                    .any(|segment| matches!(segment, "" | "." | ".."))
            {
                return Err(StateError::BadS3Prefix {
                    url: url.to_string(),
                });
            }
            return Ok(StateLocation::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(StateError::BadLocation {
                    url: url.to_string(),
                });
            }
            return Ok(StateLocation::Local(PathBuf::from(path)));
        }
        if url.is_empty() || url.contains("://") {
            return Err(StateError::BadLocation {
                url: url.to_string(),
            });
        }
        Ok(StateLocation::Local(PathBuf::from(url)))
    }
}

/// `$XDG_STATE_HOME/rafter`, else `~/.local/state/rafter`, else `./.rafter-state`.
pub fn default_state_location() -> PathBuf {
    if let Some(state_home) = std::env::var_os("XDG_STATE_HOME").filter(|value| !value.is_empty()) {
        return PathBuf::from(state_home).join("rafter");
    }
    match std::env::var_os("HOME").filter(|value| !value.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/rafter"),
        None => PathBuf::from(".rafter-state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            StateLocation::parse("file:///tmp/s").unwrap(),
            StateLocation::Local("/tmp/s".into())
        );
        assert_eq!(
            StateLocation::parse("relative/dir").unwrap(),
            StateLocation::Local("relative/dir".into())
        );
        assert_eq!(
            StateLocation::parse("s3://bucket/a/b/").unwrap(),
            StateLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        for bad in [
            "",
            "s3://",
            "gs://x",
            "file://",
            "s3://bucket/a/../b",
            "s3://bucket/./a",
            "s3://bucket/a//b",
        ] {
            assert!(StateLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
