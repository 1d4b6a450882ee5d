//! plugen-core: the engine of plugen, attribute-conditioned face generation
//! with PluGeN plugins. It knows nothing of the GUI or the command line.
//!
//! A frozen generator turns latents into faces. A plugin (a NICE flow) maps
//! latents to a space whose first K coordinates are attributes; it is trained
//! on (latent, label) pairs. Conditional sampling sets those coordinates and
//! runs the flow backwards; editing runs it forwards, changes them and goes
//! back.
//!
//! The crate is built in layers; a module uses only its own layer and the
//! layers below it (checked by `tests/layers.rs` of the `plugen` crate):
//!
//! | layer | holds |
//! |---|---|
//! | [`jobs`] | what users ask for: sampling, filling, merging, sweeps, edits, projection, the loaded [`Model`] |
//! | [`learn`] | training plugins and the image encoder, label sessions, pseudo-labels |
//! | [`model`] | what is loaded and saved: generator, flow, prior, attributes, plugin, encoder, bundle |
//! | [`compute`] | where numbers are crunched: the CPU engine, the wgpu kernels, device choice |
//! | [`io`] | files: formats, atomic writes, images |
//! | [`error`], [`rng`] | the error type and seeded random streams, used by every layer |

pub mod compute;
pub mod error;
pub mod io;
pub mod jobs;
pub mod learn;
pub mod model;
pub mod rng;

pub use candle_core::{Device, Tensor};
pub use compute::device::DeviceChoice;
pub use error::{Error, Result};
pub use jobs::loaded::{Model, PluginChoice};
