// Dense layer on rows: y[r, o] (op)= act(b[o % bias_period] + Σ_k x[r, k] · w[k, o]).
// Used for the flow's coupling MLPs (LeakyReLU), its linear maps (no bias,
// no activation) and the generator's first layer (folded BatchNorm shift, ReLU).
// Rows are read and written with a stride and an offset, so one half of a
// flow vector can be the input and the other half the output.

struct Params {
    rows: u32,
    k: u32,
    m: u32,
    in_stride: u32,
    in_offset: u32,
    out_stride: u32,
    out_offset: u32,
    // 0: y = v, 1: y += v, 2: y -= v
    mode: u32,
    // 0: none, 1: leaky ReLU with `slope` (ReLU when slope is 0)
    act: u32,
    slope: f32,
    bias_period: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (col >= p.m || row >= p.rows) {
        return;
    }
    var acc = 0.0;
    let base = row * p.in_stride + p.in_offset;
    for (var i = 0u; i < p.k; i = i + 1u) {
        acc = acc + x[base + i] * w[i * p.m + col];
    }
    acc = acc + b[col % p.bias_period];
    if (p.act == 1u) {
        acc = max(acc, 0.0) + p.slope * min(acc, 0.0);
    }
    let o = row * p.out_stride + p.out_offset + col;
    if (p.mode == 1u) {
        y[o] = y[o] + acc;
    } else if (p.mode == 2u) {
        y[o] = y[o] - acc;
    } else {
        y[o] = acc;
    }
}
