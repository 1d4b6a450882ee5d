//! The generator's CPU path: every layer as a GEMM of the CPU engine
//! ([`crate::cpu_gemm`]) on weights packed once, with its rows read in place
//! from the input map.
//!
//! A stride-2, padding-1, 4×4 transposed convolution splits into four
//! stride-1 2×2 convolutions, one per output phase (even or odd row × even or
//! odd column): output pixel (2m+py, 2l+px) sums input pixels (m+dy, l+dx) over
//! two row taps and two column taps. Each phase is a GEMM with K = 4·C_in whose
//! rows are gathered from the input map: no column buffer, no scatter, and taps
//! that fall outside the map are skipped, not multiplied by zero. A layer with
//! few output channels (the RGB layer) is one GEMM to per-tap columns and a
//! scatter instead, which wastes no lanes.
//!
//! Every output number is summed in a fixed order (taps, then input channels),
//! so a face decodes to the same bits alone or in a batch of 64, on one thread
//! or many.

use crate::cpu_gemm::{Activation, Engine, Packed, Task};
use crate::error::Result;
use crate::generator::PackedLayer;

/// Images decoded together through all layers, so one chunk's maps stay in cache.
const CHUNK: usize = 8;
/// Output row `2m + py` takes (tap ky, input row m + dy) for these two taps.
const TAPS: [[(usize, isize); 2]; 2] = [[(1, 0), (3, -1)], [(0, 1), (2, 0)]];

/// One layer of the generator, packed for its form.
enum Layer {
    /// The latent (N, C_in) to a 4×4 map (N, 4, 4, C_out): one GEMM.
    First(Packed),
    /// A stride-2 layer as four phase GEMMs straight into the output map.
    Phased { gemm: Packed, cout: usize },
    /// A stride-2 layer with few output channels: GEMM to per-tap columns,
    /// then the scatter adds the taps, the shift and the activation.
    Scatter {
        gemm: Packed,
        cout: usize,
        shift: Vec<f32>,
        act: Activation,
    },
}

/// The generator's folded weights packed for the CPU engine.
pub(crate) struct CpuDecoder {
    engine: Engine,
    layers: Vec<Layer>,
    latent_dim: usize,
    /// Output numbers per image.
    image_len: usize,
}

impl CpuDecoder {
    /// Packs `layers` (first layer first, as
    /// [`crate::generator::Generator::packed_layers`] gives them) for `engine`.
    pub(crate) fn new(layers: &[PackedLayer], engine: Engine) -> Self {
        let last = layers.len().saturating_sub(1);
        let mut side = 4;
        let mut packed = Vec::with_capacity(layers.len());
        for (i, l) in layers.iter().enumerate() {
            let (cin, cout) = (l.in_channels, l.out_channels);
            let act = if i == last {
                Activation::Tanh
            } else {
                Activation::Relu
            };
            // (C_in, 4·4·C_out) row-major: W[ci][ky][kx][co].
            let taps = 16 * cout;
            let plain = |_: usize, _: usize, k: usize, c: usize| l.weight[k * taps + c];
            if i == 0 {
                let shift = |c: usize| l.shift[c % cout];
                packed.push(Layer::First(Packed::new(
                    engine,
                    (1, 1, cin, taps),
                    plain,
                    shift,
                    act,
                )));
                continue;
            }
            side *= 2;
            if 2 * cout >= engine.lanes() {
                // Set = phase (py, px), segment = tap (ty, tx).
                let weight = |phase: usize, s: usize, k: usize, c: usize| {
                    let ky = TAPS[phase / 2][s / 2].0;
                    let kx = TAPS[phase % 2][s % 2].0;
                    l.weight[((k * 4 + ky) * 4 + kx) * cout + c]
                };
                let gemm = Packed::new(engine, (4, 4, cin, cout), weight, |c| l.shift[c], act);
                packed.push(Layer::Phased { gemm, cout });
            } else {
                let gemm = Packed::new(
                    engine,
                    (1, 1, cin, taps),
                    plain,
                    |_| 0.0,
                    Activation::Identity,
                );
                packed.push(Layer::Scatter {
                    gemm,
                    cout,
                    shift: l.shift.clone(),
                    act,
                });
            }
        }
        let channels = layers.last().map_or(0, |l| l.out_channels);
        Self {
            engine,
            layers: packed,
            latent_dim: layers.first().map_or(0, |l| l.in_channels),
            image_len: side * side * channels,
        }
    }

    /// The engine it runs on.
    pub(crate) fn engine(&self) -> Engine {
        self.engine
    }

    /// Decodes `z` (rows of `latent_dim` numbers) into channel-last images, concatenated.
    pub(crate) fn decode(&self, z: &[f32]) -> Result<Vec<f32>> {
        let dim = self.latent_dim.max(1);
        let mut out = Vec::with_capacity(z.len() / dim * self.image_len);
        for chunk in z.chunks(CHUNK * dim) {
            out.extend(self.decode_chunk(chunk)?);
        }
        Ok(out)
    }

