// Stride-2, padding-1, 4×4 transposed convolution on channel-last maps,
// written as a gather: every output value sums its own inputs, so no two
// invocations write the same place (WGSL has no float atomics).
//
// Input (N, H, W, Cin), output (N, 2H, 2W, Cout), weights packed as
// (Cin, ky, kx, Cout) with BatchNorm folded in, then + shift and ReLU or tanh.
// Output row oy = 2·iy + ky − 1, so an even row 2m takes taps ky=1 (iy=m) and
// ky=3 (iy=m−1); an odd row 2m+1 takes ky=0 (iy=m+1) and ky=2 (iy=m); columns
// likewise: four taps per output pixel.
//
// One invocation computes four output channels of one output pixel, reading
// four input channels at a time: every load is a vec4 (channel counts are
// padded to multiples of 4 when the weights are uploaded).

struct Params {
    n: u32,
    h: u32,
    w: u32,
    // channel counts / 4
    cin4: u32,
    cout4: u32,
    _unused: u32,
    // 0: ReLU, 1: tanh
    act: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> shift: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ow = 2u * p.w;
    if (gid.x >= ow * p.cout4) {
        return;
    }
    let ox = gid.x / p.cout4;
    let co4 = gid.x % p.cout4;
    let oy = gid.y;
    let img = gid.z;
    let oh = 2u * p.h;

    let my = i32(oy / 2u);
    let mx = i32(ox / 2u);
    var ky = vec2<u32>(1u, 3u);
    var iy = vec2<i32>(my, my - 1);
    if (oy % 2u == 1u) {
        ky = vec2<u32>(0u, 2u);
        iy = vec2<i32>(my + 1, my);
    }
    var kx = vec2<u32>(1u, 3u);
    var ix = vec2<i32>(mx, mx - 1);
    if (ox % 2u == 1u) {
        kx = vec2<u32>(0u, 2u);
        ix = vec2<i32>(mx + 1, mx);
    }

    // Weights of input channel c, tap k, output channels 4·co4..: wt[(c·16 + k)·cout4 + co4].
    let step = 16u * p.cout4;
    var acc = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t = t + 1u) {
        let yy = iy[t / 2u];
        let xx = ix[t % 2u];
        if (yy < 0 || yy >= i32(p.h) || xx < 0 || xx >= i32(p.w)) {
            continue;
        }
        let xb = ((img * p.h + u32(yy)) * p.w + u32(xx)) * p.cin4;
        var wi = (ky[t / 2u] * 4u + kx[t % 2u]) * p.cout4 + co4;
        for (var c4 = 0u; c4 < p.cin4; c4 = c4 + 1u) {
            let v = x[xb + c4];
            acc = acc + v.x * wt[wi] + v.y * wt[wi + step] + v.z * wt[wi + 2u * step]
                + v.w * wt[wi + 3u * step];
            wi = wi + 4u * step;
        }
    }
    var out = acc + shift[co4];
    if (p.act == 1u) {
        // tanh(±10) is ±1 in f32; clamping keeps drivers whose tanh overflows from returning NaN
        out = tanh(clamp(out, vec4<f32>(-10.0), vec4<f32>(10.0)));
    } else {
        out = max(out, vec4<f32>(0.0));
    }
    y[((img * oh + oy) * ow + ox) * p.cout4 + co4] = out;
}
