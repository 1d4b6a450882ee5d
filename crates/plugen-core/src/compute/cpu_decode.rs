//! The generator's CPU path: every layer as a GEMM of the CPU engine
//! ([`crate::compute::cpu_gemm`]) on weights packed once, with its rows read in place
//! from the input map.
//!
//! A stride-2, padding-1, 4×4 transposed convolution splits into four
//! stride-1 2×2 convolutions, one per output phase (even or odd row × even or
//! odd column): output pixel (2m+py, 2l+px) sums input pixels (m+dy, l+dx) over
//! two row taps and two column taps. Each phase is a GEMM with K = 4·C_in whose
//! rows are gathered from the input map: no column buffer, no scatter, and taps
//! that fall outside the map are skipped, not multiplied by zero.
//!
//! A layer with few output channels (the RGB layer) would fill 3 of a tile's
//! 16 lanes that way. It runs as one GEMM from each input pixel to its 16 taps
//! × C_out columns (no lane wasted), and each output pixel then gathers its
//! four taps, adds the shift and applies the activation, in parallel over
//! output rows. (Measured against one GEMM row per 2×2 output block from the
//! 3×3 input neighbourhood, which fuses everything but multiplies 3× as
//! much: 0.42 vs 0.30 ms per face for this layer.)
//!
//! Every output number is summed in a fixed order (taps, then input channels),
//! so a face decodes to the same bits alone or in a batch of 64, on one thread
//! or many.

use rayon::prelude::*;

use crate::compute::cpu_gemm::{Activation, Engine, Packed, Row, Task};
use crate::compute::plain_weights::PackedLayer;
use crate::error::Result;

/// Images decoded together through all layers, so one chunk's maps stay in cache.
const CHUNK: usize = 16;
/// Output row `2m + py` takes (tap ky, input row m + dy) for these two taps.
const TAPS: [[(usize, isize); 2]; 2] = [[(1, 0), (3, -1)], [(0, 1), (2, 0)]];

/// One layer of the generator, packed for its form.
enum Layer {
    /// The latent (N, C_in) to a 4×4 map (N, 4, 4, C_out): one GEMM.
    First(Packed),
    /// A stride-2 layer as four phase GEMMs straight into the output map.
    Phased { gemm: Packed, cout: usize },
    /// A stride-2 layer with few output channels: a GEMM to per-tap columns,
    /// then every output pixel gathers its taps, the shift and the activation.
    Taps {
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
    /// [`crate::model::generator::Generator::packed_layers`] gives them) for `engine`.
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
                let identity = Activation::Identity;
                let gemm = Packed::new(engine, (1, 1, cin, taps), plain, |_| 0.0, identity);
                let shift = l.shift.clone();
                packed.push(Layer::Taps {
                    gemm,
                    cout,
                    shift,
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
                    // A zero row past the map, for the taps that fall outside it.
                    let zero = n * side * side * gemm.len();
                    x.resize(zero + gemm.len(), 0.0);
                    let tasks = phase_tasks(n, side, gemm.len(), *cout, zero);
                    side *= 2;
                    let mut out = vec![0f32; n * side * side * cout];
                    unsafe { self.engine.run(gemm, &tasks, &x, &mut out)? };
                    out
                }
                Layer::Taps {
                    gemm,
                    cout,
                    shift,
                    act,
                } => {
                    let pixels = n * side * side;
                    let tasks = [Task::plain(pixels, (gemm.len(), 0), gemm.cols())];
                    let mut cols = vec![0f32; pixels * gemm.cols()];
                    unsafe { self.engine.run(gemm, &tasks, &x, &mut cols)? };
                    let out = gather_taps(&cols, (n, side, side, *cout), shift, *act);
                    side *= 2;
                    out
                }
            };
        }
        Ok(x)
    }
}

