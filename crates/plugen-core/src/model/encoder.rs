//! The image encoder: a small CNN that maps a face back to the generator's
//! latent in one pass, so that projecting a photo starts close to its answer
//! and needs only a few refinement steps (the projection job).
//!
//! Architecture (like a DCGAN discriminator): a 4×4 convolution at stride 4
//! (non-overlapping patches), then 4×4 convolutions at stride 2 with padding 1
//! that halve the map down to 4×4, each followed by LeakyReLU(0.2); then one
//! hidden dense layer and a dense layer to the latent. Activations are
//! channel-last, as the generator's output. Every convolution is an explicit
//! im2col (for stride 2: space-to-depth of the padded map, then the 2×2
//! neighbourhood of cells — exactly the 16 taps of a 4×4 window) and one GEMM,
//! so that training on the CPU uses only fast, differentiable tensor ops.
//! Weights by name, in candle_nn `Linear` layout (out, in): `convs.0` (columns
//! ordered (py, px, c_in)), `convs.{i≥1}` (columns (dy, dx, py, px, c_in), the
//! window row being 2·dy + py), `hidden`, `out`, each `.weight` and `.bias`.
//!
//! It is trained on the generator's own samples
//! ([`crate::learn::train_encoder`]): pairs are free —
//! sample z, decode, learn to map the face back to z.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, WithPath};
use crate::io::fsutil;
use crate::io::weights;

/// Value of the encoder manifest's `format` field.
pub const FORMAT: &str = "plugen-encoder";
/// File name of the encoder manifest in a model folder.
pub const MANIFEST_FILE: &str = "encoder.json";
/// File name of the encoder weights in a model folder.
pub const WEIGHTS_FILE: &str = "encoder.safetensors";
/// Slope of LeakyReLU for negative inputs.
const LEAK: f64 = 0.2;

/// Shape of an encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// Side of the square input image (a power of two ≥ 8).
    pub image_size: usize,
    /// Channels of the input image (3 for RGB).
    pub image_channels: usize,
    /// Output channels of each convolution (the first at stride 4, the others at
    /// stride 2, down to 4×4): `image_size = 8 · 2^len`.
    pub channels: Vec<usize>,
    /// Width of the hidden dense layer.
    pub hidden: usize,
    /// Length of the latent it predicts.
    pub latent_dim: usize,
}

impl EncoderConfig {
    /// The default shape for a generator of `image_size` px and `latent_dim` numbers.
    pub fn default_for(image_size: usize, image_channels: usize, latent_dim: usize) -> Self {
        let stages = image_size.max(16).trailing_zeros().saturating_sub(3) as usize;
        let channels = (0..stages).map(|i| (32usize << i).min(256)).collect();
        Self {
            image_size,
            image_channels,
            channels,
            hidden: 256,
            latent_dim,
        }
    }

    /// Checks that the shape is usable.
    pub fn validate(&self) -> Result<()> {
        let s = self.image_size;
        if !s.is_power_of_two() || !(16..=1024).contains(&s) {
            return Err(Error::invalid(format!(
                "encoder image size must be a power of two in 16..=1024, not {s}"
            )));
        }
        if 8usize << self.channels.len() != s {
            return Err(Error::invalid(format!(
                "an encoder for {s}×{s} images needs {} convolutions, this one has {}",
                s.trailing_zeros() - 3,
                self.channels.len()
            )));
        }
        let all = [self.image_channels, self.hidden, self.latent_dim];
        if all
            .iter()
            .chain(&self.channels)
            .any(|&c| c == 0 || c > 8192)
        {
            return Err(Error::invalid(format!(
                "encoder widths must be 1..=8192, got {self:?}"
            )));
        }
        Ok(())
    }
}

/// `encoder.json`: the encoder's shape, weights and what it was trained for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Layer shapes.
    pub encoder: EncoderConfig,
    /// Weights file name, next to the manifest.
    pub weights: String,
    /// SHA-256 of the weights file.
    pub sha256: String,
    /// SHA-256 of the generator weights it inverts.
    pub generator_sha256: String,
    /// How it was trained.
    pub training: EncoderTraining,
}

