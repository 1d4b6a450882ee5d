//! A loaded model: the frozen generator and, optionally, a plugin for it.
//! Both front ends (CLI and GUI) work through this.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::RgbImage;

use crate::bundle::{self, Bundle};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::formats::latents::Latents;
use crate::generator::{Generator, images_to_bytes};
use crate::plugin::Plugin;

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

/// Generator + plugin on one device.
pub struct Model {
    bundle: Bundle,
    generator: Generator,
    plugin: Option<Plugin>,
    device: Device,
}

impl Model {
    /// Loads the model in `dir` (default: [`bundle::default_model_dir`]) on `device`.
    pub fn load(dir: Option<&Path>, plugin: PluginChoice, device: DeviceChoice) -> Result<Self> {
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(bundle::default_model_dir);
        let device = device.open()?;
        let bundle = Bundle::open(&dir)?;
        let generator = bundle.load_generator(&device)?;
        let mut model = Self {
            bundle,
            generator,
            plugin: None,
            device,
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

    /// Loads a plugin for this generator, replacing the current one only on success.
    pub fn set_plugin(&mut self, path: &Path) -> Result<()> {
        self.plugin = Some(Plugin::load(path, self.generator_sha256(), &self.device)?);
        Ok(())
    }

    /// Uses an in-memory plugin (e.g. one just trained).
    pub fn set_plugin_in_memory(&mut self, plugin: Plugin) {
        self.plugin = Some(plugin);
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
        let z = Tensor::from_slice(&latents.data, (latents.count(), latents.dim), &self.device)?;
        let images = self.generator.decode(&z)?;
        let size = self.generator.config().image_size() as u32;
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
