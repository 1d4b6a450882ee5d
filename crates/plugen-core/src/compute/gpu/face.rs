//! The editor's face on the GPU: a flow code goes through the inverse flow and
//! the generator straight into an `Rgba8Unorm` texture that a window can draw,
//! in one submission. Only the latent and its readout (a few hundred bytes)
//! come back to the CPU; the pixels never do.

use std::sync::Arc;

use super::flow::Direction;
use super::{GpuContext, GpuFlow, GpuGenerator, Step};
use crate::error::{Error, Result};

/// What the face is computed from.
#[derive(Clone, Copy)]
pub enum FaceInput<'a> {
    /// A flow code: the inverse flow gives the latent.
    Code(&'a [f32]),
    /// A latent, decoded as it is.
    Latent(&'a [f32]),
}

/// The face texture and the buffers one frame needs, made once.
pub struct GpuFace {
    ctx: Arc<GpuContext>,
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    dim: usize,
    input: wgpu::Buffer,
    latent: wgpu::Buffer,
    readout: wgpu::Buffer,
    /// Latent then readout code, copied together for one read-back.
    results: wgpu::Buffer,
    to_texture: Step,
}

/// What a frame gives back to the CPU.
pub struct FaceFrame {
    /// The latent on screen.
    pub latent: Vec<f32>,
    /// Its flow code read off by the forward flow (empty without a flow).
    pub code: Vec<f32>,
}

impl GpuFace {
    /// Makes the face texture (size of the generator's images) on `generator`'s device.
    pub fn new(ctx: &Arc<GpuContext>, generator: &GpuGenerator) -> Result<Self> {
        let size = generator.image_size() as u32;
        let texture = ctx.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("plugen face"),
            size: wgpu::Extent3d {
                width: size,
                height: size,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::STORAGE_BINDING
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&Default::default());
        let to_texture = ctx.checked("the face texture", || generator.texture_step(&view))?;
        let dim = generator.latent_dim();
        Ok(Self {
            ctx: ctx.clone(),
            texture,
            view,
            dim,
            input: ctx.storage("face input", dim),
            latent: ctx.storage("face latent", dim),
            readout: ctx.storage("face readout", dim),
            results: ctx.storage("face results", 2 * dim),
            to_texture,
        })
    }

    /// The texture the face is written to.
    pub fn texture(&self) -> &wgpu::Texture {
        &self.texture
    }

    /// A view of it, for registering with a renderer.
    pub fn view(&self) -> &wgpu::TextureView {
        &self.view
    }

    /// Computes one face into the texture; with a flow, also reads the
    /// latent's code back (the sliders' readout). Waits for the GPU, so only
    /// where [`super::CAN_WAIT`].
    pub fn render(
        &self,
        generator: &GpuGenerator,
        flow: Option<&GpuFlow>,
        input: FaceInput,
    ) -> Result<FaceFrame> {
        let dim = self.dim;
        let flow = flow.filter(|f| f.dim() == dim);
        let words = self.ctx.checked("the face", || {
            self.submit(generator, flow, &input, true)?;
            self.ctx
                .read_back(&self.results, if flow.is_some() { 2 * dim } else { dim })
        })?;
        let mut floats: Vec<f32> = words.into_iter().map(f32::from_bits).collect();
        let code = floats.split_off(dim);
        Ok(FaceFrame {
            latent: floats,
            code,
        })
    }

    /// Computes one face into the texture and returns without waiting for
    /// it: nothing comes back (in a browser, where a read would block the
    /// page, the latent and readout are computed on the CPU instead).
    pub fn draw(
        &self,
        generator: &GpuGenerator,
        flow: Option<&GpuFlow>,
        input: FaceInput,
    ) -> Result<()> {
        let flow = flow.filter(|f| f.dim() == self.dim);
        self.ctx
            .checked("the face", || self.submit(generator, flow, &input, false))
    }

    /// Records and submits one frame: inverse flow (for a code), generator,
    /// texture; with `results`, also the latent and its forward-flow code
    /// copied into the read-back buffer.
    fn submit(
        &self,
        generator: &GpuGenerator,
        flow: Option<&GpuFlow>,
        input: &FaceInput,
        results: bool,
    ) -> Result<()> {
        let dim = self.dim;
        let values = match input {
            FaceInput::Code(v) | FaceInput::Latent(v) => *v,
        };
        if values.len() != dim {
            return Err(Error::invalid(format!(
                "a face needs {dim} numbers, got {}",
                values.len()
            )));
        }
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.input, 0, bytemuck::cast_slice(values));
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        let bytes = (dim * 4) as u64;
        match (input, flow) {
            (FaceInput::Code(_), Some(f)) => f.record(
                &mut encoder,
                1,
                Direction::Inverse,
                &self.input,
                &self.latent,
            )?,
            _ => encoder.copy_buffer_to_buffer(&self.input, 0, &self.latent, 0, bytes),
        }
        generator.record(&mut encoder, 1, &self.latent)?;
        self.ctx
            .record(&mut encoder, std::slice::from_ref(&self.to_texture));
        if results {
            encoder.copy_buffer_to_buffer(&self.latent, 0, &self.results, 0, bytes);
            if let Some(f) = flow {
                f.record(
                    &mut encoder,
                    1,
                    Direction::Forward,
                    &self.latent,
                    &self.readout,
                )?;
                encoder.copy_buffer_to_buffer(&self.readout, 0, &self.results, bytes, bytes);
            }
        }
        queue.submit([encoder.finish()]);
        Ok(())
    }
}
