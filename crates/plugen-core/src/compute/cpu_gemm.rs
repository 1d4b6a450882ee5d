//! The CPU's matrix engine: a GEMM on weights packed once, whose rows are
//! read in place from anywhere in the input (an implicit GEMM: a convolution's
//! taps, a half of a flow's row), with the shift and the activation fused into
//! the store.
//!
//! Every output number is one chain of multiply-adds in a fixed order
//! (segments, then the rows of each) whichever batch, tile or thread computes
//! it: a row gives the same bits alone or in a batch, on one thread or many.
//! The micro-kernel is one generic source compiled for AVX-512, AVX2+FMA and a
//! portable baseline, chosen at run time ([`Kernel::detect`]).

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows of one micro-tile.
const MR: usize = 6;
/// Rows per work item handed to a thread (several micro-tiles).
const ROWS_PER_ITEM: usize = 8 * MR;
/// Below this many multiply-adds a GEMM runs on the calling thread: handing
/// it to the pool would cost more than it saves (a flow row, a slider frame).
const SERIAL_MACS: usize = 1 << 18;

/// The instruction set the micro-kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// 512-bit vectors, 32-column tiles.
    Avx512,
    /// 256-bit vectors with fused multiply-add, 16-column tiles.
    Avx2,
    /// Whatever the build target guarantees (SSE2 on x86-64, NEON on aarch64).
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .find(|k| k.available())
            .unwrap_or(Kernel::Portable)
    }

    /// Whether this CPU has the instructions the kernel needs.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            Kernel::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Short name, as `plugen bench` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "AVX-512",
            Kernel::Avx2 => "AVX2+FMA",
            Kernel::Portable => "portable",
        }
    }

    /// Columns per micro-tile.
    pub(crate) fn lanes(self) -> usize {
        match self {
            Kernel::Avx512 => 32,
            Kernel::Avx2 | Kernel::Portable => 16,
        }
    }
}

/// The kernel and tile width every matrix of one model is packed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Engine {
    kernel: Kernel,
    /// Columns per micro-tile: the kernel's, or 32 for the portable kernel in tests.
    lanes: usize,
}

impl Engine {
    /// The engine for `kernel`; the portable kernel where this CPU lacks it.
    pub(crate) fn new(kernel: Kernel) -> Self {
        let kernel = if kernel.available() {
            kernel
        } else {
            Kernel::Portable
        };
        Self {
            kernel,
            lanes: kernel.lanes(),
        }
    }

    /// The portable kernel on 32-column tiles: the AVX-512 layout on any CPU, for tests.
    #[cfg(test)]
    pub(crate) fn portable_wide() -> Self {
        Self {
            kernel: Kernel::Portable,
            lanes: 32,
        }
    }

    /// Every engine this CPU runs, and the AVX-512 tile layout on the portable kernel, for tests.
    #[cfg(test)]
    pub(crate) fn all_testable() -> Vec<Self> {
        let mut engines = vec![Self::new(Kernel::Portable), Self::portable_wide()];
        engines.extend(
            [Kernel::Avx2, Kernel::Avx512]
                .into_iter()
                .filter(|k| k.available())
                .map(Self::new),
        );
        engines
    }

    /// The kernel it runs.
    pub(crate) fn kernel(self) -> Kernel {
        self.kernel
    }

    /// Columns per tile.
    pub(crate) fn lanes(self) -> usize {
        self.lanes
    }

