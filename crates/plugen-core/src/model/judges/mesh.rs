//! The mesh judge: MediaPipe's face-landmark network (`face_landmark.tflite`
//! from the mediapipe 0.10.21 wheel, Apache-2.0), the model that labelled the
//! default plugin's mouth, pose and eyes (`tools/labels/mesh.py`): 468 face
//! landmarks in 3D and a face-presence logit from the whole 64×64 frame,
//! upscaled to 192×192 with PIL's bicubic filter (the generator's faces are
//! centred crops, so no face detector runs first).
//!
//! The network is stored as its operations (`tools/judges/convert_mesh.py`
//! writes them, with the weights by their names in the file, into the
//! safetensors header's `graph`): convolutions, depthwise convolutions, PReLU,
//! residual adds, 2×2 max pools and zero channel padding, with TensorFlow's
//! "same" and "valid" paddings. It runs on the CPU engine
//! ([`crate::compute::cpu_conv`]), channel-last; every map keeps a border of
//! one zero pixel, which is all the padding any operation here needs.
//!
//! [`measures`] turns the landmarks into the labeller's numbers.

use std::collections::HashMap;

use image::RgbImage;
use rayon::prelude::*;
use serde::Deserialize;

use crate::compute::cpu_conv::{self, Conv, Map};
use crate::compute::cpu_gemm::{Activation, Engine, Kernel};
use crate::compute::cpu_simd;
use crate::error::{Error, Result};

/// Side of the network's input.
pub const INPUT_SIZE: usize = 192;
/// Landmarks the network returns.
pub const LANDMARKS: usize = 468;
/// The border every map keeps.
const BORDER: usize = 1;

/// A convolution's fields as `convert_mesh.py` writes them.
#[derive(Debug, Clone, Deserialize)]
struct ConvSpec {
    #[serde(rename = "in")]
    input: String,
    out: String,
    weight: String,
    bias: String,
    stride: usize,
    same: bool,
}

/// One operation as `convert_mesh.py` writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpSpec {
    Conv(ConvSpec),
    Depthwise(ConvSpec),
    Prelu {
        #[serde(rename = "in")]
        input: String,
        out: String,
        alpha: String,
    },
    Add {
        #[serde(rename = "in")]
        input: [String; 2],
        out: String,
    },
    MaxPool {
        #[serde(rename = "in")]
        input: String,
        out: String,
        size: usize,
        stride: usize,
    },
    PadChannels {
        #[serde(rename = "in")]
        input: String,
        out: String,
        extra: usize,
    },
}

/// The graph in the weights file's header.
#[derive(Debug, Clone, Deserialize)]
struct GraphSpec {
    input: String,
    landmarks: String,
    face: String,
    ops: Vec<OpSpec>,
}

/// A compiled operation; tensors are slots.
enum Step {
    Conv(Conv),
    /// 3×3 depthwise, weights (c, 3, 3) at stride 1 with padding 1, else
    /// (3, 3, c), then the bias; `before` is the padding before (0 or 1).
    Depthwise {
        weight: Vec<f32>,
        bias: Vec<f32>,
        stride: usize,
        before: usize,
        out_side: usize,
    },
    /// PReLU; the slopes repeated along one map row, border included.
    Prelu(Vec<f32>),
    /// A residual add of the slot's map.
    Add(usize),
    /// A residual add, then PReLU (slopes as for `Prelu`), in one pass.
    AddPrelu(usize, Vec<f32>),
    MaxPool,
    PadChannels(usize),
}

/// One step with its input and output slots and the slots it frees after.
struct Node {
    step: Step,
    input: usize,
    out: usize,
    free: Vec<usize>,
}

/// The face-landmark network.
pub struct MeshJudge {
    nodes: Vec<Node>,
    slots: usize,
    input: usize,
    landmarks: usize,
    face: usize,
}

/// TensorFlow's padding before and after for a `k`-wide window at `stride`
/// on `size` pixels, and the output size.
fn tf_padding(size: usize, k: usize, stride: usize, same: bool) -> (usize, usize, usize) {
    if !same {
        return (0, 0, (size - k) / stride + 1);
    }
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(size);
    (total / 2, total - total / 2, out)
}

