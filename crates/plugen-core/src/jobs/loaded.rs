//! A loaded model: the frozen generator and, optionally, a plugin for it.
//! Both front ends (CLI and GUI) work through this.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::compute::device::{Compute, DeviceChoice};
use crate::compute::gpu::{self, FaceFrame, FaceInput, GpuContext, GpuFace, GpuGenerator};
use crate::error::{Error, Result};
use crate::io::latents::Latents;
use crate::jobs::projection::{self, Projected};
use crate::model::bundle::{self, Bundle};
use crate::model::encoder::Encoder;
use crate::model::generator::{Generator, images_to_bytes};
use crate::model::plugin::Plugin;

/// Which plugin to load with a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginChoice<'a> {
    /// None at all.
    None,
    /// The bundle's own `plugin.json`, if it has one.
    BundleDefault,
    /// This `plugin.json` (or folder holding one).
    Path(&'a Path),
}

/// The generator on a wgpu device, and the editor's face texture once asked for.
struct GpuParts {
    ctx: Arc<GpuContext>,
    generator: GpuGenerator,
    face: Option<GpuFace>,
}

/// Generator + plugin on one device.
pub struct Model {
    bundle: Bundle,
    generator: Generator,
    plugin: Option<Plugin>,
    device: Device,
    gpu: Option<GpuParts>,
    device_name: String,
    device_note: Option<String>,
    /// The image encoder, once loaded (`Some(None)`: the bundle has none).
    encoder: Option<Option<Encoder>>,
}

impl Model {
    /// Loads the model in `dir` (default: [`bundle::default_model_dir`]) on `device`.
    pub fn load(dir: Option<&Path>, plugin: PluginChoice, device: DeviceChoice) -> Result<Self> {
        Self::load_on(dir, plugin, device.open_compute()?)
    }

    /// Loads the model on devices already open (the editor passes its window's wgpu device).
    pub fn load_on(dir: Option<&Path>, plugin: PluginChoice, compute: Compute) -> Result<Self> {
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(bundle::default_model_dir);
        let device_name = compute.describe();
        let device_note = compute.note;
        let device = compute.candle;
        let bundle = Bundle::open(&dir)?;
        let generator = bundle.load_generator(&device)?;
        let gpu = match compute.gpu {
            Some(ctx) => Some(GpuParts {
                generator: GpuGenerator::new(&ctx, &generator)?,
                ctx,
                face: None,
            }),
            None => None,
        };
        let mut model = Self {
            bundle,
            generator,
            plugin: None,
            device,
            gpu,
            device_name,
            device_note,
            encoder: None,
        };
        match plugin {
            PluginChoice::None => {}
            PluginChoice::BundleDefault => {
                if let Some(p) = model.bundle.default_plugin() {
                    model.set_plugin(&p)?;
                }
            }
            PluginChoice::Path(p) => model.set_plugin(p)?,
        }
        Ok(model)
    }

    /// The bundle's image encoder (loaded on first use), or None if it has none.
    /// A broken `encoder.json` or weights file is an error naming the file.
    pub fn encoder(&mut self) -> Result<Option<&Encoder>> {
        if self.encoder.is_none() {
            let loaded = match self.bundle.encoder() {
                Some(json) => Some(Encoder::load(&json, self.generator_sha256(), &self.device)?),
                None => None,
            };
            self.encoder = Some(loaded);
        }
        Ok(self.encoder.as_ref().and_then(Option::as_ref))
    }

    /// Projects an image (already `size`×`size`) into a latent: from the
    /// encoder's guess plus a few refinement steps where the bundle has an
    /// encoder and `use_encoder` is set, else 150 steps from a random start of
    /// `seed`; `steps` overrides the step count.
    pub fn project(
        &mut self,
        target: &RgbImage,
        use_encoder: bool,
        seed: u64,
        steps: Option<usize>,
        progress: &mut dyn FnMut(usize, usize, f32) -> bool,
    ) -> Result<Projected> {
        if use_encoder {
            self.encoder()?;
        }
        let encoder = self
            .encoder
            .as_ref()
            .and_then(Option::as_ref)
            .filter(|_| use_encoder);
        projection::project_image(&self.generator, encoder, target, seed, steps, progress)
    }

    /// The judges folder: `given`, else `judges/` beside this model's folder.
    pub fn judges_dir(&self, given: Option<&Path>) -> PathBuf {
        given.map_or_else(
            || crate::model::judges::JudgeSet::dir_beside(self.bundle().dir()),
            Path::to_path_buf,
        )
    }

    /// Loads a plugin for this generator, replacing the current one only on success.
    pub fn set_plugin(&mut self, path: &Path) -> Result<()> {
        let plugin = Plugin::load(path, self.generator_sha256(), &self.device)?;
        self.set_plugin_in_memory(plugin)
    }

    /// Uses an in-memory plugin (e.g. one just trained), on the GPU when one computes.
    pub fn set_plugin_in_memory(&mut self, mut plugin: Plugin) -> Result<()> {
        if let Some(g) = &self.gpu {
            plugin.use_gpu(&g.ctx)?;
        }
        self.plugin = Some(plugin);
        Ok(())
    }