/// Training settings and result, recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderTraining {
    /// Optimisation steps.
    pub steps: usize,
    /// Faces per step.
    pub batch: usize,
    /// Peak learning rate (cosine decay to a tenth).
    pub learning_rate: f64,
    /// Seed of the samples and the initial weights.
    pub seed: u64,
    /// Latent mean squared error on held-out faces after training.
    pub heldout_latent_mse: f32,
    /// Pixel mean squared error (in [−1, 1] units) of the decoded prediction on held-out faces.
    pub heldout_pixel_mse: f32,
}

/// The encoder: images in, latents out.
pub struct Encoder {
    config: EncoderConfig,
    convs: Vec<Linear>,
    hidden: Linear,
    out: Linear,
}

impl Encoder {
    /// Builds the encoder from weights named as in the module docs.
    pub fn new(vb: VarBuilder, config: EncoderConfig) -> Result<Self> {
        config.validate()?;
        let mut layers = layer_shapes(&config)
            .into_iter()
            .map(|(name, fan_in, fan_out)| Ok(candle_nn::linear(fan_in, fan_out, vb.pp(name))?))
            .collect::<Result<Vec<Linear>>>()?;
        let (out, hidden) = match (layers.pop(), layers.pop()) {
            (Some(out), Some(hidden)) => (out, hidden),
            _ => return Err(Error::invalid("an encoder needs its two dense layers")),
        };
        let convs = layers;
        Ok(Self {
            config,
            convs,
            hidden,
            out,
        })
    }

    /// Loads `encoder.json` and its weights, checking the weights' hash and that
    /// it was trained for the generator with `generator_sha256`.
    pub fn load(json: &Path, generator_sha256: &str, device: &Device) -> Result<Self> {
        let bytes = fsutil::read_limited(json, 1 << 20)?;
        let manifest: EncoderManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::format(json, format!("not a plugen encoder manifest: {e}")))?;
        if manifest.format != FORMAT || manifest.version != 1 {
            return Err(Error::format(
                json,
                format!(
                    "unsupported format {:?} v{}",
                    manifest.format, manifest.version
                ),
            ));
        }
        manifest.encoder.validate().with_path(json)?;
        if manifest.generator_sha256 != generator_sha256 {
            return Err(Error::format(
                json,
                "this encoder was trained for another generator",
            ));
        }
        if manifest.weights.contains(['/', '\\']) || manifest.weights.starts_with('.') {
            return Err(Error::format(
                json,
                "weights must be a file name next to encoder.json",
            ));
        }
        let path = json
            .parent()
            .unwrap_or(Path::new("."))
            .join(&manifest.weights);
        let file = weights::load(&path, device)?;
        if file.sha256 != manifest.sha256 {
            return Err(Error::format(
                &path,
                "weights do not match the sha256 in encoder.json (corrupt or replaced file)",
            ));
        }
        let vb = VarBuilder::from_tensors(file.tensors, DType::F32, device);
        Self::new(vb, manifest.encoder).with_path(&path)
    }

    /// The encoder's shape.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The device its weights live on.
    pub fn device(&self) -> &Device {
        self.out.weight().device()
    }

    /// Predicts latents (N, latent_dim) for images (N, size, size, channels),
    /// channel-last, values in [−1, 1] (the generator's output convention).
    pub fn encode(&self, images: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = images.dims4()?;
        let s = self.config.image_size;
        if (h, w, c) != (s, s, self.config.image_channels) {
            return Err(Error::invalid(format!(
                "the encoder takes {s}×{s}×{} images, not {h}×{w}×{c}",
                self.config.image_channels
            )));
        }
        let mut x = images.to_dtype(DType::F32)?;
        for (i, conv) in self.convs.iter().enumerate() {
            let cols = if i == 0 {
                patches_4x4(&x)?
            } else {
                im2col_4x4_stride2(&x)?
            };
            let (n, h, w, k) = cols.dims4()?;
            let y = conv.forward(&cols.reshape((n * h * w, k))?)?;
            x = leaky_relu(&y)?.reshape((n, h, w, ()))?;
        }
        let flat = x.reshape((n, ()))?;
        let hidden = leaky_relu(&self.hidden.forward(&flat)?)?;
        Ok(self.out.forward(&hidden)?)
    }
}