impl MeshJudge {
    /// Builds the network from its weights (f32 by name) and the graph JSON
    /// stored beside them.
    pub fn new(tensors: &HashMap<String, candle_core::Tensor>, graph_json: &str) -> Result<Self> {
        let graph: GraphSpec = serde_json::from_str(graph_json)
            .map_err(|e| Error::invalid(format!("mesh judge: graph: {e}")))?;
        let engine = Engine::new(Kernel::detect());
        let get = |name: &str, len: usize| -> Result<Vec<f32>> {
            let t = tensors
                .get(name)
                .ok_or_else(|| Error::invalid(format!("mesh judge: no tensor {name:?}")))?;
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            if v.len() != len {
                return Err(Error::invalid(format!(
                    "mesh judge: tensor {name:?} has {} numbers, expected {len}",
                    v.len()
                )));
            }
            Ok(v)
        };
        // Shapes (side, channels) by name, followed through the graph.
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut shape: Vec<(usize, usize)> = Vec::new();
        fn slot(
            slot_of: &mut HashMap<String, usize>,
            shape: &mut Vec<(usize, usize)>,
            name: &str,
            s: (usize, usize),
        ) -> usize {
            let i = shape.len();
            shape.push(s);
            slot_of.insert(name.to_string(), i);
            i
        }
        let input = slot(&mut slot_of, &mut shape, &graph.input, (INPUT_SIZE, 3));
        let mut nodes = Vec::new();
        let mut reads: Vec<Vec<usize>> = Vec::new();
        let find = |n: &str, slot_of: &HashMap<String, usize>| {
            slot_of
                .get(n)
                .copied()
                .ok_or_else(|| Error::invalid(format!("mesh judge: no map {n:?} made before")))
        };
        for op in &graph.ops {
            let (node_in, node_reads, step, out_name, out_shape) = match op {
                OpSpec::Conv(spec) => {
                    let ConvSpec {
                        input,
                        out,
                        weight,
                        bias,
                        stride,
                        same,
                    } = spec;
                    let i = find(input, &slot_of)?;
                    let (side, cin) = shape[i];
                    let dims = tensors
                        .get(weight)
                        .map(|t| t.dims().to_vec())
                        .ok_or_else(|| {
                            Error::invalid(format!("mesh judge: no tensor {weight:?}"))
                        })?;
                    let [cout, k, kw, wcin] = dims[..] else {
                        return Err(Error::invalid(format!(
                            "mesh judge: convolution {weight:?} is not (out, k, k, in)"
                        )));
                    };
                    if k != kw || wcin != cin || !(k == 1 || k == 3) {
                        return Err(Error::invalid(format!(
                            "mesh judge: convolution {weight:?} is not 1×1 or 3×3 over {cin} channels"
                        )));
                    }
                    let w_len = cout * k * k * cin;
                    let b = get(bias, cout)?;
                    let w = get(weight, w_len)?;
                    let (before, after, out_side) = tf_padding(side, k, *stride, *same);
                    if before > after || after - before > 1 || after > BORDER {
                        return Err(Error::invalid(format!(
                            "mesh judge: convolution {weight:?}: padding {before}/{after} not supported"
                        )));
                    }
                    let conv = Conv::new(
                        engine,
                        (k, *stride, before),
                        (cin, cout),
                        |co, ci, ky, kx| w[((co * k + ky) * k + kx) * cin + ci],
                        |co| b[co],
                        Activation::Identity,
                    )
                    .with_trailing_pad(after - before);
                    (i, vec![i], Step::Conv(conv), out, (out_side, cout))
                }
                OpSpec::Depthwise(spec) => {
                    let ConvSpec {
                        input,
                        out,
                        weight,
                        bias,
                        stride,
                        same,
                    } = spec;
                    let i = find(input, &slot_of)?;
                    let (side, c) = shape[i];
                    let w = get(weight, 9 * c)?;
                    let bias = get(bias, c)?;
                    let (before, after, out_side) = tf_padding(side, 3, *stride, *same);
                    // (1, 3, 3, c) → (c, 3, 3) for the stride-1 kernel; the
                    // strided one reads TensorFlow's order.
                    let taps: Vec<f32> = if *stride == 1 && before == 1 {
                        (0..c * 9).map(|j| w[(j % 9) * c + j / 9]).collect()
                    } else {
                        w
                    };
                    if after > BORDER || before > after {
                        return Err(Error::invalid(format!(
                            "mesh judge: depthwise {weight:?}: padding {before}/{after} not supported"
                        )));
                    }
                    let step = Step::Depthwise {
                        weight: taps,
                        bias,
                        stride: *stride,
                        before,
                        out_side,
                    };
                    (i, vec![i], step, out, (out_side, c))
                }
                OpSpec::Prelu { input, out, alpha } => {
                    let i = find(input, &slot_of)?;
                    let (side, c) = shape[i];
                    let a = get(alpha, c)?.repeat(side + 2 * BORDER);
                    (i, vec![i], Step::Prelu(a), out, shape[i])
                }
                OpSpec::Add { input, out } => {
                    let (a, b) = (find(&input[0], &slot_of)?, find(&input[1], &slot_of)?);
                    if shape[a] != shape[b] {
                        return Err(Error::invalid(format!(
                            "mesh judge: adding {:?} and {:?} of different shapes",
                            input[0], input[1]
                        )));
                    }
                    (a, vec![a, b], Step::Add(b), out, shape[a])
                }
                OpSpec::MaxPool {
                    input,
                    out,
                    size,
                    stride,
                } => {
                    let i = find(input, &slot_of)?;
                    if *size != 2 || *stride != 2 {
                        return Err(Error::invalid("mesh judge: only 2×2 stride-2 max pools"));
                    }
                    let (side, c) = shape[i];
                    (i, vec![i], Step::MaxPool, out, (side / 2, c))
                }
                OpSpec::PadChannels { input, out, extra } => {
                    let i = find(input, &slot_of)?;
                    let (side, c) = shape[i];
                    (
                        i,
                        vec![i],
                        Step::PadChannels(*extra),
                        out,
                        (side, c + extra),
                    )
                }
            };
            let out = slot(&mut slot_of, &mut shape, out_name, out_shape);
            reads.push(node_reads);
            nodes.push(Node {
                step,
                input: node_in,
                out,
                free: Vec::new(),
            });
        }
        let (landmarks, face) = (
            find(&graph.landmarks, &slot_of)?,
            find(&graph.face, &slot_of)?,
        );
        if shape[landmarks] != (1, LANDMARKS * 3) || shape[face] != (1, 1) {
            return Err(Error::invalid(
                "mesh judge: outputs are not 468×3 landmarks and one logit",
            ));
        }
        // Free each map after its last reader (the outputs are kept).
        let mut last = vec![None; shape.len()];
        for (n, r) in reads.iter().enumerate() {
            for &s in r {
                last[s] = Some(n);
            }
        }
        for (s, l) in last.iter().enumerate() {
            if let Some(n) = *l
                && s != landmarks
                && s != face
            {
                nodes[n].free.push(s);
            }
        }
        let nodes = fuse_add_prelu(nodes, &last);
        Ok(Self {
            nodes,
            slots: shape.len(),
            input,
            landmarks,
            face,
        })
    }