    fn decode_chunk(&self, z: &[f32]) -> Result<Vec<f32>> {
        let n = z.len() / self.latent_dim.max(1);
        let mut x = z.to_vec();
        let mut side = 1;
        for layer in &self.layers {
            // SAFETY (every `run`): each row writes its own output pixel's
            // columns, or its own per-tap columns: no two rows overlap.
            x = match layer {
                Layer::First(gemm) => {
                    let tasks = [Task::plain(n, (gemm.len(), 0), gemm.cols())];
                    side = 4;
                    let mut out = vec![0f32; n * gemm.cols()];
                    unsafe { self.engine.run(gemm, &tasks, &x, &mut out)? };
                    out
                }
                Layer::Phased { gemm, cout } => {
                    let tasks = phase_tasks(n, side, gemm.len(), *cout);
                    side *= 2;
                    let mut out = vec![0f32; n * side * side * cout];
                    unsafe { self.engine.run(gemm, &tasks, &x, &mut out)? };
                    out
                }
                Layer::Scatter {
                    gemm,
                    cout,
                    shift,
                    act,
                } => {
                    let pixels = n * side * side;
                    let tasks = [Task::plain(pixels, (gemm.len(), 0), gemm.cols())];
                    let mut cols = vec![0f32; pixels * gemm.cols()];
                    unsafe { self.engine.run(gemm, &tasks, &x, &mut cols)? };
                    let out = col2im_stride2(&cols, (n, side, side, *cout), shift, *act);
                    side *= 2;
                    out
                }
            };
        }
        Ok(x)
    }
}

/// The tasks of one phased layer: per phase, its rows grouped by which of the
/// four taps fall inside the map (interior, top or bottom edge, left or right
/// edge, corner), so every tile skips the same taps.
fn phase_tasks(n: usize, side: usize, cin: usize, cout: usize) -> Vec<Task> {
    let out_side = 2 * side;
    let mut tasks = Vec::new();
    for phase in 0..4 {
        let (py, px) = (phase / 2, phase % 2);
        let mut groups: [Vec<[usize; 5]>; 16] = Default::default();
        for b in 0..n {
            for m in 0..side {
                for l in 0..side {
                    let mut row = [0usize; 5];
                    let mut mask = 0;
                    for s in 0..4 {
                        let iy = m as isize + TAPS[py][s / 2].1;
                        let ix = l as isize + TAPS[px][s % 2].1;
                        if (0..side as isize).contains(&iy) && (0..side as isize).contains(&ix) {
                            mask |= 1 << s;
                            row[s] = ((b * side + iy as usize) * side + ix as usize) * cin;
                        }
                    }
                    row[4] = ((b * out_side + 2 * m + py) * out_side + 2 * l + px) * cout;
                    groups[mask].push(row);
                }
            }
        }
        for (mask, rows) in groups.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            tasks.push(Task {
                set: phase,
                segs: (0..4).filter(|s| mask & (1 << s) != 0).collect(),
                rows,
            });
        }
    }
    tasks
}

