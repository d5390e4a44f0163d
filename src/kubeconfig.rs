//! Kubeconfig files: merging one cluster's cluster, user and context entries into an existing
//! file without disturbing anything else in it, and writing it back atomically with mode 0600
//! (it holds a private key).

use std::path::{Path, PathBuf};

use aws_smithy_types::base64;
use serde_json::{Map, Value, json};

/// What to write for one cluster; entries are named after the cluster, as kops names them.
pub struct Entry<'a> {
    pub name: &'a str,
    /// `https://…` of the API server.
    pub server: &'a str,
    pub ca_pem: &'a str,
    /// The user's credential, when one is exported.
    pub credential: Option<Credential<'a>>,
}

/// How the cluster's user proves who it is.
pub enum Credential<'a> {
    /// A client certificate and its key, written into the file.
    Certificate { cert_pem: &'a str, key_pem: &'a str },
    /// A client-go credential plugin: `command args…` prints an `ExecCredential` on demand
    /// (a short-lived certificate), so no key is kept in the file.
    Exec {
        command: &'a str,
        args: &'a [String],
    },
}

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a kubeconfig rafter can merge into: {message}; fix or move it, or pass --kubeconfig with another path"
    )]
    Invalid { path: PathBuf, message: String },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The client-go credential plugin API rafter speaks.
pub const EXEC_CREDENTIAL_VERSION: &str = "client.authentication.k8s.io/v1";

/// An `ExecCredential` carrying a client certificate, as a credential plugin prints it.
pub fn exec_credential(cert_pem: &str, key_pem: &str, expires: &str) -> Value {
    json!({
        "apiVersion": EXEC_CREDENTIAL_VERSION,
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": cert_pem,
            "clientKeyData": key_pem,
            "expirationTimestamp": expires,
        }
    })
}

/// `$KUBECONFIG`'s first path, else `~/.kube/config`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("KUBECONFIG").filter(|value| !value.is_empty()) {
        return std::env::split_paths(&paths).next();
    }
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| Path::new(&home).join(".kube/config"))
}

/// Merges `entry` into the kubeconfig at `path` (created if missing) and makes it the
/// current context.
pub fn merge_into(path: &Path, entry: &Entry<'_>) -> Result<(), KubeconfigError> {
    let invalid = |message: String| KubeconfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut config = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            serde_saphyr::from_str::<Value>(&text).map_err(|error| invalid(error.to_string()))?
        }
        Ok(_) => empty(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => empty(),
        Err(source) => {
            return Err(KubeconfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let document = config
        .as_object_mut()
        .ok_or_else(|| invalid("its top level is not a mapping".to_string()))?;
    let encode = |pem: &str| base64::encode(pem.as_bytes());
    upsert(
        document,
        "clusters",
        entry.name,
        "cluster",
        json!({ "server": entry.server, "certificate-authority-data": encode(entry.ca_pem) }),
    )
    .map_err(invalid)?;
    if let Some(credential) = &entry.credential {
        let user = match credential {
            Credential::Certificate { cert_pem, key_pem } => json!({
                "client-certificate-data": encode(cert_pem),
                "client-key-data": encode(key_pem),
            }),
            Credential::Exec { command, args } => json!({
                "exec": {
                    "apiVersion": EXEC_CREDENTIAL_VERSION,
                    "command": command,
                    "args": args,
                    "interactiveMode": "Never",
                    "provideClusterInfo": false,
                }
            }),
        };
        upsert(document, "users", entry.name, "user", user).map_err(invalid)?;
    }
    upsert(
        document,
        "contexts",
        entry.name,
        "context",
        json!({ "cluster": entry.name, "user": entry.name }),
    )
    .map_err(invalid)?;
    document.insert("current-context".into(), Value::String(entry.name.into()));
    let text = serde_saphyr::to_string(&config).map_err(|error| invalid(error.to_string()))?;
    crate::state::local::write_atomic(path, text.as_bytes()).map_err(|source| {
        KubeconfigError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn empty() -> Value {
    json!({ "apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": [] })
}

/// Replaces the entry called `name` in the list `list` (or appends it), keeping the others.
fn upsert(
    document: &mut Map<String, Value>,
    list: &str,
    name: &str,
    field: &str,
    body: Value,
) -> Result<(), String> {
    let entries = document
        .entry(list)
        .or_insert_with(|| Value::Array(Vec::new()));
    if entries.is_null() {
        *entries = Value::Array(Vec::new());
    }
    let entries = entries
        .as_array_mut()
        .ok_or_else(|| format!("`{list}` is not a list"))?;
    let new = json!({ "name": name, field: body });
    match entries
        .iter_mut()
        .find(|existing| existing.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = new,
        None => entries.push(new),
    }
    Ok(())
}
