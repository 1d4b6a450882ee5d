//! A model bundle: a folder with a generator (`generator.safetensors` and its
//! `manifest.json`), a `CARD.md`, and optionally a default plugin (`plugin.json`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, WithPath};
use crate::io::fsutil::{self, Overwrite};
use crate::io::weights;
use crate::model::generator::{Generator, GeneratorConfig};
use crate::model::versions;

/// Value of the generator manifest's `format` field.
pub const FORMAT: &str = "plugen-generator";
/// File name of the generator manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Folder name of the bundled default model, under `models/`.
pub const DEFAULT_MODEL: &str = "dcgan-digiface64";
/// Environment variable naming a model folder to use instead of the default.
pub const MODEL_ENV: &str = "PLUGEN_MODEL";

/// `manifest.json`: what the generator is and how to check its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Human name of the model.
    pub name: String,
    /// Architecture family (`dcgan`).
    pub architecture: String,
    /// Layer shapes.
    pub generator: GeneratorConfig,
    /// Weights file name, next to the manifest.
    pub weights: String,
    /// SHA-256 of the weights file.
    pub sha256: String,
    /// Where the weights came from.
    #[serde(default)]
    pub source: String,
}

/// An opened model folder.
pub struct Bundle {
    dir: PathBuf,
    manifest: GeneratorManifest,
}

/// The model folder to use when none is given: `$PLUGEN_MODEL`, else
/// `models/dcgan-digiface64` under the current folder, else the one in the
/// source tree this binary was built from.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODEL_ENV) {
        return PathBuf::from(dir);
    }
    let local = Path::new("models").join(DEFAULT_MODEL);
    if local.join(MANIFEST_FILE).is_file() {
        return local;
    }
    // Built from the source tree: crates/plugen-core → the workspace root's models/.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(DEFAULT_MODEL)
}

impl Bundle {
    /// Opens a model folder and reads its manifest.
    pub fn open(dir: &Path) -> Result<Self> {
        if !fsutil::is_dir(dir) {
            return Err(Error::format(
                dir,
                "model folder not found (expected a folder with manifest.json)",
            ));
        }
        let path = dir.join(MANIFEST_FILE);
        let bytes = fsutil::read_limited(&path, 1 << 20)?;
        let manifest: GeneratorManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::format(&path, format!("not a plugen generator manifest: {e}")))?;
        if manifest.format != FORMAT || manifest.version != 1 {
            return Err(Error::format(
                &path,
                format!(
                    "unsupported format {:?} v{}",
                    manifest.format, manifest.version
                ),
            ));
        }
        if manifest.architecture != "dcgan" {
            return Err(Error::format(
                &path,
                format!("unsupported architecture {:?}", manifest.architecture),
            ));
        }
        manifest.generator.validate().with_path(&path)?;
        if manifest.weights.contains('/')
            || manifest.weights.contains('\\')
            || manifest.weights.starts_with('.')
        {
            return Err(Error::format(
                &path,
                "weights must be a file name next to manifest.json",
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generator manifest.
    pub fn manifest(&self) -> &GeneratorManifest {
        &self.manifest
    }

    /// Loads the generator, checking that its weights match the manifest's hash.
    pub fn load_generator(&self, device: &Device) -> Result<Generator> {
        let path = self.dir.join(&self.manifest.weights);
        let file = weights::load(&path, device)?;
        if file.sha256 != self.manifest.sha256 {
            return Err(Error::format(
                &path,
                "weights do not match the sha256 in manifest.json (corrupt or replaced file)",
            ));
        }
        let vb = VarBuilder::from_tensors(file.tensors, DType::F32, device);
        Generator::new(vb, self.manifest.generator.clone()).with_path(&path)
    }

    /// The bundle's default plugin: its newest version (`plugin-vN.json`, else
    /// `plugin.json`), if it has one.
    pub fn default_plugin(&self) -> Option<PathBuf> {
        versions::latest(&self.dir)
    }

    /// The bundle's image encoder manifest (`encoder.json`), if it has one.
    pub fn encoder(&self) -> Option<PathBuf> {
        let path = self.dir.join(crate::model::encoder::MANIFEST_FILE);
        fsutil::is_file(&path).then_some(path)
    }

    /// Writes a manifest into `dir`.
    pub fn write_manifest(
        dir: &Path,
        manifest: &GeneratorManifest,
        overwrite: Overwrite,
    ) -> Result<()> {
        let mut text = serde_json::to_string_pretty(manifest)
            .map_err(|e| Error::invalid(format!("cannot encode manifest: {e}")))?;
        text.push('\n');
        fsutil::write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes(), overwrite)
    }
}