    /// Runs `tasks` of `gemm` (packed for this engine) on `input` into `out`,
    /// spread over rayon's threads when the work is large enough to pay for it.
    /// Every row's offsets are checked against `input` and `out` first.
    ///
    /// # Safety
    /// No two rows of `tasks` may write overlapping output ranges (a row
    /// writes `gemm.cols()` numbers from its output offset).
    pub(crate) unsafe fn run(
        &self,
        gemm: &Packed,
        tasks: &[Task],
        input: &[f32],
        out: &mut [f32],
    ) -> Result<()> {
        let lanes = self.lanes;
        let in_bounds = tasks.iter().all(|t| {
            t.set < gemm.sets.len()
                && t.rows.iter().all(|r| {
                    r.src[..gemm.segs]
                        .iter()
                        .all(|&s| s + gemm.len <= input.len())
                        && r.dst + gemm.cols <= out.len()
                })
        });
        if !in_bounds
            || gemm.lanes != lanes
            || gemm
                .sets
                .iter()
                .any(|s| s.len() != gemm.tiles(lanes) * gemm.segs * gemm.len * lanes)
        {
            return Err(Error::invalid(
                "CPU kernel: a GEMM task reaches outside its buffers",
            ));
        }
        let tiles = gemm.tiles(lanes);
        let mut items = Vec::new();
        for (t, task) in tasks.iter().enumerate() {
            for r0 in (0..task.rows.len()).step_by(ROWS_PER_ITEM) {
                items.push((t, r0, (r0 + ROWS_PER_ITEM).min(task.rows.len()), 0, tiles));
            }
        }
        // Enough items for every thread: split column ranges where rows are few.
        let want = 4 * rayon::current_num_threads();
        if items.len() < want {
            let parts = want.div_ceil(items.len().max(1)).min(tiles).max(1);
            items = items
                .into_iter()
                .flat_map(|(t, r0, r1, _, _)| {
                    (0..parts).map(move |p| (t, r0, r1, p * tiles / parts, (p + 1) * tiles / parts))
                })
                .filter(|it| it.3 < it.4)
                .collect();
        }
        let out_ptr = SendPtr(out.as_mut_ptr());
        let work = |&(t, r0, r1, c0, c1): &(usize, usize, usize, usize, usize)| {
            let task = &tasks[t];
            let job = Job {
                gemm,
                set: &gemm.sets[task.set],
                rows: &task.rows[r0..r1],
                tiles: c0..c1,
                input,
                out: out_ptr.get(),
            };
            // SAFETY: items write disjoint output ranges (rows do, by the
            // caller's promise, and items split a row only by column tile);
            // offsets are in bounds and the weights packed for these tiles
            // (checked above); the kernel is available (checked when the
            // engine was made).
            unsafe { job.run(self.kernel, lanes) };
        };
        let macs: usize = tasks
            .iter()
            .map(|t| {
                t.rows
                    .iter()
                    .map(|r| r.mask.count_ones() as usize)
                    .sum::<usize>()
            })
            .sum::<usize>()
            * gemm.len
            * gemm.cols;
        if macs < SERIAL_MACS {
            items.iter().for_each(work);
        } else {
            items.par_iter().for_each(work);
        }
        Ok(())
    }
}

/// A raw output pointer shared by the threads of [`Engine::run`].
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the threads write disjoint ranges (see `Engine::run`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// The non-linearity applied after a GEMM's shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    /// None.
    Identity,
    /// max(0, x).
    Relu,
    /// x for x ≥ 0, slope·x below.
    LeakyRelu(f32),
    /// tanh, the image layer.
    Tanh,
}

impl Activation {
    /// The activation of one number.
    #[inline(always)]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => v.max(0.0),
            Activation::LeakyRelu(slope) => {
                if v >= 0.0 {
                    v
                } else {
                    v * slope
                }
            }
            Activation::Tanh => tanh(v),
        }
    }
}

/// tanh(x) = 1 − 2 / (1 + e^{2x}): within 1.8e-7 of the exact tanh on
/// [−20, 20] (tested), exact ±1 in the tails, NaN for NaN, and about 5× faster
/// (23 → 5 ns here): libm's tanh was most of the image layer's time.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + (2.0 * x).exp())
}

/// A weight matrix packed for the micro-kernel, with its epilogue.
pub(crate) struct Packed {
    /// One matrix per weight set (e.g. per phase): column tiles × K × lanes,
    /// K ordered (segment, row of the segment); columns past `cols` are zero.
    sets: Vec<Vec<f32>>,
    /// Rows per segment (input channels).
    len: usize,
    /// Segments (taps) per row: 4 for a convolution phase, 1 for a plain GEMM.
    segs: usize,
    /// Output columns.
    cols: usize,
    /// Shift added to each column, padded to whole tiles.
    shift: Vec<f32>,
    /// Applied after the shift.
    act: Activation,
    /// Columns per tile it was packed for.
    lanes: usize,
}

/// Packs `weight(segment, k, column)` for `segs` segments of `len` rows into
/// column tiles of `lanes`, zero past `cols`.
fn pack(
    lanes: usize,
    (segs, len, cols): (usize, usize, usize),
    weight: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let tiles = cols.div_ceil(lanes);
    let mut out = Vec::with_capacity(tiles * segs * len * lanes);
    for t in 0..tiles {
        for s in 0..segs {
            for k in 0..len {
                for c in t * lanes..(t + 1) * lanes {
                    out.push(if c < cols { weight(s, k, c) } else { 0.0 });
                }
            }
        }
    }
    out
}