    /// What computes the faces: "wgpu: ADAPTER (Backend)", "CUDA" or "CPU".
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Why a requested GPU is not used, if it is not (one line).
    pub fn device_note(&self) -> Option<&str> {
        self.device_note.as_deref()
    }

    /// The wgpu context, when generation runs through wgpu.
    pub fn gpu(&self) -> Option<&Arc<GpuContext>> {
        self.gpu.as_ref().map(|g| &g.ctx)
    }

    /// The generator on the GPU, when generation runs through wgpu.
    pub fn gpu_generator(&self) -> Option<&GpuGenerator> {
        self.gpu.as_ref().map(|g| &g.generator)
    }

    /// The face texture (made on first call; needs a wgpu context).
    pub fn face_texture(&mut self) -> Result<&GpuFace> {
        let g = self
            .gpu
            .as_mut()
            .ok_or_else(|| Error::invalid("the face texture needs a wgpu device"))?;
        if g.face.is_none() {
            g.face = Some(GpuFace::new(&g.ctx, &g.generator)?);
        }
        g.face
            .as_ref()
            .ok_or_else(|| Error::invalid("the face texture could not be made"))
    }

    /// Whether the face texture exists (faces then go there, see [`Model::render_face`]).
    pub fn has_face_texture(&self) -> bool {
        self.gpu.as_ref().is_some_and(|g| g.face.is_some())
    }

    /// Computes one face into the face texture (see [`Model::face_texture`]):
    /// no pixels come back, only the latent and its flow code.
    pub fn render_face(&mut self, input: FaceInput) -> Result<FaceFrame> {
        self.face_texture()?;
        let flow = self.plugin.as_ref().and_then(Plugin::gpu_flow);
        match &self.gpu {
            Some(GpuParts {
                generator,
                face: Some(face),
                ..
            }) if gpu::CAN_WAIT => face.render(generator, flow, input),
            Some(GpuParts {
                generator,
                face: Some(face),
                ..
            }) => {
                // In a browser: the GPU draws, the CPU computes the numbers.
                face.draw(generator, flow, input)?;
                self.face_numbers_on_cpu(input)
            }
            _ => Err(Error::invalid("the face texture needs a wgpu device")),
        }
    }

    /// The latent of a face and its flow code, computed on the CPU (the
    /// numbers [`Self::render_face`] reads back from the GPU where it may wait).
    fn face_numbers_on_cpu(&self, input: FaceInput) -> Result<FaceFrame> {
        let dim = self.latent_dim();
        let (latent, code) = match (input, &self.plugin) {
            (FaceInput::Code(c), Some(p)) => {
                let latent = p.decode(&Latents::new(dim, c.to_vec())?)?;
                let code = p.encode(&latent)?;
                (latent.data, code.data)
            }
            (FaceInput::Latent(z), Some(p)) => {
                let code = p.encode(&Latents::new(dim, z.to_vec())?)?;
                (z.to_vec(), code.data)
            }
            (FaceInput::Code(v) | FaceInput::Latent(v), None) => (v.to_vec(), Vec::new()),
        };
        Ok(FaceFrame { latent, code })
    }

    /// The model folder.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The frozen generator.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// SHA-256 of the generator weights.
    pub fn generator_sha256(&self) -> &str {
        &self.bundle.manifest().sha256
    }

    /// Latent length.
    pub fn latent_dim(&self) -> usize {
        self.generator.config().latent_dim()
    }

    /// The plugin, if one is loaded.
    pub fn plugin(&self) -> Option<&Plugin> {
        self.plugin.as_ref()
    }

    /// The plugin, or an error saying that this command needs one.
    pub fn require_plugin(&self) -> Result<&Plugin> {
        self.plugin.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "no plugin loaded: the model in {} has no plugin.json; pass --plugin PATH (train one with `plugen train`)",
                self.bundle.dir().display()
            ))
        })
    }

    /// The compute device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Decodes latents into RGB images (the fixed tanh → byte mapping).
    pub fn render(&self, latents: &Latents) -> Result<Vec<RgbImage>> {
        if latents.dim != self.latent_dim() {
            return Err(Error::invalid(format!(
                "latents have {} numbers, the generator expects {}",
                latents.dim,
                self.latent_dim()
            )));
        }
        let size = self.generator.config().image_size() as u32;
        if let Some(g) = self.gpu.as_ref().filter(|_| gpu::CAN_WAIT) {
            return g
                .generator
                .render_rgba(&latents.data)?
                .into_iter()
                .map(|rgba| {
                    let rgb = rgba
                        .chunks_exact(4)
                        .flat_map(|p| [p[0], p[1], p[2]])
                        .collect();
                    RgbImage::from_raw(size, size, rgb)
                        .ok_or_else(|| Error::invalid("image buffer size mismatch"))
                })
                .collect();
        }
        let z = Tensor::from_slice(&latents.data, (latents.count(), latents.dim), &self.device)?;
        let images = self.generator.decode(&z)?;
        let channels = self.generator.config().image_channels();
        images_to_bytes(&images)?
            .into_iter()
            .map(|bytes| {
                let rgb = if channels == 1 {
                    bytes.iter().flat_map(|&b| [b, b, b]).collect()
                } else {
                    bytes
                };
                RgbImage::from_raw(size, size, rgb)
                    .ok_or_else(|| Error::invalid("image buffer size mismatch"))
            })
            .collect()
    }
}
