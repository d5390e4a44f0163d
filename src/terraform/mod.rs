//! The Terraform target: the same resource graph written as a Terraform module.
//!
//! `render_module` is pure (spec and graph in, files out, byte-for-byte deterministic);
//! `write_module` puts the files on disk, replacing an earlier export whole.

pub mod hcl;
pub mod module;
pub mod write;

pub use module::{ModuleFile, TerraformError, render_module};
pub use write::{WriteError, write_module};
