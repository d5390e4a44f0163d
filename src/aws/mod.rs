//! The AWS target: SDK clients and how their errors map onto the apply engine's classes.
//! (The per-resource provisioner builds on this next.)

pub mod errors;

pub use errors::{classify, provision_error};
