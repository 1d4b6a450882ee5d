//! Layer 3, the model: what is loaded and saved. The frozen [`generator`],
//! the plugin's [`flow`] and [`prior`] over its [`attributes`], the
//! [`plugin`] that ties them, the image [`encoder`], a model folder
//! ([`bundle`]) with its plugin [`versions`], [`import`] of PyTorch
//! checkpoints, and the [`judges`] that check what a plugin makes.
//!
//! Uses [`crate::compute`] and below (a model asks the engines to pack its
//! weights); training lives above, in [`crate::learn`].

pub mod attributes;
pub mod bundle;
pub mod encoder;
pub mod flow;
pub mod generator;
pub mod import;
pub mod judges;
pub mod plugin;
pub mod prior;
pub mod versions;
