//! A state store in a local directory: files 0600, directories 0700, atomic replace, and
//! compare-and-swap writes serialized by an advisory file lock.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{Precondition, StateError, StateStore, Versioned, check_key};

pub struct LocalStore {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalStore {
    /// A store rooted at `root`; a relative root is made absolute so `configBase` is too.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root: PathBuf = root.into();
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(&root))
                .unwrap_or(root)
        };
        Self { root }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StateError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))?
    }

    /// The outcome of removing `key`: already gone counts as removed.
    fn deleted(&self, key: &str, outcome: std::io::Result<()>) -> Result<(), StateError> {
        match outcome {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(StateError::Delete {
                store: self.url(),
                key: key.to_string(),
                source: error,
            }),
            _ => Ok(()),
        }
    }

    fn read_error(&self, key: &str) -> impl FnOnce(std::io::Error) -> StateError {
        let (store, key) = (self.url(), key.to_string());
        move |source| StateError::Read { store, key, source }
    }

    fn write_error(&self, key: &str) -> impl FnOnce(std::io::Error) -> StateError {
        let (store, key) = (self.url(), key.to_string());
        move |source| StateError::Write { store, key, source }
    }
}

/// The version of local content: its SHA-256, like an ETag.
fn version_of(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes `data` to a temporary file beside `path` (mode 0600; missing directories 0700),
/// syncs it, renames it over `path` and syncs the directory: readers see the old content or
/// the new, never a mix.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("state path has no parent"))?;
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Holds an exclusive advisory lock on a guard file beside `path` while `work` runs, so
/// compare-and-swap writes from several processes happen one at a time.
fn with_guard<T>(path: &Path, work: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("state path has no parent"))?;
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let guard = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(format!(".{file_name}.guard")))?;
    guard.lock()?;
    let result = work();
    drop(guard); // releases the lock
    result
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // temporary and guard files
        }
        if entry.file_type()?.is_dir() {
            list_files(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

impl StateStore for LocalStore {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.path(key)?;
        self.blocking(move || read_optional(&path))
            .await
            .map_err(self.read_error(key))
    }

    async fn write(&self, key: &str, data: &[u8]) -> Result<(), StateError> {
        let path = self.path(key)?;
        let data = data.to_vec();
        self.blocking(move || write_atomic(&path, &data))
            .await
            .map_err(self.write_error(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let root = self.root.clone();
        let start = if prefix.is_empty() {
            root.clone()
        } else {
            self.path(prefix)?
        };
        let listed = self
            .blocking(move || {
                let mut keys = Vec::new();
                list_files(&root, &start, &mut keys).map(|()| keys)
            })
            .await;
        let mut keys = listed.map_err(|source| StateError::List {
            store: self.url(),
            prefix: prefix.to_string(),
            source,
        })?;
        keys.sort();
        Ok(keys)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StateError> {
        let path = self.path(prefix)?;
        self.deleted(prefix, tokio::fs::remove_dir_all(&path).await)
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        Ok(self.read(key).await?.map(|data| Versioned {
            version: version_of(&data),
            data,
        }))
    }

    async fn write_if(
        &self,
        key: &str,
        data: &[u8],
        precondition: Precondition,
    ) -> Result<String, StateError> {
        let path = self.path(key)?;
        let data = data.to_vec();
        let outcome = self
            .blocking(move || {
                with_guard(&path, || {
                    let current = read_optional(&path)?;
                    let holds = match (&precondition, &current) {
                        (Precondition::Absent, None) => true,
                        (Precondition::Version(version), Some(bytes)) => {
                            &version_of(bytes) == version
                        }
                        _ => false,
                    };
                    if !holds {
                        return Ok(None);
                    }
                    write_atomic(&path, &data)?;
                    Ok(Some(version_of(&data)))
                })
            })
            .await
            .map_err(self.write_error(key))?;
        outcome.ok_or_else(|| StateError::PreconditionFailed {
            store: self.url(),
            key: key.to_string(),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        let path = self.path(key)?;
        self.deleted(key, tokio::fs::remove_file(&path).await)
    }
}

/// Mode bits of a path, for tests and `doctor`-style checks.
pub fn mode_of(path: &Path) -> std::io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_atomically_with_private_modes() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::new(root.path());
        assert_eq!(store.read("c/config.yaml").await.unwrap(), None);
        store.write("c/config.yaml", b"one").await.unwrap();
        store.write("c/config.yaml", b"two").await.unwrap();
        assert_eq!(
            store.read("c/config.yaml").await.unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(mode_of(&root.path().join("c/config.yaml")).unwrap(), 0o600);
        assert_eq!(mode_of(&root.path().join("c")).unwrap(), 0o700);
        store.write("d/pki/ca.key", b"k").await.unwrap();
        assert_eq!(
            store.list("").await.unwrap(),
            ["c/config.yaml", "d/pki/ca.key"]
        );
        store.delete_prefix("c").await.unwrap();
        assert_eq!(store.list("").await.unwrap(), ["d/pki/ca.key"]);
        assert!(store.write("../escape", b"x").await.is_err());
    }
}
