//! The frozen DCGAN face generator.
//!
//! Architecture (as in PyTorch's DCGAN tutorial and `gan-face-generate`): a
//! latent `z` of `channels[0]` numbers goes through one 4×4 transposed
//! convolution to a 4×4 map, then stride-2 4×4 transposed convolutions that
//! double the size, each followed by eval-mode BatchNorm and ReLU, and a final
//! tanh. Weights are read by name from a [`VarBuilder`]:
//! `blocks.{i}.conv.weight` of shape (C_in, C_out, 4, 4) and, for every block
//! but the last, `blocks.{i}.bn.{weight,bias,running_mean,running_var}`.
//!
//! At load time BatchNorm is folded into the convolution weights and a per-channel
//! shift. On the CPU, [`Generator::decode`] runs the packed engine of
//! `cpu_decode` (phase-split implicit GEMMs, the same bits in any batch). The
//! tensor path, used on CUDA and Metal and for gradients
//! ([`Generator::decode_differentiable`]), packs each weight as a
//! (C_in, 4·4·C_out) matrix: every layer is one candle GEMM on channel-last
//! activations followed by a col2im of four shifted adds per output phase.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::compute::cpu_decode::CpuDecoder;
use crate::compute::cpu_gemm::{Activation, Engine, Kernel};
use crate::compute::plain_weights::{GeneratorLayers, PackedLayer};
use crate::error::{Error, Result};

/// Kernel size of every transposed convolution.
const KERNEL: usize = 4;
/// BatchNorm's epsilon, as in PyTorch's default.
const BN_EPS: f64 = 1e-5;

/// Shape of a DCGAN generator: the channel count at every stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// `[latent_dim, c1, c2, ..., image_channels]`; `len() - 1` layers.
    pub channels: Vec<usize>,
}

impl GeneratorConfig {
    /// Length of the latent vector.
    pub fn latent_dim(&self) -> usize {
        self.channels.first().copied().unwrap_or(0)
    }

    /// Channels of the output image (3 for RGB).
    pub fn image_channels(&self) -> usize {
        self.channels.last().copied().unwrap_or(0)
    }

    /// Side of the square output image: 4 after the first layer, doubled by each next one.
    pub fn image_size(&self) -> usize {
        KERNEL << self.channels.len().saturating_sub(2)
    }

    /// Checks that the shape describes a usable generator.
    pub fn validate(&self) -> Result<()> {
        let n = self.channels.len();
        if !(3..=9).contains(&n) {
            return Err(Error::invalid(format!(
                "a generator needs 2 to 8 layers, this one has {}",
                n.saturating_sub(1)
            )));
        }
        if self.channels.iter().any(|&c| c == 0 || c > 8192) {
            return Err(Error::invalid(format!(
                "generator channel counts must be 1..=8192, got {:?}",
                self.channels
            )));
        }
        if !matches!(self.image_channels(), 1 | 3) {
            return Err(Error::invalid(format!(
                "generator must output 1 or 3 channels, not {}",
                self.image_channels()
            )));
        }
        Ok(())
    }
}

/// One transposed convolution with its folded BatchNorm.
struct Block {
    /// (C_in, 4·4·C_out): weights already scaled by BatchNorm, ordered (ky, kx, c_out).
    packed: Tensor,
    /// Per-channel shift added after the convolution, shape (C_out).
    shift: Tensor,
    out_channels: usize,
}

/// The frozen generator: latents in, images out.
pub struct Generator {
    config: GeneratorConfig,
    blocks: Vec<Block>,
    device: Device,
    /// The packed CPU path (the CPU engine's decoder), on the CPU only.
    cpu: Option<CpuDecoder>,
}