    /// Landmarks ((468 × 3) in 192-pixel units, x and y from the top left)
    /// and the face-presence logit of each face. A face reads the same bits
    /// alone or in a batch.
    pub fn landmarks(&self, faces: &[&RgbImage]) -> Result<Vec<(Vec<f32>, f32)>> {
        faces.par_iter().map(|f| self.one(f)).collect()
    }

    fn one(&self, face: &RgbImage) -> Result<(Vec<f32>, f32)> {
        let big = upscale_bicubic(face, INPUT_SIZE as u32);
        let mut x = Map::zeros(1, (INPUT_SIZE, INPUT_SIZE, 3), BORDER);
        for y in 0..INPUT_SIZE {
            for xx in 0..INPUT_SIZE {
                let p = big.get_pixel(xx as u32, y as u32).0;
                let at = x.at(0, y as isize, xx as isize);
                for (d, v) in x.data[at..at + 3].iter_mut().zip(p) {
                    *d = v as f32 / 255.0;
                }
            }
        }
        let mut maps: Vec<Option<Map>> = (0..self.slots).map(|_| None).collect();
        maps[self.input] = Some(x);
        for node in &self.nodes {
            let src = || held(&maps, node.input);
            let out = match &node.step {
                Step::Conv(conv) => conv.forward(src()?, BORDER)?,
                Step::Depthwise {
                    weight,
                    bias,
                    stride,
                    before,
                    out_side,
                } => depthwise(src()?, weight, bias, (*stride, *before), *out_side)?,
                Step::MaxPool => cpu_conv::max_pool2(src()?, BORDER),
                Step::PadChannels(extra) => pad_channels(src()?, *extra),
                Step::Prelu(alpha) => {
                    let mut m = owned(&mut maps, node)?;
                    prelu(&mut m, alpha);
                    m
                }
                Step::Add(other) => {
                    let mut m = owned(&mut maps, node)?;
                    add(&mut m, held(&maps, *other)?);
                    m
                }
                Step::AddPrelu(other, alpha) => {
                    let mut m = owned(&mut maps, node)?;
                    add_prelu(&mut m, held(&maps, *other)?, alpha);
                    m
                }
            };
            maps[node.out] = Some(out);
            for &s in &node.free {
                maps[s] = None;
            }
        }
        let read = |slot: usize| -> Result<Vec<f32>> {
            let m = maps[slot]
                .as_ref()
                .ok_or_else(|| Error::invalid("mesh judge: no output"))?;
            let at = m.at(0, 0, 0);
            Ok(m.data[at..at + m.c].to_vec())
        };
        let face_logit = read(self.face)?[0];
        Ok((read(self.landmarks)?, face_logit))
    }
}