impl Packed {
    /// Packs `sets` weight sets, `weight(set, segment, k, column)`, for `engine`:
    /// `segs` segments of `len` rows, `cols` columns, then `shift[column]` and `act`.
    pub(crate) fn new(
        engine: Engine,
        (sets, segs, len, cols): (usize, usize, usize, usize),
        weight: impl Fn(usize, usize, usize, usize) -> f32,
        shift: impl Fn(usize) -> f32,
        act: Activation,
    ) -> Self {
        let lanes = engine.lanes;
        Self {
            sets: (0..sets)
                .map(|set| pack(lanes, (segs, len, cols), |s, k, c| weight(set, s, k, c)))
                .collect(),
            len,
            segs,
            cols,
            shift: (0..cols.div_ceil(lanes) * lanes)
                .map(|c| if c < cols { shift(c) } else { 0.0 })
                .collect(),
            act,
            lanes,
        }
    }

    /// Output columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Rows per segment.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn tiles(&self, lanes: usize) -> usize {
        self.cols.div_ceil(lanes)
    }
}

/// One row of a GEMM: where each of its segments starts in the input, which
/// segments it sums, and where its output starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Input offset of each segment. A segment the row does not sum must
    /// point at `len` zeros: a micro-tile sums the segments any of its rows
    /// needs, and adding exact zeros leaves a row's sum unchanged.
    pub src: [usize; 4],
    /// Output offset.
    pub dst: usize,
    /// Bit `s` set: the row sums segment `s`.
    pub mask: u8,
}

/// Rows of one GEMM task, all sharing one weight set. Rows with the same
/// mask should be adjacent, so micro-tiles add few zeros.
pub(crate) struct Task {
    /// Which of the packed weight sets (the phase).
    pub set: usize,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Task {
    /// A plain GEMM: row `r` reads `len` numbers at `r·in_stride + in_offset`
    /// and writes its columns at `r·out_stride`.
    pub(crate) fn plain(
        rows: usize,
        (in_stride, in_offset): (usize, usize),
        out_stride: usize,
    ) -> Self {
        Self {
            set: 0,
            rows: (0..rows)
                .map(|r| Row {
                    src: [r * in_stride + in_offset; 4],
                    dst: r * out_stride,
                    mask: 1,
                })
                .collect(),
        }
    }
}

/// One work item: some rows of a task against some column tiles.
struct Job<'a> {
    gemm: &'a Packed,
    set: &'a [f32],
    rows: &'a [Row],
    tiles: std::ops::Range<usize>,
    input: &'a [f32],
    out: *mut f32,
}

