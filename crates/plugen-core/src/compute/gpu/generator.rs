//! The frozen generator on the GPU: the first layer as a dense layer
//! (`linear.wgsl`), the stride-2 transposed convolutions as gathers
//! (`deconv.wgsl`), then bytes (`pixels.wgsl`): the same folded weights and the
//! same byte mapping as the CPU engine ([`crate::compute::cpu_decode`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{GpuContext, Kernel, LinearParams, MAX_BATCH, Step};
use crate::compute::plain_weights::GeneratorLayers;
use crate::error::{Error, Result};

struct Layer {
    cin: usize,
    cout: usize,
    weight: wgpu::Buffer,
    shift: wgpu::Buffer,
}

/// Buffers and dispatches for one batch size, built once.
struct Plan {
    /// Latents in, (rows, latent_dim).
    input: wgpu::Buffer,
    /// Every layer's output; the last is the image in [−1, 1], (rows, S, S, C).
    activations: Vec<wgpu::Buffer>,
    /// RGBA bytes, one u32 per pixel.
    pixels: wgpu::Buffer,
    decode: Vec<Step>,
    to_pixels: Step,
}

/// The generator's sizes, read off its layers.
struct Shape {
    latent_dim: usize,
    image_size: usize,
    image_channels: usize,
}

impl Shape {
    /// A 4×4 first layer, then one doubling per layer.
    fn of(layers: &[crate::compute::plain_weights::PackedLayer]) -> Result<Self> {
        match (layers.first(), layers.last()) {
            (Some(first), Some(last)) if layers.len() >= 2 => Ok(Self {
                latent_dim: first.in_channels,
                image_size: 4 << (layers.len() - 1),
                image_channels: last.out_channels,
            }),
            _ => Err(Error::invalid("a generator needs at least two layers")),
        }
    }
}

/// The generator with its weights on the GPU.
pub struct GpuGenerator {
    ctx: Arc<GpuContext>,
    shape: Shape,
    layers: Vec<Layer>,
    plans: Mutex<HashMap<usize, Plan>>,
}

