//! The GPU kernels against the CPU engine on one model, read back
//! asynchronously: the check a browser can run on its own WebGPU device
//! (the web page's `?selftest`), and that the native tests run too.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::compute::gpu::{Direction, GpuContext, GpuGenerator};
use crate::error::{Error, Result};
use crate::io::latents::Latents;
use crate::jobs::loaded::Model;
use crate::model::plugin::Plugin;
use crate::rng::SeededRng;

/// Largest |GPU − CPU| the kernels may differ by.
pub const TOLERANCE: f32 = 1e-4;

/// Largest differences found, per part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parity {
    /// Faces compared.
    pub faces: usize,
    /// Forward flow (latent → code).
    pub flow_forward: f32,
    /// Inverse flow (code → latent).
    pub flow_inverse: f32,
    /// Generator output in [−1, 1].
    pub generator: f32,
}

impl Parity {
    /// Whether every part is within [`TOLERANCE`].
    pub fn passed(&self) -> bool {
        [self.flow_forward, self.flow_inverse, self.generator]
            .iter()
            .all(|d| *d <= TOLERANCE)
    }
}

impl std::fmt::Display for Parity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} faces, max |gpu - cpu|: flow forward {:.1e}, inverse {:.1e}, generator {:.1e} (tolerance {:.0e})",
            self.faces, self.flow_forward, self.flow_inverse, self.generator, TOLERANCE
        )
    }
}

/// Runs `faces` seeded latents through `cpu`'s plugin and generator on the
/// CPU and through plugen's kernels on `ctx`, and compares.
pub async fn check(ctx: &Arc<GpuContext>, cpu: &Model, faces: usize) -> Result<Parity> {
    let plugin = cpu.require_plugin()?;
    let dim = cpu.latent_dim();
    let mut on_gpu = Plugin::load(plugin.path(), cpu.generator_sha256(), &Device::Cpu)?;
    on_gpu.use_gpu(ctx)?;
    let flow = on_gpu
        .gpu_flow()
        .ok_or_else(|| Error::invalid("the flow did not reach the GPU"))?;
    let generator = GpuGenerator::new(ctx, cpu.generator())?;

    let z = Latents::new(dim, SeededRng::new(2026, 0).normal_vec(faces * dim))?;
    let codes = plugin.encode(&z)?;
    let forward = flow.run_async(&z.data, Direction::Forward).await?;
    let back = plugin.decode(&codes)?;
    let inverse = flow.run_async(&codes.data, Direction::Inverse).await?;
    let images: Vec<f32> = cpu
        .generator()
        .decode(&Tensor::from_slice(&z.data, (faces, dim), &Device::Cpu)?)?
        .flatten_all()?
        .to_vec1()?;
    let decoded = generator.decode_async(&z.data).await?;
    Ok(Parity {
        faces,
        flow_forward: max_diff(&forward, &codes.data)?,
        flow_inverse: max_diff(&inverse, &back.data)?,
        generator: max_diff(&decoded, &images)?,
    })
}

fn max_diff(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() {
        return Err(Error::invalid(format!(
            "the GPU gave {} numbers, the CPU {}",
            a.len(),
            b.len()
        )));
    }
    // NaN counts as the largest difference.
    Ok(a.iter().zip(b).fold(0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() { f32::INFINITY } else { m.max(d) }
    }))
}
