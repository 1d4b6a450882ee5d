//! Layer 4, learning: training a plugin on (latent, label) pairs
//! ([`train`]), training the image encoder on the generator's own samples
//! ([`train_encoder`]), label-mode sessions and active learning
//! ([`labelling`]), and pseudo-labels for partly labelled attributes
//! ([`pseudo_labels`]).
//!
//! Uses [`crate::model`] and below.

pub mod labelling;
pub mod pseudo_labels;
pub mod train;
pub mod train_encoder;
