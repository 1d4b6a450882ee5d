//! Layer 1, files: the formats a user brings and gets (latents as .npy,
//! .safetensors or sidecar .json; label tables as .csv; weight files as
//! .safetensors), writes that land whole or not at all, and image helpers.
//!
//! Uses only [`crate::error`] and [`crate::rng`].

pub mod fsutil;
pub mod imaging;
pub mod labels;
pub mod latents;
pub mod npy;
pub mod preloaded;
pub mod sidecar;
pub mod weights;
