//! Settings every command shares: which state store to use.

use rafter::state::{ClusterStore, LocalStore, StateError, StateLocation, default_state_location};

/// Opens the state store named by `--state` / `RAFTER_STATE`, or the default directory.
pub fn open_store(state: Option<&str>) -> Result<ClusterStore<LocalStore>, StateError> {
    let location = match state {
        Some(url) => StateLocation::parse(url)?,
        None => StateLocation::Local(default_state_location()),
    };
    match location {
        StateLocation::Local(path) => Ok(ClusterStore::new(LocalStore::new(path))),
        StateLocation::S3 { .. } => Err(StateError::S3NotAvailable {
            url: state.unwrap_or_default().to_string(),
        }),
    }
}
