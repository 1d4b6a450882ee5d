//! plugen-core: the engine of plugen, attribute-conditioned face generation
//! with PluGeN plugins. It knows nothing of the GUI or the command line.
//!
//! A frozen generator ([`generator`]) turns latents into faces. A plugin
//! ([`plugin`], a NICE [`flow`]) maps latents to a space whose first K
//! coordinates are attributes ([`attributes`], [`prior`]); it is trained on
//! (latent, label) pairs ([`train`]). Conditional sampling sets those
//! coordinates and runs the flow backwards ([`dataset`]); editing runs it
//! forwards, changes them and goes back ([`session`]). [`model`] ties a
//! generator and a plugin together for the front ends (the `plugen` crate).

pub mod attributes;
pub mod bundle;
mod cpu_decode;
mod cpu_flow;
pub mod cpu_gemm;
pub mod dataset;
pub mod device;
pub mod edit;
pub mod encoder;
pub mod error;
pub mod fill;
pub mod flow;
pub mod formats;
pub mod fsutil;
pub mod generator;
pub mod gpu;
pub mod imaging;
pub mod import;
pub mod labelling;
pub mod merge;
pub mod model;
pub mod plugin;
pub mod prior;
pub mod projection;
pub mod pseudo_labels;
pub mod rng;
pub mod session;
pub mod sweep;
pub mod train;
pub mod versions;

pub use candle_core::{Device, Tensor};
pub use error::{Error, Result};
