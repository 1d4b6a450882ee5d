//! Small image networks on the CPU engine (the judges): channel-last maps
//! with a zero border, convolutions as implicit GEMMs, and the direct loops
//! around them (depthwise convolution, pools).
//!
//! A k×k convolution reads, for one output pixel, k input rows of k
//! consecutive pixels: in a channel-last map each is k·C_in contiguous
//! numbers, so the GEMM has k segments of k·C_in and reads its rows in place
//! (no column buffer). A map keeps a zero border as wide as the next
//! convolution's padding, so no tap is ever outside it; a convolution writes
//! straight into the interior of its output's border.
//!
//! Every output is summed in a fixed order (the engine's, or taps then
//! channels in the direct loops), so an image gives the same bits alone or
//! in a batch, on any thread count.

use rayon::prelude::*;

use crate::compute::cpu_gemm::{Activation, Engine, Kernel, Packed, Row, Task};
use crate::compute::cpu_simd;
use crate::error::{Error, Result};

/// Images run through one GEMM call: enough rows for every thread, few
/// enough that a chunk's maps stay in cache.
const CHUNK: usize = 16;

/// A batch of channel-last maps with a zero border of `pad` pixels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Map {
    /// (n, h + 2·pad, w + 2·pad, c), row-major.
    pub data: Vec<f32>,
    /// Images.
    pub n: usize,
    /// Interior height.
    pub h: usize,
    /// Interior width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Border width.
    pub pad: usize,
}

impl Map {
    /// Zeros.
    pub(crate) fn zeros(n: usize, (h, w, c): (usize, usize, usize), pad: usize) -> Self {
        Self {
            data: vec![0.0; n * (h + 2 * pad) * (w + 2 * pad) * c],
            n,
            h,
            w,
            c,
            pad,
        }
    }

    /// Index of channel 0 of interior pixel (y, x) of image b; y and x may
    /// reach `pad` pixels into the border.
    #[inline]
    pub(crate) fn at(&self, b: usize, y: isize, x: isize) -> usize {
        let p = self.pad as isize;
        let row = (b * (self.h + 2 * self.pad)) as isize + y + p;
        ((row * (self.w + 2 * self.pad) as isize + x + p) as usize) * self.c
    }

    /// The same shape without its numbers: for [`at`](Self::at) on one image.
    fn shape_only(&self) -> Self {
        Self {
            data: Vec::new(),
            n: 1,
            ..*self
        }
    }

    /// Numbers per image, border included.
    fn image_len(&self) -> usize {
        (self.h + 2 * self.pad) * (self.w + 2 * self.pad) * self.c
    }

    /// The same images with a border of `pad`.
    #[cfg(test)]
    fn repad(&self, pad: usize) -> Self {
        if pad == self.pad {
            return self.clone();
        }
        let mut out = Self::zeros(self.n, (self.h, self.w, self.c), pad);
        for b in 0..self.n {
            for y in 0..self.h as isize {
                let (s, d) = (self.at(b, y, 0), out.at(b, y, 0));
                let len = self.w * self.c;
                out.data[d..d + len].copy_from_slice(&self.data[s..s + len]);
            }
        }
        out
    }

    /// The interior, (n, h, w, c) with no border.
    #[cfg(test)]
    fn interior(&self) -> Vec<f32> {
        self.repad(0).data
    }
}

/// A k×k convolution (k = 1 or 3, stride 1 or 2, zero padding) with a
/// per-channel shift and an activation fused into the store.
pub(crate) struct Conv {
    engine: Engine,
    gemm: Packed,
    side: usize,
    stride: usize,
    pad: usize,
    /// Extra padding after (bottom and right), for TensorFlow's "same"
    /// padding at stride 2, which puts an odd total's extra pixel there.
    trailing: usize,
    cin: usize,
    cout: usize,
}

impl Conv {
    /// Packs `weight(out_channel, in_channel, ky, kx)` for a `side`×`side`
    /// convolution from `cin` to `cout` channels, then `shift(out_channel)`
    /// and `act`. Few output channels get the narrower AVX2 tiles where the
    /// CPU has them (a 32-lane tile would multiply mostly zeros).
    pub(crate) fn new(
        engine: Engine,
        (side, stride, pad): (usize, usize, usize),
        (cin, cout): (usize, usize),
        weight: impl Fn(usize, usize, usize, usize) -> f32,
        shift: impl Fn(usize) -> f32,
        act: Activation,
    ) -> Self {
        let engine = if cout <= 16 && engine.lanes() > 16 && Kernel::Avx2.available() {
            Engine::new(Kernel::Avx2)
        } else {
            engine
        };
        // Segment = kernel row ky; within it k = kx·cin + ci.
        let gemm = Packed::new(
            engine,
            (1, side, side * cin, cout),
            |_, ky, k, co| weight(co, k % cin, ky, k / cin),
            shift,
            act,
        );
        Self {
            engine,
            gemm,
            side,
            stride,
            pad,
            trailing: 0,
            cin,
            cout,
        }
    }

