//! A store chosen at run time from `--state`: local directory or S3.

use super::{LocalStore, Precondition, S3Store, StateError, StateLocation, StateStore, Versioned};

pub enum AnyStore {
    Local(LocalStore),
    S3(S3Store),
}

impl AnyStore {
    /// Opens the store at `location`; S3 clients come from the standard AWS chain.
    pub async fn open(location: StateLocation) -> Self {
        match location {
            StateLocation::Local(path) => AnyStore::Local(LocalStore::new(path)),
            StateLocation::S3 { bucket, prefix } => {
                AnyStore::S3(S3Store::from_environment(&bucket, &prefix).await)
            }
        }
    }
}

/// Forwards a call to whichever store this is.
macro_rules! forward {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Local($store) => $call,
            AnyStore::S3($store) => $call,
        }
    };
}

impl StateStore for AnyStore {
    fn url(&self) -> String {
        forward!(self, store => store.url())
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        forward!(self, store => store.read(key).await)
    }

    async fn write(&self, key: &str, data: &[u8]) -> Result<(), StateError> {
        forward!(self, store => store.write(key, data).await)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        forward!(self, store => store.list(prefix).await)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StateError> {
        forward!(self, store => store.delete_prefix(prefix).await)
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>, StateError> {
        forward!(self, store => store.read_versioned(key).await)
    }

    async fn write_if(
        &self,
        key: &str,
        data: &[u8],
        precondition: Precondition,
    ) -> Result<String, StateError> {
        forward!(self, store => store.write_if(key, data, precondition).await)
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        forward!(self, store => store.delete(key).await)
    }
}
