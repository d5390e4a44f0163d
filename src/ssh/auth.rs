//! Public-key authentication: the ssh-agent's identities first, then key files.

use std::sync::Arc;

use russh::client::{Handle, Handler};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};

use super::{ConnectOptions, SshError, SshTarget};

pub(super) async fn authenticate<H: Handler>(
    handle: &mut Handle<H>,
    target: &SshTarget,
    options: &ConnectOptions,
) -> Result<(), SshError> {
    let protocol = |source| SshError::Protocol {
        host: target.describe(),
        source,
    };
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(protocol)?
        .flatten();
    let mut tried = Vec::new();

    if options.use_agent
        && let Ok(mut agent) = AgentClient::connect_env().await
    {
        let identities = agent.request_identities().await.unwrap_or_default();
        for identity in identities {
            let key = identity.public_key().into_owned();
            tried.push(format!("agent key {}", key.algorithm()));
            let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
            match handle
                .authenticate_publickey_with(&target.user, key, hash, &mut agent)
                .await
            {
                Ok(result) if result.success() => return Ok(()),
                // An agent that refuses to sign is one identity less, not the end.
                Ok(_) | Err(_) => {}
            }
        }
    }

    for path in &options.identity_files {
        let key = load_secret_key(path, None).map_err(|error| SshError::Key {
            path: path.clone(),
            reason: match error {
                russh::keys::Error::KeyIsEncrypted => {
                    "it is encrypted; load it into ssh-agent (ssh-add) instead".to_string()
                }
                other => other.to_string(),
            },
        })?;
        tried.push(format!("key file {}", path.display()));
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        let result = handle
            .authenticate_publickey(&target.user, key)
            .await
            .map_err(protocol)?;
        if result.success() {
            return Ok(());
        }
    }

    if tried.is_empty() {
        return Err(SshError::NoIdentity);
    }
    Err(SshError::AuthFailed {
        host: target.describe(),
        user: target.user.clone(),
        tried: tried.join(", "),
    })
}