    /// The same convolution with `trailing` more pixels of padding after
    /// (bottom and right) than before.
    pub(crate) fn with_trailing_pad(mut self, trailing: usize) -> Self {
        self.trailing = trailing;
        self
    }

    /// Output side for an input side.
    pub(crate) fn out_side(&self, side: usize) -> usize {
        (side + 2 * self.pad + self.trailing - self.side) / self.stride + 1
    }

    /// Runs on `x` (whose border must be at least the padding) into a new
    /// map with a border of `out_pad`.
    pub(crate) fn forward(&self, x: &Map, out_pad: usize) -> Result<Map> {
        if x.c != self.cin
            || x.pad < self.pad + self.trailing
            || x.h + 2 * self.pad + self.trailing < self.side
        {
            return Err(Error::invalid(format!(
                "convolution of {} channels (padding {}) given a {}×{}×{} map with a border of {}",
                self.cin, self.pad, x.h, x.w, x.c, x.pad
            )));
        }
        let (oh, ow) = (self.out_side(x.h), self.out_side(x.w));
        let mut out = Map::zeros(x.n, (oh, ow, self.cout), out_pad);
        let (s, p) = (self.stride as isize, self.pad as isize);
        for b0 in (0..x.n).step_by(CHUNK) {
            let b1 = (b0 + CHUNK).min(x.n);
            let mut rows = Vec::with_capacity((b1 - b0) * oh * ow);
            for b in b0..b1 {
                for y in 0..oh as isize {
                    for xx in 0..ow as isize {
                        let mut src = [0usize; 4];
                        for (dy, slot) in src.iter_mut().enumerate().take(self.side) {
                            *slot = x.at(b, y * s - p + dy as isize, xx * s - p);
                        }
                        rows.push(Row {
                            src,
                            dst: out.at(b, y, xx),
                            mask: (1 << self.side) - 1,
                        });
                    }
                }
            }
            let tasks = [Task { set: 0, rows }];
            // SAFETY: every row writes its own output pixel's channels.
            unsafe {
                self.engine
                    .run(&self.gemm, &tasks, &x.data, &mut out.data)?
            };
        }
        Ok(out)
    }
}

/// A dense layer: (n, inputs) → (n, outputs), shift and activation fused.
pub(crate) struct Dense {
    engine: Engine,
    gemm: Packed,
}

impl Dense {
    /// Packs `weight(input, output)`, then `shift(output)` and `act`.
    pub(crate) fn new(
        engine: Engine,
        (inputs, outputs): (usize, usize),
        weight: impl Fn(usize, usize) -> f32,
        shift: impl Fn(usize) -> f32,
        act: Activation,
    ) -> Self {
        let gemm = Packed::new(
            engine,
            (1, 1, inputs, outputs),
            |_, _, k, c| weight(k, c),
            shift,
            act,
        );
        Self { engine, gemm }
    }

    /// Runs on `n` rows of `x`.
    pub(crate) fn forward(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let (len, cols) = (self.gemm.len(), self.gemm.cols());
        if x.len() != n * len {
            return Err(Error::invalid(format!(
                "dense layer of {len} inputs given {} numbers for {n} rows",
                x.len()
            )));
        }
        let mut out = vec![0f32; n * cols];
        let tasks = [Task::plain(n, (len, 0), cols)];
        // SAFETY: row r writes its own `cols` numbers at r·cols.
        unsafe { self.engine.run(&self.gemm, &tasks, x, &mut out)? };
        Ok(out)
    }
}