/// The map in `slot`, still held.
fn held(maps: &[Option<Map>], slot: usize) -> Result<&Map> {
    maps[slot]
        .as_ref()
        .ok_or_else(|| Error::invalid("mesh judge: a map was freed too early"))
}

/// The input map of `node` to work on in place: taken when no later
/// operation reads it (most PReLUs and adds), else copied.
fn owned(maps: &mut [Option<Map>], node: &Node) -> Result<Map> {
    if node.free.contains(&node.input) {
        maps[node.input]
            .take()
            .ok_or_else(|| Error::invalid("mesh judge: a map was freed too early"))
    } else {
        held(maps, node.input).cloned()
    }
}

/// A 3×3 depthwise convolution with bias at stride 1 or 2 (`before`: the
/// padding before, the rest after within the border) to `side`×`side`.
/// `weight` is (c, 3, 3) for stride 1, (3, 3, c) otherwise.
fn depthwise(
    x: &Map,
    weight: &[f32],
    bias: &[f32],
    (stride, before): (usize, usize),
    side: usize,
) -> Result<Map> {
    if stride != 1 || before != 1 {
        return cpu_conv::depthwise3_strided(x, (weight, bias), (stride, before), side, BORDER);
    }
    let mut m = cpu_conv::depthwise3(x, weight, BORDER)?;
    let c = m.c;
    let row = m.w * c;
    cpu_simd::widest(
        #[inline(always)]
        || {
            for y in 0..m.h as isize {
                let at = m.at(0, y, 0);
                for px in m.data[at..at + row].chunks_exact_mut(c) {
                    for (v, b) in px.iter_mut().zip(bias) {
                        *v += b;
                    }
                }
            }
        },
    );
    Ok(m)
}

/// The same map with `extra` zero channels after its own.
fn pad_channels(x: &Map, extra: usize) -> Map {
    let c = x.c;
    let mut out = Map::zeros(1, (x.h, x.w, c + extra), BORDER);
    for y in 0..x.h as isize {
        for xx in 0..x.w as isize {
            let (i, o) = (x.at(0, y, xx), out.at(0, y, xx));
            out.data[o..o + c].copy_from_slice(&x.data[i..i + c]);
        }
    }
    out
}

/// PReLU in place: a negative number times its channel's slope (`alpha`:
/// the slopes along one map row).
fn prelu(m: &mut Map, alpha: &[f32]) {
    cpu_simd::widest(
        #[inline(always)]
        || {
            for row in m.data.chunks_exact_mut(alpha.len()) {
                for (v, a) in row.iter_mut().zip(alpha) {
                    *v = prelu_one(*v, *a);
                }
            }
        },
    );
}

/// PReLU of one number: `v` times the slope `a` where negative.
#[inline(always)]
fn prelu_one(v: f32, a: f32) -> f32 {
    if v < 0.0 { v * a } else { v }
}

/// `m += other`, number by number (borders are zero in both).
fn add(m: &mut Map, other: &Map) {
    cpu_simd::widest(
        #[inline(always)]
        || {
            for (v, w) in m.data.iter_mut().zip(&other.data) {
                *v += w;
            }
        },
    );
}

/// [`add`] then [`prelu`] in one pass: the same numbers, one read of `m`.
fn add_prelu(m: &mut Map, other: &Map, alpha: &[f32]) {
    let len = alpha.len();
    cpu_simd::widest(
        #[inline(always)]
        || {
            for (row, from) in m
                .data
                .chunks_exact_mut(len)
                .zip(other.data.chunks_exact(len))
            {
                for ((v, w), a) in row.iter_mut().zip(from).zip(alpha) {
                    *v = prelu_one(*v + w, *a);
                }
            }
        },
    );
}

