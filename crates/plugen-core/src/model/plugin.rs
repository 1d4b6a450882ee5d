//! A trained PluGeN plugin on disk (`plugin.json` + `plugin.safetensors`) and
//! what it does: read attributes off a latent (forward flow), make a latent
//! with chosen attributes (inverse flow), and edit a latent's attributes.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::compute::cpu_flow::CpuFlow;
use crate::compute::cpu_gemm::{Engine, Kernel};
use crate::compute::gpu::{self, Direction, GpuContext, GpuFlow};
use crate::error::{Error, Result, WithPath};
use crate::io::fsutil;
use crate::io::labels::{self, LabelTable};
use crate::io::latents::{self, Latents};
use crate::io::weights;
use crate::model::attributes::{Attribute, AttributeKind};
use crate::model::flow::{Flow, FlowConfig};
use crate::model::judges::JudgeMap;
use crate::rng::SeededRng;

/// Value of `plugin.json`'s `format` field.
pub const FORMAT: &str = "plugen-plugin";
/// File name of a plugin's description.
pub const MANIFEST_FILE: &str = "plugin.json";
/// Default file name of a plugin's weights.
pub const WEIGHTS_FILE: &str = "plugin.safetensors";

/// How a plugin was trained (informational).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingSummary {
    /// Training epochs.
    pub epochs: usize,
    /// Random seed.
    pub seed: u64,
    /// Training and held-out row counts.
    pub rows: [usize; 2],
    /// Held-out metric per attribute (accuracy for binary, correlation for continuous).
    #[serde(default)]
    pub holdout_metrics: std::collections::BTreeMap<String, f32>,
    /// The (latents, labels) files it was trained on, relative to `plugin.json`,
    /// in row order; a plugin that names them can be extended with new attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataSource>,
    /// Weight of the edit-distance term it was trained with (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub edit_distance_weight: f32,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// One block of training rows: latents and their labels (CSV), row for row. The
/// latents are a file (`.npy`) or, for generator samples, the seed that
/// regenerates them ([`latents::seeded`]): 100 000 rows then cost no bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSource {
    /// Latents file, relative to `plugin.json`'s folder (empty with `latents_seed`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub latents: String,
    /// Seed of `plugen sample --no-plugin` whose first rows are the latents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latents_seed: Option<u64>,
    /// Labels CSV, relative to `plugin.json`'s folder.
    pub labels: String,
}

/// Where a block of training latents comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatentSource {
    /// A latents file (`.npy`, `.safetensors`, sidecar).
    File(PathBuf),
    /// The first rows of `plugen sample --no-plugin --seed SEED`, as many as labels.
    Seed(u64),
}

impl std::fmt::Display for LatentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LatentSource::File(p) => write!(f, "{}", p.display()),
            LatentSource::Seed(s) => write!(f, "the latents of seed {s}"),
        }
    }
}

/// Whether `name` is a plain relative path inside a folder: no absolute paths,
/// no `..`, no backslashes, no hidden components.
fn is_inside_folder(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.'))
}

/// Everything in `plugin.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// SHA-256 of the generator weights this plugin was trained for.
    pub generator_sha256: String,
    /// Flow shape.
    pub flow: FlowConfig,
    /// The attributes, in flow-coordinate order.
    pub attributes: Vec<Attribute>,
    /// σ of the class Gaussians at the end of training (flow units).
    pub prior_sigma: f32,
    /// Weights file, relative to `plugin.json`.
    pub weights: String,
    /// How it was trained.
    #[serde(default)]
    pub training: TrainingSummary,
    /// Which judge reading decides each attribute (absent: unjudged).
    #[serde(default, skip_serializing_if = "JudgeMap::is_empty")]
    pub judges: JudgeMap,
}