/// A 3×3 depthwise convolution, stride 1, padding 1 ("same"): `weight` is
/// (c, 3, 3) row-major. `x` needs a border of at least 1.
pub(crate) fn depthwise3(x: &Map, weight: &[f32], out_pad: usize) -> Result<Map> {
    if x.pad < 1 || weight.len() != x.c * 9 {
        return Err(Error::invalid(
            "depthwise convolution: map without a border or weights of the wrong size",
        ));
    }
    let (c, w) = (x.c, x.w);
    // Each tap's weights repeated along a row, so one tap over a row of the
    // map is one contiguous multiply-add of w·c numbers.
    let taps: Vec<Vec<f32>> = (0..9)
        .map(|t| {
            let one: Vec<f32> = (0..c).map(|ch| weight[ch * 9 + t]).collect();
            one.repeat(w)
        })
        .collect();
    let mut out = Map::zeros(x.n, (x.h, w, c), out_pad);
    let per_image = out.image_len();
    let probe = out.shape_only();
    out.data
        .par_chunks_mut(per_image)
        .enumerate()
        .for_each(|(b, dst)| {
            cpu_simd::widest(
                #[inline(always)]
                || {
                    for y in 0..x.h as isize {
                        let d = probe.at(0, y, 0);
                        let acc = &mut dst[d..d + w * c];
                        for (t, tap) in taps.iter().enumerate() {
                            let (dy, dx) = (t as isize / 3 - 1, t as isize % 3 - 1);
                            let s = x.at(b, y + dy, dx);
                            for ((a, v), k) in acc.iter_mut().zip(&x.data[s..s + w * c]).zip(tap) {
                                *a += v * k;
                            }
                        }
                    }
                },
            )
        });
    Ok(out)
}

/// A 3×3 depthwise convolution at any stride, `before` pixels of padding
/// before and the rest after (within the border), to `side`×`side`: each
/// output starts at its `bias` and adds the taps in order. `weight` is
/// (3, 3, c) row-major, as TensorFlow stores it.
pub(crate) fn depthwise3_strided(
    x: &Map,
    (weight, bias): (&[f32], &[f32]),
    (stride, before): (usize, usize),
    side: usize,
    out_pad: usize,
) -> Result<Map> {
    let c = x.c;
    let reach = (side - 1) * stride + 3;
    if weight.len() != 9 * c
        || bias.len() != c
        || x.pad < before
        || reach > x.h.min(x.w) + before + x.pad
    {
        return Err(Error::invalid(
            "depthwise convolution: weights of the wrong size or a window past the border",
        ));
    }
    let (s, p) = (stride as isize, before as isize);
    Ok(pool(
        x,
        (side, side),
        out_pad,
        #[inline(always)]
        |b, y, xx, acc| {
            acc.copy_from_slice(bias);
            for (t, tap) in weight.chunks_exact(c).enumerate() {
                let (dy, dx) = (t as isize / 3, t as isize % 3);
                let i = x.at(b, y * s - p + dy, xx * s - p + dx);
                for ((a, v), k) in acc.iter_mut().zip(&x.data[i..i + c]).zip(tap) {
                    *a += v * k;
                }
            }
        },
    ))
}

/// A 3×3 stride-2 max pool with TensorFlow's "same" padding: the extra row
/// and column, when the total is odd, go after; padded taps are ignored.
pub(crate) fn max_pool3_same(x: &Map, out_pad: usize) -> Map {
    let before = |size: usize| {
        let out = size.div_ceil(2);
        ((out - 1) * 2 + 3).saturating_sub(size) / 2
    };
    let (oh, ow) = (x.h.div_ceil(2), x.w.div_ceil(2));
    let (py, px) = (before(x.h) as isize, before(x.w) as isize);
    pool(
        x,
        (oh, ow),
        out_pad,
        #[inline(always)]
        |b, y, xx, acc| {
            acc.iter_mut().for_each(|a| *a = f32::NEG_INFINITY);
            for dy in 0..3 {
                for dx in 0..3 {
                    let (iy, ix) = (2 * y - py + dy, 2 * xx - px + dx);
                    if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                        continue;
                    }
                    let s = x.at(b, iy, ix);
                    for (a, v) in acc.iter_mut().zip(&x.data[s..s + x.c]) {
                        *a = a.max(*v);
                    }
                }
            }
        },
    )
}

/// A 2×2 stride-2 average pool (even sides).
pub(crate) fn avg_pool2(x: &Map, out_pad: usize) -> Map {
    pool(
        x,
        (x.h / 2, x.w / 2),
        out_pad,
        #[inline(always)]
        |b, y, xx, acc| {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let s = x.at(b, 2 * y + dy, 2 * xx + dx);
                for (a, v) in acc.iter_mut().zip(&x.data[s..s + x.c]) {
                    *a += v;
                }
            }
            acc.iter_mut().for_each(|a| *a *= 0.25);
        },
    )
}