/// Multiply-add: fused where the kernel has the instruction.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a·b + c` in one rounding.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct Fused;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// `a·b + c` in two roundings (no FMA instruction: a library call would be slower).
#[cfg(not(target_arch = "aarch64"))]
struct Plain;
#[cfg(not(target_arch = "aarch64"))]
impl MulAdd for Plain {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// The portable kernel's multiply-add: aarch64 always has FMA.
#[cfg(target_arch = "aarch64")]
type PortableMulAdd = Fused;
#[cfg(not(target_arch = "aarch64"))]
type PortableMulAdd = Plain;

impl Job<'_> {
    /// # Safety
    /// `kernel` must be available on this CPU and the job's offsets in bounds.
    unsafe fn run(&self, kernel: Kernel, lanes: usize) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller checked the CPU has AVX-512F.
            Kernel::Avx512 => unsafe { self.run_avx512() },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller checked the CPU has AVX2 and FMA.
            Kernel::Avx2 => unsafe { self.run_avx2() },
            // SAFETY: bounds as above; no special instructions.
            _ if lanes == 32 => unsafe { self.run_generic::<32, PortableMulAdd>() },
            _ => unsafe { self.run_generic::<16, PortableMulAdd>() },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self) {
        // SAFETY: forwarded from `run`.
        unsafe { self.run_generic::<32, Fused>() }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self) {
        // SAFETY: forwarded from `run`.
        unsafe { self.run_generic::<16, Fused>() }
    }

    #[inline(always)]
    unsafe fn run_generic<const NR: usize, F: MulAdd>(&self) {
        let g = self.gemm;
        let tile_len = g.segs * g.len * NR;
        for t in self.tiles.clone() {
            let panel = &self.set[t * tile_len..(t + 1) * tile_len];
            let shift: &[f32; NR] = match g.shift[t * NR..(t + 1) * NR].try_into() {
                Ok(s) => s,
                Err(_) => return,
            };
            let cols = (g.cols - t * NR).min(NR);
            let mut rows = self.rows;
            while !rows.is_empty() {
                let m = rows.len().min(MR);
                let (tile, rest) = rows.split_at(m);
                // SAFETY: as for `run`.
                unsafe {
                    match m {
                        6 => self.tile::<6, NR, F>(tile, panel, shift, t * NR, cols),
                        5 => self.tile::<5, NR, F>(tile, panel, shift, t * NR, cols),
                        4 => self.tile::<4, NR, F>(tile, panel, shift, t * NR, cols),
                        3 => self.tile::<3, NR, F>(tile, panel, shift, t * NR, cols),
                        2 => self.tile::<2, NR, F>(tile, panel, shift, t * NR, cols),
                        _ => self.tile::<1, NR, F>(tile, panel, shift, t * NR, cols),
                    }
                }
                rows = rest;
            }
        }
    }

    /// M rows × NR columns: the accumulators stay in registers over all of K.
    #[inline(always)]
    unsafe fn tile<const M: usize, const NR: usize, F: MulAdd>(
        &self,
        rows: &[Row],
        panel: &[f32],
        shift: &[f32; NR],
        col0: usize,
        cols: usize,
    ) {
        let len = self.gemm.len;
        let mut acc = [[0f32; NR]; M];
        let union = rows.iter().fold(0u8, |u, r| u | r.mask);
        for s in (0..self.gemm.segs).filter(|s| union & (1 << s) != 0) {
            let a: [*const f32; M] =
                // SAFETY: row offsets are in bounds of `input` (see `run`).
                std::array::from_fn(|i| unsafe { self.input.as_ptr().add(rows[i].src[s]) });
            let b = panel[s * len * NR..(s + 1) * len * NR].as_ptr();
            for k in 0..len {
                // SAFETY: `b` spans len·NR numbers; each `a[i]` spans `len`.
                let bk: [f32; NR] = unsafe { *(b.add(k * NR) as *const [f32; NR]) };
                for i in 0..M {
                    let av = unsafe { *a[i].add(k) };
                    for c in 0..NR {
                        acc[i][c] = F::mul_add(av, bk[c], acc[i][c]);
                    }
                }
            }
        }
        let act = self.gemm.act;
        for i in 0..M {
            // Whole-tile arithmetic (static indices keep `acc` in registers), then the valid columns.
            let mut v = [0f32; NR];
            for c in 0..NR {
                v[c] = act.apply(acc[i][c] + shift[c]);
            }
            // SAFETY: the row's output spans at least col0 + cols numbers, cols ≤ NR.
            unsafe {
                let dst = self.out.add(rows[i].dst + col0);
                if cols == NR {
                    // A whole tile: one fixed-size store, not a call to memcpy
                    // (which cost more than the multiply-adds of a short row).
                    std::ptr::write_unaligned(dst as *mut [f32; NR], v);
                } else {
                    for (c, value) in v.iter().enumerate().take(cols) {
                        *dst.add(c) = *value;
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_outside_their_buffers_or_weights_packed_for_other_tiles_are_refused() {
        let narrow = Engine::new(Kernel::Portable);
        let wide = Engine::portable_wide();
        let id = Activation::Identity;
        let packed = |e| Packed::new(e, (1, 1, 4, 64), |_, _, k, c| (k + c) as f32, |_| 0.0, id);
        let (input, mut out) = (vec![1f32; 8], vec![0f32; 128]);
        let task = [Task::plain(2, (4, 0), 64)];
        // SAFETY (all): the two rows write disjoint ranges.
        unsafe {
            assert!(narrow.run(&packed(narrow), &task, &input, &mut out).is_ok());
            assert_eq!(out[64 + 3], (0..4).map(|k| (k + 3) as f32).sum::<f32>());
            assert!(narrow.run(&packed(wide), &task, &input, &mut out).is_err());
            let past_input = [Task::plain(2, (4, 1), 64)];
            assert!(
                narrow
                    .run(&packed(narrow), &past_input, &input, &mut out)
                    .is_err()
            );
            let past_output = [Task::plain(2, (4, 0), 65)];
            assert!(
                narrow
                    .run(&packed(narrow), &past_output, &input, &mut out)
                    .is_err()
            );
        }
    }

    #[test]
    fn fast_tanh_is_within_a_few_ulps_of_the_exact_one() {
        let mut max = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // [−20, 20]
            max = max.max((tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        println!("max |tanh − exact| on [−20, 20]: {max:e}");
        assert!(max < 3e-7, "{max}");
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }
}
