//! File formats a user brings and gets: latents (.npy, .safetensors, sidecar
//! .json), label tables (.csv), weight files (.safetensors).

pub mod labels;
pub mod latents;
pub mod npy;
pub mod sidecar;
pub mod weights;
