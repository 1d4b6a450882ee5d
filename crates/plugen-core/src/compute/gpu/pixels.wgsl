// Generator output (N, S, S, stride) in [−1, 1], C = 1 or 3 channels used, to RGBA8 with the
// byte mapping used everywhere: round((v + 1) · 127.5), clamped, NaN → 0
// (round half away from zero, as Rust's f32::round).

struct Params {
    n: u32,
    size: u32,
    channels: u32,
    // numbers per pixel as stored (channels padded to a multiple of 4)
    stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<u32>;
@group(0) @binding(3) var face: texture_storage_2d<rgba8unorm, write>;

fn byte_of(x: f32) -> u32 {
    let s = floor((x + 1.0) * 127.5 + 0.5);
    if (!(s >= 0.0)) {
        return 0u; // negative or NaN
    }
    return u32(min(s, 255.0));
}

fn rgb_at(img: u32, px: u32) -> vec3<u32> {
    let base = (img * p.size * p.size + px) * p.stride;
    if (p.channels == 1u) {
        let g = byte_of(v[base]);
        return vec3<u32>(g, g, g);
    }
    return vec3<u32>(byte_of(v[base]), byte_of(v[base + 1u]), byte_of(v[base + 2u]));
}

// One u32 per pixel, bytes R, G, B, A in memory order.
@compute @workgroup_size(64)
fn to_buffer(@builtin(global_invocation_id) gid: vec3<u32>) {
    let px = gid.x;
    let img = gid.y;
    if (px >= p.size * p.size || img >= p.n) {
        return;
    }
    let c = rgb_at(img, px);
    packed[img * p.size * p.size + px] = c.x | (c.y << 8u) | (c.z << 16u) | (255u << 24u);
}

// The first image into an Rgba8Unorm storage texture (the editor's face).
@compute @workgroup_size(64)
fn to_texture(@builtin(global_invocation_id) gid: vec3<u32>) {
    let px = gid.x;
    if (px >= p.size * p.size) {
        return;
    }
    let c = vec3<f32>(rgb_at(0u, px)) / 255.0;
    textureStore(face, vec2<u32>(px % p.size, px / p.size), vec4<f32>(c, 1.0));
}
