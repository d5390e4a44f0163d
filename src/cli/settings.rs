//! Settings every command shares: which state store to use.

use rafter::state::{AnyStore, ClusterStore, StateError, StateLocation, default_state_location};

/// Opens the state store named by `--state` / `RAFTER_STATE`, or the default directory.
pub async fn open_store(state: Option<&str>) -> Result<ClusterStore<AnyStore>, StateError> {
    let location = match state {
        Some(url) => StateLocation::parse(url)?,
        None => StateLocation::Local(default_state_location()),
    };
    Ok(ClusterStore::new(AnyStore::open(location).await))
}
