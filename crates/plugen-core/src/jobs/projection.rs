//! Projecting an image into the generator's latent space: find the latent whose
//! face looks most like a given picture, by gradient descent through the frozen
//! generator (Adam on the latent, pixel MSE plus a pull towards N(0, I)).
//!
//! With the model's [`Encoder`], the descent starts from the encoder's guess and
//! needs only a few refinement steps ([`ProjectionConfig::refinement`]); without
//! one it starts from a seeded random latent ([`ProjectionConfig::default`]).

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use image::{ImageReader, RgbImage, imageops::FilterType};

use crate::error::{Error, Result};
use crate::model::encoder::Encoder;
use crate::model::generator::Generator;
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
    /// From a random start: 150 steps.
    fn default() -> Self {
        Self {
            steps: 150,
            learning_rate: 0.05,
            prior_weight: 0.01,
            seed: 0,
        }
    }
}

impl ProjectionConfig {
    /// From the encoder's guess: a few smaller steps.
    pub fn refinement() -> Self {
        Self {
            steps: REFINEMENT_STEPS,
            learning_rate: 0.1,
            ..Self::default()
        }
    }
}

/// Refinement steps after the encoder's guess. Measured on this project's
/// 2-core machine (`plugen bench --projection`): 25 steps at learning rate 0.1
/// reach the 150-step error on the bundled photos in about 2.5 s; 12 steps at
/// 0.03 were 4× faster but 45 % worse on photos.
pub const REFINEMENT_STEPS: usize = 25;
/// Smallest image side accepted for projection (pixels): below it there is no face to find.
pub const MIN_IMAGE_SIDE: u32 = 16;

/// A finished projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    /// The latent found.
    pub latent: Vec<f32>,
    /// Pixel mean squared error of its face against the target, in [−1, 1] units.
    pub mse: f32,
    /// Whether it started from the encoder's guess.
    pub from_encoder: bool,
}

/// Projects `target`: from the encoder's guess plus [`ProjectionConfig::refinement`]
/// when there is an encoder, else from a random latent of `seed` with the
/// default 150 steps; `steps` overrides either count. `progress(step, steps,
/// loss)` as in [`project`].
pub fn project_image(
    generator: &Generator,
    encoder: Option<&Encoder>,
    target: &RgbImage,
    seed: u64,
    steps: Option<usize>,
    progress: &mut dyn FnMut(usize, usize, f32) -> bool,
) -> Result<Projected> {
    let (config, start) = match encoder {
        Some(e) => (
            ProjectionConfig::refinement(),
            Some(initial_guess(e, target)?),
        ),
        None => (ProjectionConfig::default(), None),
    };
    let config = ProjectionConfig {
        seed,
        steps: steps.unwrap_or(config.steps),
        ..config
    };
    let steps = config.steps;
    let latent = project(
        generator,
        target,
        &config,
        start.as_deref(),
        &mut |step, loss| progress(step, steps, loss),
    )?;
    let mse = pixel_mse(generator, &latent, target)?;
    Ok(Projected {
        latent,
        mse,
        from_encoder: encoder.is_some(),
    })
}

/// The encoder's latent for `target`.
pub fn initial_guess(encoder: &Encoder, target: &RgbImage) -> Result<Vec<f32>> {
    let size = encoder.config().image_size;
    let image = target_tensor(target, size, encoder.device())?;
    Ok(encoder.encode(&image)?.flatten_all()?.to_vec1()?)
}

/// Pixel mean squared error (in [−1, 1] units) between the face of `latent` and `target`.
pub fn pixel_mse(generator: &Generator, latent: &[f32], target: &RgbImage) -> Result<f32> {
    let size = generator.config().image_size();
    let device = generator.device();
    let z = Tensor::from_slice(latent, (1, latent.len()), device)?;
    let face = generator.decode(&z)?;
    let target = target_tensor(target, size, device)?;
    Ok((face - target)?.sqr()?.mean_all()?.to_scalar::<f32>()?)
}

/// `target` as a (1, size, size, 3) tensor in [−1, 1], channel-last like the generator's output.
fn target_tensor(target: &RgbImage, size: usize, device: &Device) -> Result<Tensor> {
    if target.dimensions() != (size as u32, size as u32) {
        return Err(Error::invalid(format!(
            "projection target must be {size}×{size}"
        )));
    }
    let pixels: Vec<f32> = target
        .as_raw()
        .iter()
        .map(|&b| b as f32 / 127.5 - 1.0)
        .collect();
    Ok(Tensor::from_vec(pixels, (1, size, size, 3), device)?)
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
    fit_square(&img, size).map_err(|e| Error::format(path, e))
}

/// An image centre-cropped to a square and resized to `size`×`size`, as
/// [`load_target`] does to a file; refuses empty images and ones too small
/// to hold a face (the message says why).
pub fn fit_square(img: &RgbImage, size: u32) -> std::result::Result<RgbImage, String> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err("image is empty".into());
    }
    if w.min(h) < MIN_IMAGE_SIDE {
        return Err(format!(
            "image is {w}×{h}: too small to hold a face (at least {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE})"
        ));
    }
    let side = w.min(h);
    let cropped =
        image::imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    Ok(image::imageops::resize(
        &cropped,
        size,
        size,
        FilterType::Triangle,
    ))
}

/// Finds a latent whose generated image matches `target` (size × size RGB),
/// starting from `start` (else a random latent of `config.seed`).
/// `progress(step, loss)` is called after every step; returning `false` cancels.
pub fn project(
    generator: &Generator,
    target: &RgbImage,
    config: &ProjectionConfig,
    start: Option<&[f32]>,
    progress: &mut dyn FnMut(usize, f32) -> bool,
) -> Result<Vec<f32>> {
    let device = generator.device();
    let dim = generator.config().latent_dim();
    let target = target_tensor(target, generator.config().image_size(), device)?;
    let start = match start {
        Some(z) if z.len() == dim => z.to_vec(),
        Some(z) => {
            return Err(Error::invalid(format!(
                "start latent has {} numbers, the generator expects {dim}",
                z.len()
            )));
        }
        None => SeededRng::new(config.seed, 0).normal_vec(dim),
    };
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
