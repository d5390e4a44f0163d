//! The cluster's two shared secrets besides its keys, made once and kept in the state store
//! next to the CAs (`<cluster>/pki/bootstrap-token`, `<cluster>/pki/encryption-key`):
//!
//! - the bootstrap token nodes use for kubelet TLS bootstrap (`abcdef.0123456789abcdef`);
//! - the key the API server encrypts Secrets in etcd with. It is never replaced: a new key
//!   would make every stored Secret unreadable.

use super::store::{create_once, key_of};
use super::{PkiError, Secret};
use crate::state::StateStore;

const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// secretbox takes a 32-byte key.
const ENCRYPTION_KEY_BYTES: usize = 32;

/// A kubelet bootstrap token: `<id>.<secret>`; only the id may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: Secret,
}

impl BootstrapToken {
    /// The token as a kubelet presents it.
    pub fn bearer(&self) -> Secret {
        Secret::new(format!("{}.{}", self.id, self.secret.expose()))
    }

    fn parse(text: &str) -> Option<Self> {
        let (id, secret) = text.trim().split_once('.')?;
        let valid = |part: &str, length: usize| {
            part.len() == length && part.bytes().all(|byte| TOKEN_ALPHABET.contains(&byte))
        };
        (valid(id, 6) && valid(secret, 16)).then(|| Self {
            id: id.to_string(),
            secret: Secret::new(secret.to_string()),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClusterSecrets {
    pub bootstrap_token: BootstrapToken,
    /// Base64 of 32 random bytes.
    pub encryption_key: Secret,
}

fn random_bytes(count: usize) -> Result<Vec<u8>, PkiError> {
    let mut bytes = vec![0u8; count];
    getrandom::getrandom(&mut bytes).map_err(|error| PkiError::Random(error.to_string()))?;
    Ok(bytes)
}

/// `length` characters from [`TOKEN_ALPHABET`], uniformly (bytes past the last whole multiple
/// of the alphabet's size are drawn again).
fn random_token_part(length: usize) -> Result<String, PkiError> {
    let limit = 256 - 256 % TOKEN_ALPHABET.len();
    let mut part = String::with_capacity(length);
    while part.len() < length {
        for byte in random_bytes(length)? {
            if (byte as usize) < limit && part.len() < length {
                part.push(TOKEN_ALPHABET[byte as usize % TOKEN_ALPHABET.len()] as char);
            }
        }
    }
    Ok(part)
}

impl ClusterSecrets {
    /// The cluster's secrets from the store, made (once) where they do not exist yet.
    pub async fn load_or_create(store: &impl StateStore, cluster: &str) -> Result<Self, PkiError> {
        let token_key = key_of(cluster, "bootstrap-token");
        let token = match store.read(&token_key).await? {
            Some(stored) => stored,
            None => {
                let token = format!("{}.{}", random_token_part(6)?, random_token_part(16)?);
                create_once(store, &token_key, token.into_bytes()).await?
            }
        };
        let bootstrap_token = BootstrapToken::parse(&String::from_utf8_lossy(&token)).ok_or(
            PkiError::CorruptSecret {
                key: token_key,
                what: "bootstrap token",
            },
        )?;
        let encryption_key_key = key_of(cluster, "encryption-key");
        let encryption_key = match store.read(&encryption_key_key).await? {
            Some(stored) => stored,
            None => {
                let key = aws_smithy_types::base64::encode(random_bytes(ENCRYPTION_KEY_BYTES)?);
                create_once(store, &encryption_key_key, key.into_bytes()).await?
            }
        };
        let encryption_key = String::from_utf8_lossy(&encryption_key).trim().to_string();
        let decodes_to_a_key = aws_smithy_types::base64::decode(&encryption_key)
            .is_ok_and(|bytes| bytes.len() == ENCRYPTION_KEY_BYTES);
        if !decodes_to_a_key {
            return Err(PkiError::CorruptSecret {
                key: encryption_key_key,
                what: "encryption key (base64 of 32 bytes)",
            });
        }
        Ok(Self {
            bootstrap_token,
            encryption_key: Secret::new(encryption_key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parts_have_the_kubeadm_shape() {
        for _ in 0..50 {
            let token = format!(
                "{}.{}",
                random_token_part(6).unwrap(),
                random_token_part(16).unwrap()
            );
            let parsed = BootstrapToken::parse(&token).unwrap();
            assert_eq!(parsed.bearer().expose(), token);
        }
        assert!(BootstrapToken::parse("ABCDEF.0123456789abcdef").is_none());
        assert!(BootstrapToken::parse("abcdef0123456789abcdef").is_none());
        assert!(
            format!("{:?}", BootstrapToken::parse("abcdef.0123456789abcdef")).contains("redacted")
        );
    }
}