impl GpuGenerator {
    /// Uploads the generator's folded, packed weights.
    pub fn new(ctx: &Arc<GpuContext>, generator: &impl GeneratorLayers) -> Result<Self> {
        let packed = generator.packed_layers()?;
        let shape = Shape::of(&packed)?;
        let mut layers = Vec::new();
        for (i, l) in packed.into_iter().enumerate() {
            // Channels padded to multiples of 4 (zero weights, zero shift) so
            // the transposed convolutions load vec4s; the first layer's input
            // is the latent and stays as it is.
            let cin = if i == 0 {
                l.in_channels
            } else {
                l.in_channels.next_multiple_of(4)
            };
            let cout = l.out_channels.next_multiple_of(4);
            let mut weight = vec![0f32; cin * 16 * cout];
            for (row, taps) in l.weight.chunks(16 * l.out_channels).enumerate() {
                for (tap, w) in taps.chunks(l.out_channels).enumerate() {
                    let at = (row * 16 + tap) * cout;
                    weight[at..at + w.len()].copy_from_slice(w);
                }
            }
            let mut shift = l.shift.clone();
            shift.resize(cout, 0.0);
            layers.push(Layer {
                cin,
                cout,
                weight: ctx.upload("generator weight", &weight),
                shift: ctx.upload("generator shift", &shift),
            });
        }
        Ok(Self {
            ctx: ctx.clone(),
            shape,
            layers,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Side of the square images.
    pub fn image_size(&self) -> usize {
        self.shape.image_size
    }

    /// Numbers per latent.
    pub fn latent_dim(&self) -> usize {
        self.shape.latent_dim
    }

    fn pixels_per_image(&self) -> usize {
        let s = self.shape.image_size;
        s * s
    }

    fn check(&self, latents: &[f32]) -> Result<usize> {
        let dim = self.shape.latent_dim;
        if dim == 0 || !latents.len().is_multiple_of(dim) {
            return Err(Error::invalid(format!(
                "latents must have {dim} numbers each"
            )));
        }
        Ok(latents.len() / dim)
    }

    /// Channels of the last layer's output as stored (padded to a multiple of 4).
    fn stored_channels(&self) -> usize {
        self.layers.last().map_or(0, |l| l.cout)
    }

    /// Decodes latents ((N, latent_dim) row-major) into images (N, S, S, C)
    /// channel-last in [−1, 1], as the generator's own decode does.
    pub fn decode(&self, latents: &[f32]) -> Result<Vec<f32>> {
        let stored = self.stored_channels();
        let channels = self.shape.image_channels;
        let per_image = self.pixels_per_image() * stored;
        let words = self.run(latents, per_image, |plan| plan.activations.last(), false)?;
        Ok(unpad(&words, stored, channels))
    }

    /// [`Self::decode`] without waiting for the GPU (the only way in a browser).
    pub async fn decode_async(&self, latents: &[f32]) -> Result<Vec<f32>> {
        let stored = self.stored_channels();
        let per_image = self.pixels_per_image() * stored;
        let n = self.check(latents)?;
        let dim = self.shape.latent_dim;
        let mut words = Vec::with_capacity(n * per_image);
        for chunk in latents.chunks(MAX_BATCH * dim) {
            let rows = chunk.len() / dim;
            let pending = self.submit(chunk, false, |plan| {
                let src = plan
                    .activations
                    .last()
                    .ok_or_else(|| Error::invalid("generator has no layers"))?;
                Ok(self.ctx.start_read(src, rows * per_image))
            })?;
            words.extend(pending.finish().await?);
        }
        Ok(unpad(&words, stored, self.shape.image_channels))
    }

    /// Decodes latents into RGBA8 images, 4·S·S bytes each, with the byte
    /// mapping of [`crate::model::generator::pixel_to_byte`].
    pub fn render_rgba(&self, latents: &[f32]) -> Result<Vec<Vec<u8>>> {
        let px = self.pixels_per_image();
        let words = self.run(latents, px, |plan| Some(&plan.pixels), true)?;
        Ok(words
            .chunks(px.max(1))
            .map(|img| bytemuck::cast_slice::<u32, u8>(img).to_vec())
            .collect())
    }

    /// Runs chunks of up to [`MAX_BATCH`] latents and reads back `per_image`
    /// words of each from the buffer `pick` chooses.
    fn run(
        &self,
        latents: &[f32],
        per_image: usize,
        pick: impl Fn(&Plan) -> Option<&wgpu::Buffer>,
        with_pixels: bool,
    ) -> Result<Vec<u32>> {
        let n = self.check(latents)?;
        let dim = self.shape.latent_dim;
        let mut out = Vec::with_capacity(n * per_image);
        for chunk in latents.chunks(MAX_BATCH * dim) {
            let rows = chunk.len() / dim;
            let words = self.ctx.checked("the generator", || {
                self.submit(chunk, with_pixels, |plan| {
                    let src =
                        pick(plan).ok_or_else(|| Error::invalid("generator has no layers"))?;
                    self.ctx.read_back(src, rows * per_image)
                })
            })?;
            out.extend(words);
        }
        Ok(out)
    }

    /// Uploads one chunk of latents, decodes it (and turns it into pixels with
    /// `with_pixels`), and hands its plan to `read`.
    fn submit<T>(
        &self,
        chunk: &[f32],
        with_pixels: bool,
        read: impl FnOnce(&Plan) -> Result<T>,
    ) -> Result<T> {
        let rows = chunk.len() / self.shape.latent_dim;
        let mut plans = self.lock()?;
        let plan = self.plan(&mut plans, rows);
        self.ctx
            .queue
            .write_buffer(&plan.input, 0, bytemuck::cast_slice(chunk));
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.ctx.record(&mut encoder, &plan.decode);
        if with_pixels {
            self.ctx
                .record(&mut encoder, std::slice::from_ref(&plan.to_pixels));
        }
        self.ctx.queue.submit([encoder.finish()]);
        read(plan)
    }

    /// Records decoding `rows` latents copied from `input` (rows ≤ [`MAX_BATCH`]).
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        input: &wgpu::Buffer,
    ) -> Result<()> {
        let mut plans = self.lock()?;
        let plan = self.plan(&mut plans, rows);
        let bytes = (rows * self.shape.latent_dim * 4) as u64;
        encoder.copy_buffer_to_buffer(input, 0, &plan.input, 0, bytes);
        self.ctx.record(encoder, &plan.decode);
        Ok(())
    }

    /// A dispatch writing the first image of the one-latent plan into `texture`
    /// (an `Rgba8Unorm` storage texture of the image's size).
    pub(super) fn texture_step(&self, texture: &wgpu::TextureView) -> Result<Step> {
        let mut plans = self.lock()?;
        let plan = self.plan(&mut plans, 1);
        let image = plan
            .activations
            .last()
            .ok_or_else(|| Error::invalid("generator has no layers"))?;
        let s = self.shape.image_size;
        let params = self.ctx.uniform(&[
            1,
            s as u32,
            self.shape.image_channels as u32,
            self.stored_channels() as u32,
        ]);
        Ok(Step {
            kernel: Kernel::PixelsToTexture,
            bind_group: self.ctx.bind(
                Kernel::PixelsToTexture,
                &[
                    (0, params.as_entire_binding()),
                    (1, image.as_entire_binding()),
                    (3, wgpu::BindingResource::TextureView(texture)),
                ],
            ),
            workgroups: [(s * s).div_ceil(64) as u32, 1, 1],
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<usize, Plan>>> {
        self.plans
            .lock()
            .map_err(|_| Error::invalid("the GPU generator was poisoned by an earlier failure"))
    }

    fn plan<'a>(&self, plans: &'a mut HashMap<usize, Plan>, rows: usize) -> &'a Plan {
        plans.entry(rows).or_insert_with(|| self.build(rows))
    }

    fn build(&self, rows: usize) -> Plan {
        let ctx = &self.ctx;
        let input = ctx.storage("latents", rows * self.shape.latent_dim);
        let mut activations: Vec<wgpu::Buffer> = Vec::new();
        let mut decode = Vec::new();
        let mut side = 4;
        let last = self.layers.len().saturating_sub(1);
        for (i, l) in self.layers.iter().enumerate() {
            if i == 0 {
                let out = ctx.storage("activations", rows * 16 * l.cout);
                let p = LinearParams {
                    rows,
                    k: l.cin,
                    m: 16 * l.cout,
                    input: (l.cin, 0),
                    output: (16 * l.cout, 0),
                    mode: 0,
                    slope: Some(0.0),
                    bias_period: l.cout,
                };
                decode.push(ctx.linear(&p, &input, &l.weight, &l.shift, &out));
                activations.push(out);
                continue;
            }
            let out = ctx.storage("activations", rows * 4 * side * side * l.cout);
            let params = ctx.uniform(&[
                rows as u32,
                side as u32,
                side as u32,
                (l.cin / 4) as u32,
                (l.cout / 4) as u32,
                0,
                u32::from(i == last),
                0,
            ]);
            let x = &activations[i - 1];
            decode.push(Step {
                kernel: Kernel::Deconv,
                bind_group: ctx.bind(
                    Kernel::Deconv,
                    &[
                        (0, params.as_entire_binding()),
                        (1, x.as_entire_binding()),
                        (2, l.weight.as_entire_binding()),
                        (3, l.shift.as_entire_binding()),
                        (4, out.as_entire_binding()),
                    ],
                ),
                workgroups: [
                    (2 * side * l.cout / 4).div_ceil(64) as u32,
                    (2 * side) as u32,
                    rows as u32,
                ],
            });
            activations.push(out);
            side *= 2;
        }
        let s = self.shape.image_size;
        let pixels = ctx.storage("pixels", rows * s * s);
        let params = ctx.uniform(&[
            rows as u32,
            s as u32,
            self.shape.image_channels as u32,
            self.stored_channels() as u32,
        ]);
        // `Shape::of` asks for ≥ 2 layers; without any, an empty dispatch keeps this total.
        let (image, groups) = match activations.last() {
            Some(image) => (image, [(s * s).div_ceil(64) as u32, rows as u32, 1]),
            None => (&input, [0, 0, 0]),
        };
        let to_pixels = Step {
            kernel: Kernel::PixelsToBuffer,
            bind_group: ctx.bind(
                Kernel::PixelsToBuffer,
                &[
                    (0, params.as_entire_binding()),
                    (1, image.as_entire_binding()),
                    (2, pixels.as_entire_binding()),
                ],
            ),
            workgroups: groups,
        };
        Plan {
            input,
            activations,
            pixels,
            decode,
            to_pixels,
        }
    }
}

/// Image values out of words stored with `stored` channels per pixel, keeping
/// the first `channels`.
fn unpad(words: &[u32], stored: usize, channels: usize) -> Vec<f32> {
    words
        .chunks(stored.max(1))
        .flat_map(|px| {
            px[..channels.min(px.len())]
                .iter()
                .map(|&w| f32::from_bits(w))
        })
        .collect()
}