impl Generator {
    /// Builds the generator from weights named as in the module docs.
    pub fn new(vb: VarBuilder, config: GeneratorConfig) -> Result<Self> {
        config.validate()?;
        let layers = config.channels.len() - 1;
        let mut blocks = Vec::with_capacity(layers);
        for i in 0..layers {
            let (cin, cout) = (config.channels[i], config.channels[i + 1]);
            let vb = vb.pp(format!("blocks.{i}"));
            let weight = vb.get((cin, cout, KERNEL, KERNEL), "conv.weight")?;
            let (scale, shift) = if i + 1 < layers {
                let bn = vb.pp("bn");
                let gamma = bn.get(cout, "weight")?;
                let beta = bn.get(cout, "bias")?;
                let mean = bn.get(cout, "running_mean")?;
                let var = bn.get(cout, "running_var")?;
                let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
                let shift = (beta - mean.mul(&scale)?)?;
                (scale, shift)
            } else {
                let ones = Tensor::ones(cout, DType::F32, vb.device())?;
                (ones.clone(), ones.zeros_like()?)
            };
            let packed = weight
                .permute((0, 2, 3, 1))?
                .broadcast_mul(&scale)?
                .reshape((cin, KERNEL * KERNEL * cout))?
                .contiguous()?;
            blocks.push(Block {
                packed,
                shift,
                out_channels: cout,
            });
        }
        let mut generator = Self {
            config,
            blocks,
            device: vb.device().clone(),
            cpu: None,
        };
        if generator.device.is_cpu() {
            generator.set_cpu_kernel(Kernel::detect())?;
        }
        Ok(generator)
    }

    /// Chooses the instruction set of the CPU path (the fastest available is
    /// the default); an error if this CPU lacks it or the generator is not on the CPU.
    pub fn set_cpu_kernel(&mut self, kernel: Kernel) -> Result<()> {
        if !self.device.is_cpu() {
            return Err(Error::invalid(
                "the CPU kernels need a generator on the CPU",
            ));
        }
        if !kernel.available() {
            return Err(Error::invalid(format!(
                "this CPU cannot run the {} kernel",
                kernel.name()
            )));
        }
        self.cpu = Some(CpuDecoder::new(&self.packed_layers()?, Engine::new(kernel)));
        Ok(())
    }

    /// The instruction set the CPU path runs, `None` off the CPU.
    pub fn cpu_kernel(&self) -> Option<Kernel> {
        self.cpu.as_ref().map(|c| c.engine().kernel())
    }

    /// The generator's shape.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// Every layer's folded, packed weights, first layer first. Layer 0 maps
    /// the latent to a 4×4 map (ReLU), the others are stride-2 transposed
    /// convolutions (ReLU; tanh for the last).
    pub fn packed_layers(&self) -> Result<Vec<PackedLayer>> {
        self.blocks
            .iter()
            .map(|b| {
                let (cin, _) = b.packed.dims2()?;
                Ok(PackedLayer {
                    in_channels: cin,
                    out_channels: b.out_channels,
                    weight: b.packed.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    shift: b.shift.to_dtype(DType::F32)?.to_vec1()?,
                })
            })
            .collect()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Decodes latents of shape (N, latent_dim) into images of shape
    /// (N, size, size, channels), channel-last, values in [−1, 1]. On the CPU
    /// the packed engine runs on plain memory, which gradients do not flow
    /// through: use [`Generator::decode_differentiable`] to backpropagate to `z`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let Some(cpu) = &self.cpu else {
            return self.decode_differentiable(z);
        };
        let n = self.latent_rows(z)?;
        let pixels = cpu.decode(&z.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)?;
        let size = self.config.image_size();
        let shape = (n, size, size, self.config.image_channels());
        Ok(Tensor::from_vec(pixels, shape, &self.device)?)
    }

    /// The number of latents in `z`, or why it is not (N, latent_dim).
    fn latent_rows(&self, z: &Tensor) -> Result<usize> {
        let (n, dim) = z.dims2()?;
        if dim != self.config.latent_dim() {
            return Err(Error::invalid(format!(
                "latent has {dim} numbers, the generator expects {}",
                self.config.latent_dim()
            )));
        }
        Ok(n)
    }

    /// Like [`Generator::decode`], built only from tensor operations so that
    /// gradients reach `z` (image projection); also the path on CUDA and Metal.
    pub fn decode_differentiable(&self, z: &Tensor) -> Result<Tensor> {
        let n = self.latent_rows(z)?;
        let z = z.to_dtype(DType::F32)?.to_device(&self.device)?;
        let last = self.blocks.len() - 1;
        let mut x = Tensor::zeros(1, DType::F32, &self.device)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let activation = if i == last {
                Activation::Tanh
            } else {
                Activation::Relu
            };
            if i == 0 {
                let y = z
                    .matmul(&block.packed)?
                    .reshape((n, KERNEL, KERNEL, block.out_channels))?
                    .broadcast_add(&block.shift)?;
                x = activate(activation, &y)?;
                continue;
            }
            let (n, h, w, cin) = x.dims4()?;
            let cols = x.reshape((n * h * w, cin))?.matmul(&block.packed)?;
            let cols = cols.reshape((n, h, w, KERNEL, KERNEL, block.out_channels))?;
            let y = col2im_stride2(&cols)?.broadcast_add(&block.shift)?;
            x = activate(activation, &y)?;
        }
        Ok(x)
    }

    /// Like [`Generator::decode`] but channel-first, (N, channels, size, size), as PyTorch lays images out.
    pub fn decode_nchw(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.decode(z)?.permute((0, 3, 1, 2))?.contiguous()?)
    }
}

