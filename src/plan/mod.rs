//! Plans: what applying the desired graph to the actual state would do, per resource and
//! per attribute, in the order it would happen.

pub mod diff;
pub mod json;
pub mod text;

pub use diff::{
    Action, AttributeChange, Drift, Plan, RecordedResource, Refreshed, ResourceChange, Summary,
    as_recorded, diff, diff_refreshed,
};
