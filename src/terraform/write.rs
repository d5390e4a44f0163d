//! Writing an exported module to disk: all or nothing, never over someone else's files.

use std::path::{Path, PathBuf};

use super::module::ModuleFile;

/// Marks a directory as rafter's export, so a later export may replace it.
pub const MARKER_FILE: &str = ".rafter-export";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{dir} exists, is not empty and was not written by `rafter export terraform`")]
    ForeignDirectory { dir: PathBuf },
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the module to `dir`. The files go to a sibling directory first, which then takes
/// `dir`'s place, so an interrupted export leaves either the old module or the new one.
pub fn write_module(dir: &Path, cluster: &str, files: &[ModuleFile]) -> Result<(), WriteError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty && !dir.join(MARKER_FILE).exists() {
            return Err(WriteError::ForeignDirectory {
                dir: dir.to_path_buf(),
            });
        }
    }
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let base = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".to_string());
    let staging = parent.join(format!(".{base}.rafter-new-{}", std::process::id()));
    let previous = parent.join(format!(".{base}.rafter-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    for file in files {
        let path = staging.join(&file.path);
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory).map_err(io(directory))?;
        }
        std::fs::write(&path, &file.content).map_err(io(&path))?;
    }
    let marker = staging.join(MARKER_FILE);
    std::fs::write(&marker, format!("cluster: {cluster}\n")).map_err(io(&marker))?;
    if dir.exists() {
        std::fs::rename(dir, &previous).map_err(io(dir))?;
    }
    std::fs::rename(&staging, dir).map_err(io(dir))?;
    if previous.exists() {
        std::fs::remove_dir_all(&previous).map_err(io(&previous))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> ModuleFile {
        ModuleFile {
            path: path.to_string(),
            content: content.to_string(),
        }
    }

    #[test]
    fn replaces_its_own_export_and_refuses_foreign_directories() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("tf");
        write_module(&dir, "c", &[file("a.tf", "1"), file("data/x", "2")]).unwrap();
        write_module(&dir, "c", &[file("b.tf", "3")]).unwrap();
        assert!(
            !dir.join("a.tf").exists(),
            "stale files of the previous export are gone"
        );
        assert_eq!(std::fs::read_to_string(dir.join("b.tf")).unwrap(), "3");

        let foreign = root.path().join("mine");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("main.tf"), "keep").unwrap();
        assert!(matches!(
            write_module(&foreign, "c", &[file("a.tf", "1")]),
            Err(WriteError::ForeignDirectory { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(foreign.join("main.tf")).unwrap(),
            "keep"
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }
}