/// A layer's activation on a tensor.
fn activate(act: Activation, t: &Tensor) -> Result<Tensor> {
    Ok(match act {
        Activation::Identity => t.clone(),
        Activation::Relu => t.relu()?,
        Activation::LeakyRelu(slope) => (t.relu()? + (t.minimum(0f64)? * slope as f64)?)?,
        Activation::Tanh => t.tanh()?,
    })
}

/// Scatters per-tap columns of a stride-2, padding-1, 4×4 transposed convolution
/// into the output map.
///
/// `cols` is (N, H, W, 4, 4, C): the contribution of input pixel (iy, ix) through
/// kernel tap (ky, kx). Output row `oy = 2·iy + ky − 1`, so an even row 2m takes
/// taps ky=1 (iy=m) and ky=3 (iy=m−1); an odd row 2m+1 takes ky=0 (iy=m+1) and
/// ky=2 (iy=m); columns likewise. Returns (N, 2H, 2W, C).
fn col2im_stride2(cols: &Tensor) -> Result<Tensor> {
    const TAPS: [[(usize, isize); 2]; 2] = [[(1, 0), (3, -1)], [(0, 1), (2, 0)]];
    let (h, w) = match cols.dims() {
        [_, h, w, _, _, _] => (*h, *w),
        d => {
            return Err(Error::invalid(format!(
                "col2im: expected 6 dims, got {d:?}"
            )));
        }
    };
    let padded = cols.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
    let tap = |ky: usize, dy: isize, kx: usize, dx: isize| -> Result<Tensor> {
        Ok(padded
            .narrow(1, (1 + dy) as usize, h)?
            .narrow(2, (1 + dx) as usize, w)?
            .narrow(3, ky, 1)?
            .narrow(4, kx, 1)?
            .squeeze(4)?
            .squeeze(3)?)
    };
    let phase = |py: usize, px: usize| -> Result<Tensor> {
        let mut sum: Option<Tensor> = None;
        for &(ky, dy) in &TAPS[py] {
            for &(kx, dx) in &TAPS[px] {
                let t = tap(ky, dy, kx, dx)?;
                sum = Some(match sum {
                    None => t,
                    Some(s) => (s + t)?,
                });
            }
        }
        sum.ok_or_else(|| Error::invalid("col2im: no taps"))
    };
    let row0 = Tensor::stack(&[phase(0, 0)?, phase(0, 1)?], 3)?;
    let row1 = Tensor::stack(&[phase(1, 0)?, phase(1, 1)?], 3)?;
    let out = Tensor::stack(&[row0, row1], 2)?;
    let (n, c) = (out.dim(0)?, out.dim(5)?);
    Ok(out.reshape((n, 2 * h, 2 * w, c))?)
}

