//! Layer 5, jobs: what users ask for. The loaded model ([`loaded`]: a
//! bundle's generator and plugin on a device), conditional sampling into a
//! folder ([`dataset`]), filling a dataset's rare cells ([`fill`]), joining
//! shards ([`merge`]), sweeps ([`sweep`]), edits ([`edit`], [`session`]) and
//! photo projection ([`projection`]), what the judges read off images
//! ([`judge`]), where a slider must sit for them to agree ([`calibrate`])
//! and the plugin's report card by them ([`evaluate`]), steering judged
//! values to what was asked ([`steer`]), and the GPU kernels
//! checked against the CPU engine ([`parity`]).
//!
//! Uses every layer below; the front ends (the `plugen` crate) use this one.

pub mod calibrate;
pub mod dataset;
pub mod edit;
pub mod evaluate;
pub mod fill;
pub mod judge;
pub mod loaded;
pub mod merge;
pub mod parity;
pub mod projection;
pub mod session;
pub mod steer;
pub mod sweep;