/// `nodes` with each add whose only reader is the PReLU right after it
/// merged into that PReLU (`last`: each slot's last reader).
fn fuse_add_prelu(nodes: Vec<Node>, last: &[Option<usize>]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for (n, node) in nodes.into_iter().enumerate() {
        if let (Step::Prelu(alpha), Some(prev)) = (&node.step, out.last_mut())
            && let Step::Add(other) = prev.step
            && prev.out == node.input
            && last[node.input] == Some(n)
        {
            prev.step = Step::AddPrelu(other, alpha.clone());
            prev.out = node.out;
            prev.free
                .extend(node.free.iter().filter(|&&s| s != node.input));
            continue;
        }
        out.push(node);
    }
    out
}

/// PIL's bicubic filter (a = −0.5).
fn bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// Bits of PIL's fixed-point coefficients for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL's resampling coefficients from `input` to `output` pixels (an
/// upscale): for each output pixel, the first input pixel and the weights.
fn coefficients(input: usize, output: usize) -> Weights {
    let scale = input as f64 / output as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..output)
        .map(|x| {
            let center = (x as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|j| bicubic((j as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|v| {
                    let v = if total != 0.0 { v / total } else { *v };
                    let f = v * (1u64 << PRECISION_BITS) as f64;
                    (if f < 0.0 { f - 0.5 } else { f + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

/// One resampling pass's rounding and clipping back to 8 bits.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL's weights for one pass: per output pixel, the first input pixel and
/// the weights from there.
type Weights = Vec<(usize, Vec<i32>)>;

/// `face` upscaled to `side`×`side` exactly as PIL's `resize(BICUBIC)` does
/// for RGB: horizontal pass, then vertical, each in fixed point (PIL's
/// 32-bit accumulators) and rounded to 8 bits.
pub fn upscale_bicubic(face: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = (face.width() as usize, face.height() as usize);
    let side_px = side as usize;
    resample(face, &coefficients(w, side_px), &coefficients(h, side_px))
}

/// [`upscale_bicubic`] with the weights of each pass given.
fn resample(face: &RgbImage, across: &Weights, down: &Weights) -> RgbImage {
    let w = face.width() as usize;
    let (side_w, side_h) = (across.len(), down.len());
    let src = face.as_raw();
    let half = 1i32 << (PRECISION_BITS - 1);
    // Integer arithmetic: the same bits on any vector width.
    let out = cpu_simd::widest(
        #[inline(always)]
        || {
            // Across: each row of the input to `side_w` pixels.
            let stride = side_w * 3;
            let mut wide = vec![0u8; face.height() as usize * stride];
            for (row, out) in src.chunks_exact(w * 3).zip(wide.chunks_exact_mut(stride)) {
                for ((first, k), px) in across.iter().zip(out.chunks_exact_mut(3)) {
                    let mut acc = [half; 3];
                    for (p, kk) in row[first * 3..].chunks_exact(3).zip(k) {
                        for (a, v) in acc.iter_mut().zip(p) {
                            *a += *v as i32 * *kk;
                        }
                    }
                    for (o, a) in px.iter_mut().zip(acc) {
                        *o = clip8(a);
                    }
                }
            }
            // Down: each output row a weighted sum of whole rows of `wide`.
            let mut out = vec![0u8; side_h * stride];
            let mut acc = vec![0i32; stride];
            for ((first, k), row) in down.iter().zip(out.chunks_exact_mut(stride)) {
                acc.fill(half);
                for (j, kk) in k.iter().enumerate() {
                    let from = &wide[(first + j) * stride..][..stride];
                    for (a, v) in acc.iter_mut().zip(from) {
                        *a += *v as i32 * *kk;
                    }
                }
                for (o, a) in row.iter_mut().zip(&acc) {
                    *o = clip8(*a);
                }
            }
            out
        },
    );
    RgbImage::from_raw(side_w as u32, side_h as u32, out).unwrap_or_default()
}

/// Whether `weights` (from `input` pixels) read the same from either end:
/// then resampling a mirrored row gives the mirrored result bit for bit
/// (taps of weight 0 aside).
fn mirror_symmetric(weights: &Weights, input: usize) -> bool {
    let taps = |x: usize| -> Vec<(usize, i32)> {
        let (first, k) = &weights[x];
        k.iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(j, v)| (first + j, *v))
            .collect()
    };
    let n = weights.len();
    (0..n).all(|x| {
        let mut mirrored: Vec<(usize, i32)> = taps(n - 1 - x)
            .into_iter()
            .map(|(j, v)| (input - 1 - j, v))
            .collect();
        mirrored.reverse();
        taps(x) == mirrored
    })
}

/// [`upscale_bicubic`] of `face` and of its mirror image. Where PIL's
/// horizontal weights are mirror-symmetric (checked, not assumed) the
/// second is the first flipped: the same bits for half the work.
pub fn upscale_bicubic_and_mirror(face: &RgbImage, side: u32) -> (RgbImage, RgbImage) {
    let (w, h) = (face.width() as usize, face.height() as usize);
    let (across, down) = (
        coefficients(w, side as usize),
        coefficients(h, side as usize),
    );
    let big = resample(face, &across, &down);
    let mirror = if mirror_symmetric(&across, w) {
        image::imageops::flip_horizontal(&big)
    } else {
        resample(&image::imageops::flip_horizontal(face), &across, &down)
    };
    (big, mirror)
}

/// The labeller's measures of one face from its landmarks (192-pixel units)
/// and logit, as `tools/labels/mesh.py` computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    /// Face-presence logit (> 0: a face).
    pub face: f32,
    /// Inner-lip gap over inner mouth width (13–14 / 78–308).
    pub mouth: f32,
    /// Eyelid gap over eye width, both eyes averaged.
    pub eye_gap: f32,
    /// Head turn in degrees (positive: nose towards the image's right).
    pub yaw: f32,
    /// Head tilt in degrees (positive: chin forward).
    pub pitch: f32,
}

/// The measures of one face (`landmarks`: 468 × 3).
pub fn measures(landmarks: &[f32], face: f32) -> Measures {
    let p = |i: usize| [landmarks[3 * i], landmarks[3 * i + 1], landmarks[3 * i + 2]];
    let dist = |a: usize, b: usize| {
        let (a, b) = (p(a), p(b));
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
    };
    let ratio = |a: f32, b: f32| a / b.max(1e-6);
    let eyes = (ratio(dist(159, 145), dist(33, 133)) + ratio(dist(386, 374), dist(362, 263))) / 2.0;
    let across = [p(454)[0] - p(234)[0], p(454)[2] - p(234)[2]];
    let down = [p(152)[1] - p(10)[1], p(152)[2] - p(10)[2]];
    Measures {
        face,
        mouth: ratio(dist(13, 14), dist(78, 308)),
        eye_gap: eyes,
        yaw: across[1].atan2(across[0]).to_degrees(),
        pitch: (-down[1]).atan2(down[0]).to_degrees(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorflow_same_padding_puts_the_odd_pixel_after() {
        assert_eq!(tf_padding(192, 3, 2, true), (0, 1, 96));
        assert_eq!(tf_padding(96, 3, 1, true), (1, 1, 96));
        assert_eq!(tf_padding(3, 3, 3, false), (0, 0, 1));
        assert_eq!(tf_padding(96, 1, 1, false), (0, 0, 96));
    }

    #[test]
    fn an_upscale_keeps_a_flat_image_flat_and_its_weights_sum_to_one() {
        for (first, k) in coefficients(64, 192) {
            let sum: i64 = k.iter().map(|&v| v as i64).sum();
            assert!(
                (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                "{first} {sum}"
            );
        }
        let flat = RgbImage::from_pixel(64, 64, image::Rgb([10, 128, 250]));
        let big = upscale_bicubic(&flat, 192);
        assert!(big.pixels().all(|p| p.0 == [10, 128, 250]));
    }

    #[test]
    fn the_mirror_of_an_upscale_is_the_upscale_of_the_mirror() {
        // Sizes whose weights are symmetric take the flip; others (if any)
        // resample the mirror: both must give upscale(flip(face)).
        for (w, h, side) in [(64, 64, 256), (64, 64, 192), (37, 29, 100), (5, 7, 16)] {
            let face = RgbImage::from_fn(w, h, |x, y| {
                let v = (x * 37 + y * 11 + x * x * y) as u8;
                image::Rgb([v, v.wrapping_mul(3), (x * 255 / w) as u8])
            });
            let (big, mirror) = upscale_bicubic_and_mirror(&face, side);
            assert!(big == upscale_bicubic(&face, side), "{w}x{h} to {side}");
            let want = upscale_bicubic(&image::imageops::flip_horizontal(&face), side);
            assert!(mirror == want, "{w}x{h} to {side}: the mirror differs");
        }
        assert!(mirror_symmetric(&coefficients(64, 256), 64));
    }
}