/// A 2×2 stride-2 max pool ("valid"; an odd last row or column is dropped).
pub(crate) fn max_pool2(x: &Map, out_pad: usize) -> Map {
    pool(
        x,
        (x.h / 2, x.w / 2),
        out_pad,
        #[inline(always)]
        |b, y, xx, acc| {
            acc.iter_mut().for_each(|a| *a = f32::NEG_INFINITY);
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let s = x.at(b, 2 * y + dy, 2 * xx + dx);
                for (a, v) in acc.iter_mut().zip(&x.data[s..s + x.c]) {
                    *a = a.max(*v);
                }
            }
        },
    )
}

/// An output map of (oh, ow) whose pixels `fill(b, y, x, channels)` computes,
/// in parallel over images.
fn pool(
    x: &Map,
    (oh, ow): (usize, usize),
    out_pad: usize,
    fill: impl Fn(usize, isize, isize, &mut [f32]) + Sync,
) -> Map {
    let mut out = Map::zeros(x.n, (oh, ow, x.c), out_pad);
    let per_image = out.image_len();
    let probe = out.shape_only();
    out.data
        .par_chunks_mut(per_image)
        .enumerate()
        .for_each(|(b, dst)| {
            cpu_simd::widest(
                #[inline(always)]
                || {
                    for y in 0..oh as isize {
                        for xx in 0..ow as isize {
                            let d = probe.at(0, y, xx);
                            fill(b, y, xx, &mut dst[d..d + x.c]);
                        }
                    }
                },
            )
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct convolution on an unpadded (n, h, w, c) map, for reference.
    fn direct(
        x: &[f32],
        (n, h, w, cin): (usize, usize, usize, usize),
        (side, stride, pad, cout): (usize, usize, usize, usize),
        weight: &dyn Fn(usize, usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        let oh = (h + 2 * pad - side) / stride + 1;
        let ow = (w + 2 * pad - side) / stride + 1;
        let mut out = vec![0f32; n * oh * ow * cout];
        for b in 0..n {
            for y in 0..oh {
                for xx in 0..ow {
                    for co in 0..cout {
                        let mut s = 0f64;
                        for ky in 0..side {
                            for kx in 0..side {
                                let iy = (y * stride + ky) as isize - pad as isize;
                                let ix = (xx * stride + kx) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ci in 0..cin {
                                    let v = x[((b * h + iy as usize) * w + ix as usize) * cin + ci];
                                    s += (v * weight(co, ci, ky, kx)) as f64;
                                }
                            }
                        }
                        out[((b * oh + y) * ow + xx) * cout + co] = s as f32;
                    }
                }
            }
        }
        out
    }

    fn map_of(data: &[f32], n: usize, (h, w, c): (usize, usize, usize), pad: usize) -> Map {
        Map {
            data: data.to_vec(),
            n,
            h,
            w,
            c,
            pad: 0,
        }
        .repad(pad)
    }

    #[test]
    fn convolutions_match_a_direct_loop_and_are_batch_invariant() -> Result<()> {
        let (n, h, w) = (3, 9, 7);
        for engine in Engine::all_testable() {
            for &(side, stride, pad, cin, cout) in &[
                (3, 1, 1, 5, 8),
                (3, 1, 0, 1, 20),
                (1, 2, 0, 6, 40),
                (3, 2, 1, 4, 3),
            ] {
                let x: Vec<f32> = (0..n * h * w * cin)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                    .collect();
                let weight = |co: usize, ci: usize, ky: usize, kx: usize| {
                    ((co * 7 + ci * 3 + ky * 5 + kx) % 11) as f32 / 10.0 - 0.5
                };
                let conv = Conv::new(
                    engine,
                    (side, stride, pad),
                    (cin, cout),
                    weight,
                    |_| 0.0,
                    Activation::Identity,
                );
                let got = conv.forward(&map_of(&x, n, (h, w, cin), pad.max(1)), 2)?;
                let want = direct(&x, (n, h, w, cin), (side, stride, pad, cout), &weight);
                let inside = got.interior();
                let worst = inside
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst < 1e-4,
                    "{side}×{side}/{stride} on {engine:?}: {worst}"
                );
                // The second image alone gives the same bits.
                let one = &x[h * w * cin..2 * h * w * cin];
                let alone = conv.forward(&map_of(one, 1, (h, w, cin), pad.max(1)), 0)?;
                let per = got.h * got.w * cout;
                assert_eq!(alone.data, inside[per..2 * per]);
            }
        }
        Ok(())
    }

    #[test]
    fn pools_and_depthwise_match_their_definitions() -> Result<()> {
        let (h, w, c) = (5, 4, 3);
        let x: Vec<f32> = (0..h * w * c).map(|i| (i * 13 % 17) as f32).collect();
        let m = map_of(&x, 1, (h, w, c), 1);
        let px = |y: usize, xx: usize, ch: usize| x[(y * w + xx) * c + ch];
        // TF "same": 5 → 3 rows, padded 1 before and 1 after; 4 → 2
        // columns, padded 0 before and 1 after.
        let max = max_pool3_same(&m, 0);
        assert_eq!((max.h, max.w), (3, 2));
        for y in 0..3 {
            for xx in 0..2 {
                let mut best = f32::NEG_INFINITY;
                for iy in (2 * y as isize - 1)..(2 * y as isize + 2) {
                    for ix in 2 * xx..2 * xx + 3 {
                        if (0..h as isize).contains(&iy) && ix < w {
                            best = best.max(px(iy as usize, ix, 1));
                        }
                    }
                }
                assert_eq!(max.data[(y * 2 + xx) * c + 1], best, "({y}, {xx})");
            }
        }
        let avg = avg_pool2(&map_of(&x[..4 * 4 * c], 1, (4, 4, c), 0), 0);
        let q = |y: usize, xx: usize| x[(y * 4 + xx) * c + 2];
        let corner = (q(2, 2) + q(2, 3) + q(3, 2) + q(3, 3)) / 4.0;
        assert_eq!(avg.data[(2 + 1) * c + 2], corner);
        let weight: Vec<f32> = (0..c * 9).map(|i| (i % 5) as f32 - 2.0).collect();
        let dw = depthwise3(&m, &weight, 0)?;
        for ch in 0..c {
            let one = |co: usize, ci: usize, ky: usize, kx: usize| {
                if co == 0 && ci == ch {
                    weight[ch * 9 + ky * 3 + kx]
                } else {
                    0.0
                }
            };
            let want = direct(&x, (1, h, w, c), (3, 1, 1, 1), &one);
            for (p, v) in want.iter().enumerate() {
                assert!((dw.data[p * c + ch] - v).abs() < 1e-4);
            }
        }
        Ok(())
    }

    #[test]
    fn a_strided_depthwise_and_a_two_by_two_max_pool_match_their_definitions() -> Result<()> {
        let (side, c) = (6, 3);
        let x: Vec<f32> = (0..side * side * c)
            .map(|i| ((i * 29 % 23) as f32 - 11.0) / 4.0)
            .collect();
        let m = map_of(&x, 1, (side, side, c), 1);
        let px = |y: usize, xx: usize, ch: usize| x[(y * side + xx) * c + ch];
        let max = max_pool2(&m, 1);
        assert_eq!((max.h, max.w, max.pad), (3, 3, 1));
        for (y, xx, ch) in [(0, 0, 0), (1, 2, 1), (2, 1, 2)] {
            let want = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .iter()
                .map(|(dy, dx)| px(2 * y + dy, 2 * xx + dx, ch))
                .fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max.data[max.at(0, y as isize, xx as isize) + ch], want);
        }
        // Stride 2, TensorFlow's "same" on 6 pixels: none before, one after;
        // weights (3, 3, c).
        let weight: Vec<f32> = (0..9 * c).map(|i| (i % 7) as f32 / 3.0 - 1.0).collect();
        let bias = [0.5, -1.0, 2.0];
        let dw = depthwise3_strided(&m, (&weight, &bias), (2, 0), 3, 0)?;
        for ch in 0..c {
            let one = |co: usize, ci: usize, ky: usize, kx: usize| {
                if co == 0 && ci == ch {
                    weight[(ky * 3 + kx) * c + ch]
                } else {
                    0.0
                }
            };
            // "Valid" on the map with one zero column and row after.
            let mut padded = vec![0f32; 7 * 7 * c];
            for y in 0..side {
                for xx in 0..side {
                    for k in 0..c {
                        padded[(y * 7 + xx) * c + k] = px(y, xx, k);
                    }
                }
            }
            let want = direct(&padded, (1, 7, 7, c), (3, 2, 0, 1), &one);
            assert_eq!(want.len(), 9);
            for (p, v) in want.iter().enumerate() {
                assert!(
                    (dw.data[p * c + ch] - v - bias[ch]).abs() < 1e-4,
                    "{ch} {p}"
                );
            }
        }
        assert!(depthwise3_strided(&m, (&weight, &bias), (2, 0), 4, 0).is_err());
        Ok(())
    }
}
