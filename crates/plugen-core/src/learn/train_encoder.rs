//! Training the image encoder ([`crate::model::encoder`]) on the generator's
//! own samples: pairs are free — sample z, decode, learn to map the face
//! back to z.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::weights;
use crate::learn::train::insert_uniform_linear;
use crate::model::encoder::{
    Encoder, EncoderConfig, EncoderManifest, EncoderTraining, FORMAT, MANIFEST_FILE, WEIGHTS_FILE,
    layer_shapes,
};
use crate::model::generator::Generator;
use crate::rng::SeededRng;

/// Settings of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainEncoderConfig {
    /// Optimisation steps.
    pub steps: usize,
    /// Fresh generated faces per step.
    pub batch: usize,
    /// Peak Adam learning rate.
    pub learning_rate: f64,
    /// Seed of the weights and of the sampled latents.
    pub seed: u64,
    /// Held-out faces measured at the end (seeded apart from the training stream).
    pub heldout: usize,
}

impl Default for TrainEncoderConfig {
    fn default() -> Self {
        Self {
            steps: 3000,
            batch: 64,
            learning_rate: 1e-3,
            seed: 0,
            heldout: 256,
        }
    }
}

/// Stream of the held-out latents (training uses streams 0..steps).
const HELDOUT_STREAM: u64 = u64::MAX;

/// A trained encoder, not yet written to disk.
pub struct TrainedEncoder {
    /// Its description (weights hash filled in when saved).
    pub manifest: EncoderManifest,
    varmap: VarMap,
}

impl TrainedEncoder {
    /// Writes `encoder.json` and `encoder.safetensors` into `dir`, replacing
    /// existing ones only with `overwrite`. Returns the manifest's path.
    pub fn save(&self, dir: &Path, overwrite: Overwrite) -> Result<PathBuf> {
        let tensors = weights::varmap_tensors(&self.varmap)?;
        let json = dir.join(MANIFEST_FILE);
        let mut manifest = self.manifest.clone();
        if overwrite == Overwrite::Never && json.exists() {
            return Err(Error::format(
                &json,
                "exists (pass --overwrite to replace it)",
            ));
        }
        let weights_path = dir.join(&manifest.weights);
        manifest.sha256 = weights::save(&weights_path, &tensors, overwrite)?;
        let mut text =
            serde_json::to_string_pretty(&manifest).map_err(|e| Error::invalid(e.to_string()))?;
        text.push('\n');
        if let Err(e) = fsutil::write_atomic(&json, text.as_bytes(), overwrite) {
            // No weights without the manifest that vouches for them.
            let _ = std::fs::remove_file(&weights_path);
            return Err(e);
        }
        Ok(json)
    }

    /// The trained encoder, in memory.
    pub fn encoder(&self, device: &Device) -> Result<Encoder> {
        let vb = VarBuilder::from_varmap(&self.varmap, DType::F32, device);
        Encoder::new(vb, self.manifest.encoder.clone())
    }
}

/// Fresh weights, uniform in ±1/√fan_in (candle_nn's default) from a seeded
/// stream, so that a training run is reproducible on every device.
fn seeded_varmap(config: &EncoderConfig, seed: u64, device: &Device) -> Result<VarMap> {
    let varmap = VarMap::new();
    let mut rng = SeededRng::new(seed, u64::MAX - 1);
    {
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| Error::invalid("internal error: variable map lock poisoned"))?;
        for (name, fan_in, fan_out) in layer_shapes(config) {
            let bound = 1.0 / (fan_in as f32).sqrt();
            insert_uniform_linear(&mut data, &name, (fan_in, fan_out), bound, &mut rng, device)?;
        }
    }
    Ok(varmap)
}

/// `n` latents of stream-seeded normals, starting at stream `first`, as (n, dim).
fn latent_batch(seed: u64, first: u64, n: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(n * dim);
    for i in 0..n as u64 {
        data.extend(SeededRng::new(seed, first.wrapping_add(i)).normal_vec(dim));
    }
    Ok(Tensor::from_vec(data, (n, dim), device)?)
}

/// Trains an encoder for `generator` on its own samples: every step decodes a
/// fresh batch of N(0, I) latents and fits the encoder's prediction to them
/// (mean squared error in latent space). `progress(step, loss)` is called after
/// every step; `cancel` stops between steps.
pub fn train(
    generator: &Generator,
    generator_sha256: &str,
    config: &TrainEncoderConfig,
    progress: &mut dyn FnMut(usize, f32),
    cancel: &AtomicBool,
) -> Result<TrainedEncoder> {
    if config.steps == 0
        || config.batch == 0
        || !config.learning_rate.is_finite()
        || config.learning_rate <= 0.0
    {
        return Err(Error::invalid(
            "encoder training needs steps ≥ 1, batch ≥ 1 and a positive learning rate",
        ));
    }
    let device = generator.device().clone();
    let g = generator.config();
    let shape = EncoderConfig::default_for(g.image_size(), g.image_channels(), g.latent_dim());
    shape.validate()?;
    let varmap = seeded_varmap(&shape, config.seed, &device)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let encoder = Encoder::new(vb, shape.clone())?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let dim = g.latent_dim();
    for step in 0..config.steps {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        // Cosine decay from the peak to a tenth of it.
        let t = step as f64 / config.steps as f64;
        let lr =
            config.learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
        opt.set_learning_rate(lr);
        let first = (step * config.batch) as u64;
        let z = latent_batch(config.seed, first, config.batch, dim, &device)?;
        let images = generator.decode(&z)?;
        let loss = (encoder.encode(&images)? - &z)?.sqr()?.mean_all()?;
        opt.backward_step(&loss)?;
        progress(step + 1, loss.to_scalar::<f32>()?);
    }
    let (latent_mse, pixel_mse) = heldout_error(generator, &encoder, config)?;
    let manifest = EncoderManifest {
        format: FORMAT.into(),
        version: 1,
        encoder: shape,
        weights: WEIGHTS_FILE.into(),
        sha256: String::new(),
        generator_sha256: generator_sha256.into(),
        training: EncoderTraining {
            steps: config.steps,
            batch: config.batch,
            learning_rate: config.learning_rate,
            seed: config.seed,
            heldout_latent_mse: latent_mse,
            heldout_pixel_mse: pixel_mse,
        },
    };
    Ok(TrainedEncoder { manifest, varmap })
}