impl PluginManifest {
    fn validate(&self, path: &Path) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::format(
                path,
                format!("format is {:?}, not {FORMAT:?}", self.format),
            ));
        }
        if self.version != 1 {
            return Err(Error::format(
                path,
                format!("plugin version {} is not supported", self.version),
            ));
        }
        self.flow.validate().with_path(path)?;
        if self.attributes.is_empty() || self.attributes.len() > self.flow.dim {
            return Err(Error::format(
                path,
                format!(
                    "a plugin needs 1..={} attributes, this one has {}",
                    self.flow.dim,
                    self.attributes.len()
                ),
            ));
        }
        for (i, a) in self.attributes.iter().enumerate() {
            a.validate().with_path(path)?;
            if self.attributes[..i].iter().any(|b| b.name == a.name) {
                return Err(Error::format(
                    path,
                    format!("attribute {:?} appears twice", a.name),
                ));
            }
        }
        if !(self.prior_sigma.is_finite() && self.prior_sigma > 0.0) {
            return Err(Error::format(path, "prior_sigma must be a positive number"));
        }
        if self.weights.contains('/')
            || self.weights.contains('\\')
            || self.weights.starts_with('.')
        {
            return Err(Error::format(
                path,
                "weights must be a file name next to plugin.json",
            ));
        }
        for d in &self.training.data {
            if d.latents.is_empty() == d.latents_seed.is_none() {
                return Err(Error::format(
                    path,
                    "each training data block needs exactly one of latents and latents_seed",
                ));
            }
            let names = if d.latents.is_empty() {
                vec![&d.labels]
            } else {
                vec![&d.latents, &d.labels]
            };
            for name in names {
                if !is_inside_folder(name) {
                    return Err(Error::format(
                        path,
                        format!("training data {name:?} must be a path inside the plugin's folder"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A loaded plugin.
pub struct Plugin {
    manifest: PluginManifest,
    flow: Flow,
    path: PathBuf,
    weights_sha256: String,
    device: Device,
    /// The flow on a wgpu device, when one computes; encode and decode use it.
    gpu: Option<GpuFlow>,
    /// The flow packed for the CPU engine, on the CPU: encode and decode use it.
    cpu: Option<CpuFlow>,
}

/// Resolves a `--plugin` argument: a `plugin.json` or a folder holding one.
pub fn manifest_path(path: &Path) -> PathBuf {
    if fsutil::is_dir(path) {
        path.join(MANIFEST_FILE)
    } else {
        path.to_path_buf()
    }
}

impl Plugin {
    /// Loads a plugin for the generator whose weights hash to `generator_sha256`.
    pub fn load(path: &Path, generator_sha256: &str, device: &Device) -> Result<Self> {
        let path = manifest_path(path);
        let bytes = fsutil::read_limited(&path, 16 << 20)?;
        let manifest: PluginManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::format(&path, format!("not a plugen plugin.json: {e}")))?;
        manifest.validate(&path)?;
        if manifest.generator_sha256 != generator_sha256 {
            return Err(Error::format(
                &path,
                format!(
                    "this plugin was trained for another generator (sha256 {}…), the loaded one is {}…",
                    short(&manifest.generator_sha256),
                    short(generator_sha256)
                ),
            ));
        }
        let weights_path = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&manifest.weights);
        let file = weights::load(&weights_path, device)?;
        let vb = VarBuilder::from_tensors(file.tensors, DType::F32, device);
        let flow = Flow::new(vb, manifest.flow.clone()).with_path(&weights_path)?;
        let cpu = cpu_flow(&flow, device).with_path(&weights_path)?;
        Ok(Self {
            manifest,
            flow,
            path,
            weights_sha256: file.sha256,
            device: device.clone(),
            gpu: None,
            cpu,
        })
    }

    /// Wraps a flow just trained in memory.
    pub fn from_parts(
        manifest: PluginManifest,
        flow: Flow,
        weights_sha256: String,
        device: &Device,
    ) -> Result<Self> {
        let cpu = cpu_flow(&flow, device)?;
        Ok(Self {
            manifest,
            flow,
            path: PathBuf::new(),
            weights_sha256,
            device: device.clone(),
            gpu: None,
            cpu,
        })
    }

    /// Runs the flow on `ctx` from now on (weights uploaded once).
    pub fn use_gpu(&mut self, ctx: &std::sync::Arc<GpuContext>) -> Result<()> {
        self.gpu = Some(GpuFlow::new(ctx, &self.flow)?);
        Ok(())
    }

    /// Whether a row's encode and decode give the same bits alone as in a
    /// batch (the CPU engine and the GPU kernels sum in a fixed order; candle's
    /// matmul, used on CUDA, does not).
    pub fn batch_invariant(&self) -> bool {
        self.gpu.is_some() || self.cpu.is_some()
    }

    /// The flow on the GPU, if [`Plugin::use_gpu`] was called.
    pub fn gpu_flow(&self) -> Option<&GpuFlow> {
        self.gpu.as_ref()
    }

    /// The plugin's description.
    pub fn manifest(&self) -> &PluginManifest {
        &self.manifest
    }

    /// Which judge reading decides each attribute.
    pub fn judges(&self) -> &JudgeMap {
        &self.manifest.judges
    }

    /// The attributes, in flow order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.manifest.attributes
    }

    /// Where `plugin.json` was read from (empty for an in-memory plugin).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder `plugin.json` is in (where its weights and data are).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Reads the (latents, labels) the plugin was trained on, all sources stacked.
    pub fn training_data(&self) -> Result<(Latents, LabelTable)> {
        let sources = &self.manifest.training.data;
        if sources.is_empty() {
            return Err(Error::format(
                &self.path,
                "this plugin does not name its training data (training.data), so it cannot be extended",
            ));
        }
        let dim = self.manifest.flow.dim;
        let mut latents = Latents::new(dim, Vec::new())?;
        let mut labels = LabelTable {
            names: Vec::new(),
            rows: Vec::new(),
        };
        for d in sources {
            let source = match d.latents_seed {
                Some(seed) => LatentSource::Seed(seed),
                None => LatentSource::File(self.dir().join(&d.latents)),
            };
            let (l, t) = read_pair(&source, &self.dir().join(&d.labels), dim)?;
            latents.data.extend(l.data);
            labels = labels.stack(&t);
        }
        Ok((latents, labels))
    }

    /// SHA-256 of the weights file.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// The flow itself.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// Index of the attribute called `name`, or an error listing the known ones.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.attributes()
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.attributes().iter().map(|a| a.name.as_str()).collect();
                Error::invalid(format!(
                    "unknown attribute {name:?}; this plugin has: {}",
                    known.join(", ")
                ))
            })
    }

    /// Resolves `NAME=VALUE` pairs into per-attribute flow values (None where not set).
    pub fn resolve(&self, sets: &[(String, f32)]) -> Result<Vec<Option<f32>>> {
        let mut out = vec![None; self.attributes().len()];
        for (name, value) in sets {
            let k = self.index_of(name)?;
            out[k] = Some(self.attributes()[k].checked_flow_value(*value)?);
        }
        Ok(out)
    }

    fn check_dim(&self, dim: usize) -> Result<()> {
        let want = self.flow.config().dim;
        if dim != want {
            return Err(Error::invalid(format!(
                "flow expects vectors of {want} numbers, got {dim}"
            )));
        }
        Ok(())
    }

    fn tensor(&self, rows: &Latents) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &rows.data,
            (rows.count(), rows.dim),
            &self.device,
        )?)
    }

    fn rows(&self, t: &Tensor) -> Result<Latents> {
        let dim = t.dim(1)?;
        Latents::new(dim, t.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Latents → flow codes (forward flow).
    pub fn encode(&self, latents: &Latents) -> Result<Latents> {
        if let Some(g) = self.gpu.as_ref().filter(|_| gpu::CAN_WAIT) {
            check_width(g, latents.dim)?;
            return Latents::new(latents.dim, g.run(&latents.data, Direction::Forward)?);
        }
        if let Some(c) = &self.cpu {
            self.check_dim(latents.dim)?;
            return Latents::new(latents.dim, c.forward(&latents.data)?);
        }
        let (y, _) = self.flow.forward(&self.tensor(latents)?)?;
        self.rows(&y)
    }

    /// Flow codes → latents (inverse flow).
    pub fn decode(&self, codes: &Latents) -> Result<Latents> {
        if let Some(g) = self.gpu.as_ref().filter(|_| gpu::CAN_WAIT) {
            check_width(g, codes.dim)?;
            return Latents::new(codes.dim, g.run(&codes.data, Direction::Inverse)?);
        }
        if let Some(c) = &self.cpu {
            self.check_dim(codes.dim)?;
            return Latents::new(codes.dim, c.inverse(&codes.data)?);
        }
        let z = self.flow.inverse(&self.tensor(codes)?)?;
        self.rows(&z)
    }

    /// The attribute values the flow reads off each latent, in user units.
    pub fn readout(&self, latents: &Latents) -> Result<Vec<Vec<f32>>> {
        let codes = self.encode(latents)?;
        Ok((0..codes.count())
            .map(|i| self.codes_to_values(codes.row(i)))
            .collect())
    }

    /// User-unit attribute values of one code vector.
    pub fn codes_to_values(&self, code: &[f32]) -> Vec<f32> {
        self.attributes()
            .iter()
            .zip(code)
            .map(|(a, &y)| a.from_flow(y))
            .collect()
    }

    /// Samples one flow code: see [`sample_code`].
    pub fn sample_code(
        &self,
        requested: &[Option<f32>],
        temperature: f32,
        rng: &mut SeededRng,
    ) -> Vec<f32> {
        sample_code(
            self.attributes(),
            self.manifest.prior_sigma,
            self.manifest.flow.dim,
            requested,
            temperature,
            rng,
        )
    }

    /// Sets attributes of one latent: forward flow, replace coordinates, inverse.
    pub fn edit(&self, latent: &[f32], values: &[Option<f32>]) -> Result<Vec<f32>> {
        let mut code = self
            .encode(&Latents::new(latent.len(), latent.to_vec())?)?
            .data;
        for (c, v) in code.iter_mut().zip(values) {
            if let Some(v) = v {
                *c = *v;
            }
        }
        Ok(self.decode(&Latents::new(code.len(), code)?)?.data)
    }
}

/// Samples one flow code of `dim` numbers: requested attributes (flow units)
/// are set, the others drawn from the prior (binary: a class by its frequency,
/// then N(±1, σ²); continuous: N(mean, std²) of the labels), and the free
/// coordinates from N(0, T²). The draws do not depend on what is requested, so
/// the same seed keeps the same identity whatever the attributes.
pub fn sample_code(
    attributes: &[Attribute],
    prior_sigma: f32,
    dim: usize,
    requested: &[Option<f32>],
    temperature: f32,
    rng: &mut SeededRng,
) -> Vec<f32> {
    let mut code = rng.normal_vec(dim);
    let k = attributes.len().min(dim);
    for v in &mut code[k..] {
        *v *= temperature;
    }
    for (j, a) in attributes.iter().take(k).enumerate() {
        let noise = code[j];
        let u = rng.uniform();
        code[j] = match (requested.get(j).copied().flatten(), a.kind) {
            (Some(v), _) => v,
            (None, AttributeKind::Binary) => {
                let mean = if u < a.positive_rate { 1.0 } else { -1.0 };
                mean + prior_sigma * noise
            }
            (None, AttributeKind::Continuous) => a.prior_mean + a.prior_std * noise,
        };
    }
    code
}

/// Reads training latents (a file or a seed) and their labels CSV, checking they
/// match row for row.
pub fn read_pair(
    latents: &LatentSource,
    labels_path: &Path,
    dim: usize,
) -> Result<(Latents, LabelTable)> {
    let t = labels::read(labels_path)?;
    let l = match latents {
        LatentSource::File(path) => latents::read(path, dim)?,
        LatentSource::Seed(seed) => latents::seeded(*seed, t.rows.len(), dim),
    };
    if t.rows.len() != l.count() {
        return Err(Error::format(
            labels_path,
            format!(
                "{} label rows, but {latents} holds {} latents",
                t.rows.len(),
                l.count()
            ),
        ));
    }
    Ok((l, t))
}

/// The GPU flow's width check, worded as the CPU flow's.
/// The flow packed for the CPU engine when it computes on the CPU.
fn cpu_flow(flow: &Flow, device: &Device) -> Result<Option<CpuFlow>> {
    if !device.is_cpu() {
        return Ok(None);
    }
    let engine = Engine::new(Kernel::detect());
    Ok(Some(CpuFlow::new(
        &flow.weights()?,
        flow.config().dim,
        engine,
    )?))
}

fn check_width(flow: &GpuFlow, dim: usize) -> Result<()> {
    if dim != flow.dim() {
        return Err(Error::invalid(format!(
            "flow expects vectors of {} numbers, got {dim}",
            flow.dim()
        )));
    }
    Ok(())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
