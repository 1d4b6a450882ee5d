//! The JSON sidecar written next to every generated image: enough to load the
//! face back as an editable latent and to know how it was made.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};

/// Name of a run folder's manifest: one sidecar per line, one line per image.
pub const MANIFEST_FILE: &str = "manifest.jsonl";

/// Value of the `format` field.
pub const FORMAT: &str = "plugen-sidecar";
/// Largest sidecar read (16 MiB).
const MAX_SIDECAR_BYTES: u64 = 16 << 20;

/// How one image was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Version of plugen that wrote it.
    pub plugen_version: String,
    /// Image file name, relative to the sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The generator's latent for this image.
    pub latent: Vec<f32>,
    /// Run seed, when the latent was sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Index within the run (the random stream used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Scale of the free flow coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Attribute values that were asked for (user units).
    #[serde(default)]
    pub requested: BTreeMap<String, f32>,
    /// What the plugin reads off the latent (user units).
    #[serde(default)]
    pub readout: BTreeMap<String, f32>,
    /// What the judges (independent face-analysis models) read off the image,
    /// where they were asked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judged: BTreeMap<String, f32>,
    /// For a projected photo: the image file it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_from: Option<String>,
    /// For a projected photo: pixel mean squared error of the reconstruction ([−1, 1] units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection_mse: Option<f32>,
    /// SHA-256 of the generator weights.
    pub generator_sha256: String,
    /// SHA-256 of the plugin weights, if a plugin was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_sha256: Option<String>,
}

impl Sidecar {
    /// A sidecar for `latent` from the generator with hash `generator_sha256`.
    pub fn new(latent: Vec<f32>, generator_sha256: &str) -> Self {
        Self {
            format: FORMAT.into(),
            version: 1,
            plugen_version: env!("CARGO_PKG_VERSION").into(),
            image: None,
            latent,
            seed: None,
            index: None,
            temperature: None,
            requested: BTreeMap::new(),
            readout: BTreeMap::new(),
            judged: BTreeMap::new(),
            projected_from: None,
            projection_mse: None,
            generator_sha256: generator_sha256.into(),
            plugin_sha256: None,
        }
    }
}

/// Reads and validates a sidecar.
pub fn read(path: &Path) -> Result<Sidecar> {
    let bytes = fsutil::read_limited(path, MAX_SIDECAR_BYTES)?;
    parse(path, &bytes)
}

/// Parses sidecar JSON bytes read from `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Sidecar> {
    let s: Sidecar = serde_json::from_slice(bytes)
        .map_err(|e| Error::format(path, format!("not a plugen sidecar: {e}")))?;
    if s.format != FORMAT {
        return Err(Error::format(
            path,
            format!("format is {:?}, not {FORMAT:?}", s.format),
        ));
    }
    if s.version != 1 {
        return Err(Error::format(
            path,
            format!("sidecar version {} is not supported", s.version),
        ));
    }
    Ok(s)
}

/// A sidecar as pretty JSON, ending with a newline.
pub fn to_json(sidecar: &Sidecar) -> Result<String> {
    let mut text = serde_json::to_string_pretty(sidecar)
        .map_err(|e| Error::invalid(format!("cannot encode sidecar: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// Writes a sidecar as pretty JSON, atomically.
pub fn write(path: &Path, sidecar: &Sidecar, overwrite: Overwrite) -> Result<()> {
    fsutil::write_atomic(path, to_json(sidecar)?.as_bytes(), overwrite)
}