/// The tasks of one phased layer, one per phase. A tap that falls outside
/// the map reads the zero row at `zero` and is left out of the row's mask;
/// rows are ordered interior first, then edges, then the corner, so most
/// micro-tiles skip the taps none of their rows needs.
fn phase_tasks(n: usize, side: usize, cin: usize, cout: usize, zero: usize) -> Vec<Task> {
    let out_side = 2 * side;
    (0..4)
        .map(|phase| {
            let (py, px) = (phase / 2, phase % 2);
            let mut rows = Vec::with_capacity(n * side * side);
            for b in 0..n {
                for m in 0..side {
                    for l in 0..side {
                        let mut row = Row {
                            src: [zero; 4],
                            dst: ((b * out_side + 2 * m + py) * out_side + 2 * l + px) * cout,
                            mask: 0,
                        };
                        for s in 0..4 {
                            let iy = m as isize + TAPS[py][s / 2].1;
                            let ix = l as isize + TAPS[px][s % 2].1;
                            let inside = 0..side as isize;
                            if inside.contains(&iy) && inside.contains(&ix) {
                                row.mask |= 1 << s;
                                row.src[s] = ((b * side + iy as usize) * side + ix as usize) * cin;
                            }
                        }
                        rows.push(row);
                    }
                }
            }
            // Stable: within a mask, rows keep their order.
            rows.sort_by_key(|r| std::cmp::Reverse((r.mask.count_ones(), r.mask)));
            Task { set: phase, rows }
        })
        .collect()
}

/// Sums per-tap columns of a stride-2, padding-1, 4×4 transposed convolution
/// into its output map, adds the per-channel shift and applies the activation.
/// `cols` is (N, H, W, 4, 4, C) row-major; returns (N, 2H, 2W, C). Output pixel
/// (2m + py, 2l + px) sums its four taps in a fixed order; rows run in parallel.
pub(crate) fn gather_taps(
    cols: &[f32],
    (n, h, w, c): (usize, usize, usize, usize),
    shift: &[f32],
    act: Activation,
) -> Vec<f32> {
    let (oh, ow) = (2 * h, 2 * w);
    let mut out = vec![0f32; n * oh * ow * c];
    out.par_chunks_mut(ow * c)
        .with_min_len(16)
        .enumerate()
        .for_each(|(row, line)| {
            let (b, oy) = (row / oh, row % oh);
            let (py, m) = (oy % 2, oy / 2);
            for (ox, px_out) in line.chunks_exact_mut(c).enumerate() {
                let (px, l) = (ox % 2, ox / 2);
                for &(ky, dy) in &TAPS[py] {
                    let Some(iy) = m.checked_add_signed(dy).filter(|&y| y < h) else {
                        continue;
                    };
                    for &(kx, dx) in &TAPS[px] {
                        let Some(ix) = l.checked_add_signed(dx).filter(|&x| x < w) else {
                            continue;
                        };
                        let tap = (((b * h + iy) * w + ix) * 16 + ky * 4 + kx) * c;
                        for (o, v) in px_out.iter_mut().zip(&cols[tap..tap + c]) {
                            *o += v;
                        }
                    }
                }
                for (o, s) in px_out.iter_mut().zip(shift) {
                    *o = act.apply(*o + s);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn every_kernel_matches_the_textbook_convolution() {
        // Channel counts that are not multiples of a tile, and an RGB layer (tap form).
        check_against_textbook(&[7, 40, 24, 20, 3], 13);
        // A narrow middle layer (tap form) feeding a phased one.
        check_against_textbook(&[5, 16, 6, 32, 1], 3);
    }

    fn check_against_textbook(channels: &[usize], n: usize) {
        let layers = layers(channels, 1);
        let z = SeededRng::new(2, 0).normal_vec(n * channels[0]);
        let want = reference(&layers, &z);
        let side = 4 << (channels.len() - 2);
        assert_eq!(want.len(), n * side * side * channels[channels.len() - 1]);
        for engine in Engine::all_testable() {
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
        for engine in Engine::all_testable() {
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
