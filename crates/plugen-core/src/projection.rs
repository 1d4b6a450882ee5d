//! Projecting an image into the generator's latent space: find the latent whose
//! face looks most like a given picture, by gradient descent through the frozen
//! generator (Adam on the latent, pixel MSE plus a pull towards N(0, I)).

use std::path::Path;

use candle_core::{DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use image::{ImageReader, RgbImage, imageops::FilterType};

use crate::error::{Error, Result};
use crate::generator::Generator;
use crate::rng::SeededRng;

/// Largest image side accepted for projection (pixels).
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest decoded image accepted (bytes).
const MAX_IMAGE_ALLOC: u64 = 512 << 20;

/// Projection settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectionConfig {
    /// Optimisation steps.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Weight of the mean squared latent (keeps it near the generator's typical set).
    pub prior_weight: f64,
    /// Seed of the starting latent.
    pub seed: u64,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            steps: 150,
            learning_rate: 0.05,
            prior_weight: 0.01,
            seed: 0,
        }
    }
}

/// Reads a PNG/JPEG, refusing absurd sizes before decoding, and returns it
/// centre-cropped to a square and resized to `size`×`size`.
pub fn load_target(path: &Path, size: u32) -> Result<RgbImage> {
    let mut reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Error::format(path, format!("cannot read image: {e}")))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::format(path, "image is empty"));
    }
    let side = w.min(h);
    let cropped =
        image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    Ok(image::imageops::resize(
        &cropped,
        size,
        size,
        FilterType::Triangle,
    ))
}

/// Finds a latent whose generated image matches `target` (size × size RGB).
/// `progress(step, loss)` is called after every step; returning `false` cancels.
pub fn project(
    generator: &Generator,
    target: &RgbImage,
    config: &ProjectionConfig,
    progress: &mut dyn FnMut(usize, f32) -> bool,
) -> Result<Vec<f32>> {
    let size = generator.config().image_size() as u32;
    if target.dimensions() != (size, size) {
        return Err(Error::invalid(format!(
            "projection target must be {size}×{size}"
        )));
    }
    let device = generator.device();
    let dim = generator.config().latent_dim();
    // Target in [−1, 1], channel-last like the generator's output.
    let pixels: Vec<f32> = target
        .as_raw()
        .iter()
        .map(|&b| b as f32 / 127.5 - 1.0)
        .collect();
    let target = Tensor::from_vec(pixels, (1, size as usize, size as usize, 3), device)?;
    let start = SeededRng::new(config.seed, 0).normal_vec(dim);
    let z = Var::from_tensor(&Tensor::from_vec(start, (1, dim), device)?)?;
    let mut opt = AdamW::new(
        vec![z.clone()],
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    for step in 0..config.steps {
        let image = generator.decode_differentiable(z.as_tensor())?;
        let mse = (image - &target)?.sqr()?.mean_all()?;
        let prior = (z.as_tensor().sqr()?.mean_all()? * config.prior_weight)?;
        let loss = (&mse + prior)?;
        opt.backward_step(&loss)?;
        if !progress(step + 1, mse.to_scalar::<f32>()?) {
            return Err(Error::Cancelled);
        }
    }
    Ok(z.as_tensor()
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?)
}