/// Every layer's (name, fan_in, fan_out), in the order of the module docs.
pub(crate) fn layer_shapes(config: &EncoderConfig) -> Vec<(String, usize, usize)> {
    let mut layers = Vec::new();
    let mut cin = config.image_channels;
    for (i, &cout) in config.channels.iter().enumerate() {
        layers.push((format!("convs.{i}"), 16 * cin, cout));
        cin = cout;
    }
    layers.push(("hidden".into(), 16 * cin, config.hidden));
    layers.push(("out".into(), config.hidden, config.latent_dim));
    layers
}

fn leaky_relu(x: &Tensor) -> Result<Tensor> {
    Ok(x.maximum(&(x * LEAK)?)?)
}

/// Non-overlapping 4×4 patches as columns: (N, H, W, C) → (N, H/4, W/4, 16·C),
/// ordered (py, px, c).
fn patches_4x4(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    Ok(x.reshape((n, h / 4, 4, w / 4, 4, c))?
        .permute((0, 1, 3, 2, 4, 5))?
        .reshape((n, h / 4, w / 4, 16 * c))?)
}

/// The 16 taps of every 4×4 window at stride 2 with padding 1, as columns:
/// (N, H, W, C) → (N, H/2, W/2, 16·C), ordered (dy, dx, py, px, c) where the
/// window's row offset is 2·dy + py (and columns likewise).
fn im2col_4x4_stride2(x: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let (hp, wp) = (h + 2, w + 2);
    // Space-to-depth of the padded map: cell (i, j) holds padded rows 2i..2i+1, cols 2j..2j+1.
    let cells = x
        .pad_with_zeros(1, 1, 1)?
        .pad_with_zeros(2, 1, 1)?
        .reshape((n, hp / 2, 2, wp / 2, 2, c))?
        .permute((0, 1, 3, 2, 4, 5))?
        .reshape((n, hp / 2, wp / 2, 4 * c))?;
    // The window at output (i, j) starts at padded row 2i: cells i and i+1.
    let mut taps = Vec::with_capacity(4);
    for dy in 0..2 {
        for dx in 0..2 {
            taps.push(cells.narrow(1, dy, h / 2)?.narrow(2, dx, w / 2)?);
        }
    }
    Ok(Tensor::cat(&taps, 3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The im2col columns times a packed kernel equal candle's conv2d
    /// (stride 2, padding 1) on the same input: the tap order is right.
    #[test]
    fn im2col_matches_conv2d() -> Result<()> {
        let dev = Device::Cpu;
        let (n, cin, cout, h) = (2, 3, 5, 8);
        let x = Tensor::randn(0f32, 1., (n, cin, h, h), &dev)?;
        let k = Tensor::randn(0f32, 1., (cout, cin, 4, 4), &dev)?;
        let reference = x.conv2d(&k, 1, 2, 1, 1)?; // padding 1, stride 2
        // Rows ordered (dy, dx, py, px, c) with ky = 2·dy + py, kx = 2·dx + px.
        let packed = k
            .reshape((cout, cin, 2, 2, 2, 2))? // (co, c, dy, py, dx, px)
            .permute((2, 4, 3, 5, 1, 0))? // (dy, dx, py, px, c, co)
            .reshape((16 * cin, cout))?;
        let cols = im2col_4x4_stride2(&x.permute((0, 2, 3, 1))?)?;
        let ours = cols
            .reshape((n * (h / 2) * (h / 2), 16 * cin))?
            .matmul(&packed)?
            .reshape((n, h / 2, h / 2, cout))?
            .permute((0, 3, 1, 2))?;
        let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "max diff {diff}");
        Ok(())
    }

    #[test]
    fn config_checks_shapes() {
        let c = EncoderConfig::default_for(64, 3, 100);
        assert_eq!(c.channels, vec![32, 64, 128]);
        assert!(c.validate().is_ok());
        let mut bad = c.clone();
        bad.channels.pop();
        assert!(bad.validate().is_err());
        let mut bad = c;
        bad.image_size = 48;
        assert!(bad.validate().is_err());
    }
}