/// Latent and pixel mean squared errors of `encoder` on held-out generated faces.
pub fn heldout_error(
    generator: &Generator,
    encoder: &Encoder,
    config: &TrainEncoderConfig,
) -> Result<(f32, f32)> {
    let device = generator.device();
    let dim = generator.config().latent_dim();
    let (mut latent, mut pixel, mut seen) = (0f64, 0f64, 0usize);
    while seen < config.heldout {
        let n = (config.heldout - seen).min(64);
        let first = HELDOUT_STREAM - (config.heldout as u64) + seen as u64;
        let z = latent_batch(config.seed, first, n, dim, device)?;
        let images = generator.decode(&z)?;
        let guess = encoder.encode(&images)?;
        let l = (&guess - &z)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
        let p = (generator.decode(&guess)? - &images)?
            .sqr()?
            .mean_all()?
            .to_scalar::<f32>()?;
        latent += l as f64 * n as f64;
        pixel += p as f64 * n as f64;
        seen += n;
    }
    let n = seen.max(1) as f64;
    Ok(((latent / n) as f32, (pixel / n) as f32))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A generator with random weights (BatchNorm at identity).
    fn random_generator(
        config: crate::model::generator::GeneratorConfig,
        dev: &Device,
    ) -> Result<Generator> {
        let mut t = HashMap::new();
        let layers = config.channels.len() - 1;
        for i in 0..layers {
            let (cin, cout) = (config.channels[i], config.channels[i + 1]);
            let w = (Tensor::randn(0f32, 1., (cin, cout, 4, 4), dev)? / (cin as f64 * 4.0).sqrt())?;
            t.insert(format!("blocks.{i}.conv.weight"), w);
            if i + 1 < layers {
                t.insert(
                    format!("blocks.{i}.bn.weight"),
                    Tensor::ones(cout, DType::F32, dev)?,
                );
                t.insert(
                    format!("blocks.{i}.bn.running_var"),
                    Tensor::ones(cout, DType::F32, dev)?,
                );
                t.insert(
                    format!("blocks.{i}.bn.bias"),
                    Tensor::zeros(cout, DType::F32, dev)?,
                );
                t.insert(
                    format!("blocks.{i}.bn.running_mean"),
                    Tensor::zeros(cout, DType::F32, dev)?,
                );
            }
        }
        Generator::new(VarBuilder::from_tensors(t, DType::F32, dev), config)
    }

    /// A few steps on a tiny generator lower the latent error, and the trained
    /// weights save, reload and predict the same latents.
    #[test]
    fn training_reduces_error_and_round_trips() -> Result<()> {
        let dev = Device::Cpu;
        let gconfig = crate::model::generator::GeneratorConfig {
            channels: vec![8, 16, 8, 3],
        };
        let generator = random_generator(gconfig, &dev)?;
        let config = TrainEncoderConfig {
            steps: 60,
            batch: 32,
            learning_rate: 3e-3,
            seed: 1,
            heldout: 64,
        };
        let untrained = {
            let shape = EncoderConfig::default_for(16, 3, 8);
            let vm = seeded_varmap(&shape, config.seed, &dev)?;
            let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
            let e = Encoder::new(vb, shape)?;
            heldout_error(&generator, &e, &config)?.0
        };
        let trained = train(
            &generator,
            "abc",
            &config,
            &mut |_, _| {},
            &AtomicBool::new(false),
        )?;
        let after = trained.manifest.training.heldout_latent_mse;
        assert!(after < 0.7 * untrained, "latent mse {untrained} -> {after}");
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let json = trained.save(dir.path(), Overwrite::Never)?;
        let back = Encoder::load(&json, "abc", &dev)?;
        let z = latent_batch(9, 0, 4, 8, &dev)?;
        let images = generator.decode(&z)?;
        let a = trained.encoder(&dev)?.encode(&images)?;
        let b = back.encode(&images)?;
        let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        // Another generator's hash is refused, naming the file.
        let err = Encoder::load(&json, "other", &dev)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("encoder.json") && e.contains("another generator")));
        Ok(())
    }
}
