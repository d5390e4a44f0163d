//! A state store in a local directory: files 0600, directories 0700, atomic replace.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;

use super::{StateError, StateStore, check_key};

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

    fn read_error(&self, key: &str) -> impl FnOnce(std::io::Error) -> StateError {
        let (store, key) = (self.url(), key.to_string());
        move |source| StateError::Read { store, key, source }
    }

    fn write_error(&self, key: &str) -> impl FnOnce(std::io::Error) -> StateError {
        let (store, key) = (self.url(), key.to_string());
        move |source| StateError::Write { store, key, source }
    }
}

async fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
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
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // temporary files of writes in progress
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
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.read_error(key)(error)),
        }
    }

    async fn write(&self, key: &str, data: &[u8]) -> Result<(), StateError> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        create_private_dirs(&dir)
            .await
            .map_err(self.write_error(key))?;
        let temporary = dir.join(format!(
            ".{file_name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)
                .await?;
            file.write_all(data).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temporary, &path).await?;
            // Make the rename itself durable.
            tokio::fs::File::open(&dir).await?.sync_all().await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
        result.map_err(self.write_error(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let root = self.root.clone();
        let start = if prefix.is_empty() {
            root.clone()
        } else {
            self.path(prefix)?
        };
        let listed = tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            list_files(&root, &start, &mut keys).map(|()| keys)
        })
        .await
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|result| result);
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
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Delete {
                store: self.url(),
                key: prefix.to_string(),
                source,
            }),
        }
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