/// Adds per-tap columns of a stride-2, padding-1, 4×4 transposed convolution
/// into the output map, with the per-channel shift and the activation. `cols`
/// is (N, H, W, 4, 4, C) row-major; returns (N, 2H, 2W, C). Output row
/// `oy = 2·iy + ky − 1`.
pub(crate) fn col2im_stride2(
    cols: &[f32],
    (n, h, w, c): (usize, usize, usize, usize),
    shift: &[f32],
    act: Activation,
) -> Vec<f32> {
    let (oh, ow) = (2 * h, 2 * w);
    let mut out = vec![0f32; n * oh * ow * c];
    for b in 0..n {
        let out_b = &mut out[b * oh * ow * c..(b + 1) * oh * ow * c];
        for iy in 0..h {
            for ix in 0..w {
                let base = ((b * h + iy) * w + ix) * 16 * c;
                for ky in 0..4 {
                    let Some(oy) = (2 * iy + ky).checked_sub(1).filter(|&y| y < oh) else {
                        continue;
                    };
                    for kx in 0..4 {
                        let Some(ox) = (2 * ix + kx).checked_sub(1).filter(|&x| x < ow) else {
                            continue;
                        };
                        let tap = base + (ky * 4 + kx) * c;
                        let dst = (oy * ow + ox) * c;
                        for (d, s) in out_b[dst..dst + c].iter_mut().zip(&cols[tap..tap + c]) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
    for px in out.chunks_exact_mut(c) {
        for (v, s) in px.iter_mut().zip(shift) {
            *v = act.apply(*v + s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_gemm::Kernel;
    use crate::rng::SeededRng;

    /// A small random generator, channels `[latent, …, image]`, BatchNorm already folded.
    fn layers(channels: &[usize], seed: u64) -> Vec<PackedLayer> {
        let mut rng = SeededRng::new(seed, 0);
        channels
            .windows(2)
            .map(|io| PackedLayer {
                in_channels: io[0],
                out_channels: io[1],
                weight: rng
                    .normal_vec(io[0] * 16 * io[1])
                    .into_iter()
                    .map(|v| v * 0.3)
                    .collect(),
                shift: rng.normal_vec(io[1]).into_iter().map(|v| v * 0.1).collect(),
            })
            .collect()
    }

    /// The textbook transposed convolution in f64: every input pixel scatters
    /// through every tap, `oy = stride·iy + ky − pad`.
    fn reference(layers: &[PackedLayer], z: &[f32]) -> Vec<f64> {
        let mut x: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let n = z.len() / layers[0].in_channels;
        let mut side = 1;
        for (i, l) in layers.iter().enumerate() {
            let (cin, cout) = (l.in_channels, l.out_channels);
            let (stride, pad, out_side) = if i == 0 { (1, 0, 4) } else { (2, 1, 2 * side) };
            let mut y = vec![0f64; n * out_side * out_side * cout];
            for b in 0..n {
                for iy in 0..side {
                    for ix in 0..side {
                        for ky in 0..4 {
                            for kx in 0..4 {
                                let oy = (stride * iy + ky) as isize - pad;
                                let ox = (stride * ix + kx) as isize - pad;
                                if oy < 0
                                    || ox < 0
                                    || oy >= out_side as isize
                                    || ox >= out_side as isize
                                {
                                    continue;
                                }
                                let dst =
                                    ((b * out_side + oy as usize) * out_side + ox as usize) * cout;
                                for ci in 0..cin {
                                    let v = x[((b * side + iy) * side + ix) * cin + ci];
                                    for co in 0..cout {
                                        let w = l.weight[((ci * 4 + ky) * 4 + kx) * cout + co];
                                        y[dst + co] += v * w as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let last = i + 1 == layers.len();
            for px in y.chunks_exact_mut(cout) {
                for (v, s) in px.iter_mut().zip(&l.shift) {
                    let t = *v + *s as f64;
                    *v = if last { t.tanh() } else { t.max(0.0) };
                }
            }
            x = y;
            side = out_side;
        }
        x
    }

    /// Every engine this CPU runs, and the AVX-512 tile layout on the portable kernel.
    fn engines() -> Vec<Engine> {
        let mut e = vec![Engine::new(Kernel::Portable), Engine::portable_wide()];
        e.extend(
            [Kernel::Avx2, Kernel::Avx512]
                .into_iter()
                .filter(|k| k.available())
                .map(Engine::new),
        );
        e
    }

    #[test]
    fn every_kernel_matches_the_textbook_convolution() {
        // Channel counts that are not multiples of a tile, and an RGB layer (scatter form).
        let layers = layers(&[7, 40, 24, 20, 3], 1);
        let z = SeededRng::new(2, 0).normal_vec(13 * 7);
        let want = reference(&layers, &z);
        assert_eq!(want.len(), 13 * 32 * 32 * 3);
        for engine in engines() {
            let (kernel, lanes) = (engine.kernel(), engine.lanes());
            let got = CpuDecoder::new(&layers, engine)
                .decode(&z)
                .expect("decodes");
            let max = got
                .iter()
                .zip(&want)
                .map(|(&a, &b)| (a as f64 - b).abs())
                .fold(0.0, f64::max);
            println!("{} ({lanes} lanes): max |Δ| {max:e}", kernel.name());
            assert_eq!(got.len(), want.len());
            assert!(max < 5e-5, "{} ({lanes} lanes): {max}", kernel.name());
        }
        // Not a trivial output: images differ and use the range.
        assert!(want.iter().any(|&v| v > 0.5) && want.iter().any(|&v| v < -0.5));
    }

    #[test]
    fn a_face_is_the_same_bits_alone_in_a_batch_and_on_any_thread_count() {
        let layers = layers(&[9, 48, 32, 16, 3], 3);
        let dim = 9;
        let z = SeededRng::new(4, 0).normal_vec(11 * dim);
        for engine in engines() {
            let decoder = CpuDecoder::new(&layers, engine);
            let batch = decoder.decode(&z).expect("decodes");
            let per = batch.len() / 11;
            for (i, row) in z.chunks(dim).enumerate() {
                let alone = decoder.decode(row).expect("decodes");
                assert!(
                    alone == batch[i * per..(i + 1) * per],
                    "face {i} differs alone"
                );
            }
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool");
                let other = pool.install(|| decoder.decode(&z)).expect("decodes");
                assert!(other == batch, "{threads} threads differ");
            }
        }
    }
}