/// Maps a tanh output in [−1, 1] to a byte: `round((x + 1) · 127.5)`, clamped.
/// The one pixel mapping used everywhere (CLI, GUI, export); NaN maps to 0.
pub fn pixel_to_byte(x: f32) -> u8 {
    let v = ((x + 1.0) * 127.5).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(0.0, 255.0) as u8
    }
}

/// Converts a channel-last image batch (N, H, W, C) in [−1, 1] to bytes, one `Vec` per image.
pub fn images_to_bytes(images: &Tensor) -> Result<Vec<Vec<u8>>> {
    let (n, _, _, _) = images.dims4()?;
    let flat = images.flatten_from(1)?.to_dtype(DType::F32)?;
    let rows: Vec<Vec<f32>> = flat.to_vec2()?;
    debug_assert_eq!(rows.len(), n);
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().map(pixel_to_byte).collect())
        .collect())
}

/// Mean over all pixels of each image: a cheap scalar for quick checks.
pub fn mean_intensity(images: &Tensor) -> Result<Vec<f32>> {
    Ok(images.flatten_from(1)?.mean(D::Minus1)?.to_vec1()?)
}

impl GeneratorLayers for Generator {
    fn packed_layers(&self) -> Result<Vec<PackedLayer>> {
        Generator::packed_layers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_mapping_is_fixed_and_clamped() {
        assert_eq!(pixel_to_byte(-1.0), 0);
        assert_eq!(pixel_to_byte(1.0), 255);
        assert_eq!(pixel_to_byte(0.0), 128); // 127.5 rounds half away from zero
        assert_eq!(pixel_to_byte(-2.0), 0);
        assert_eq!(pixel_to_byte(3.0), 255);
        assert_eq!(pixel_to_byte(f32::NAN), 0);
    }

    #[test]
    fn image_size_follows_layers() {
        let c = GeneratorConfig {
            channels: vec![100, 512, 256, 128, 64, 3],
        };
        assert_eq!(c.image_size(), 64);
        assert!(c.validate().is_ok());
        let bad = GeneratorConfig {
            channels: vec![100, 3],
        };
        assert!(bad.validate().is_err());
    }

    /// The GEMM + col2im path must equal candle's reference conv_transpose2d.
    #[test]
    fn col2im_matches_conv_transpose2d() -> Result<()> {
        let dev = Device::Cpu;
        let (n, cin, cout, h) = (2, 5, 3, 4);
        let x = Tensor::randn(0f32, 1., (n, cin, h, h), &dev)?;
        let w = Tensor::randn(0f32, 1., (cin, cout, 4, 4), &dev)?;
        let reference = x.conv_transpose2d(&w, 1, 0, 2, 1)?; // padding 1, stride 2
        let packed = w.permute((0, 2, 3, 1))?.reshape((cin, 16 * cout))?;
        let cols = x
            .permute((0, 2, 3, 1))?
            .reshape((n * h * h, cin))?
            .matmul(&packed)?
            .reshape((n, h, h, 4, 4, cout))?;
        let ours = col2im_stride2(&cols)?.permute((0, 3, 1, 2))?;
        let diff = (ours - &reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "max diff {diff}");
        // The CPU engine's gather (zero shift, ReLU) equals relu(reference).
        let flat: Vec<f32> = cols.flatten_all()?.to_vec1()?;
        let gathered = crate::compute::cpu_decode::gather_taps(
            &flat,
            (n, h, h, cout),
            &vec![0.0; cout],
            Activation::Relu,
        );
        let gathered =
            Tensor::from_vec(gathered, (n, 2 * h, 2 * h, cout), &dev)?.permute((0, 3, 1, 2))?;
        let diff = (gathered - reference.relu()?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-4, "gathered max diff {diff}");
        Ok(())
    }
}
