//! dlib's 5-point face landmarks (`shape_predictor_5_face_landmarks.dat`,
//! dlib-models, CC0) and dlib's face chips: how the labeller aligns the
//! gender network's input and where it measures skin.
//!
//! The shape predictor is a cascade of regression-tree forests (Kazemi and
//! Sullivan 2014, dlib's `shape_predictor.h`): start from the mean shape in
//! the face box; at each cascade, read the intensity of a set of pixels
//! placed relative to the current shape, walk every tree on differences of
//! two of them and add its leaf's shape change. Weights by name, converted
//! once by `tools/judges/convert_landmarks.py`: `initial_shape` (10),
//! `anchor` (C, F), `delta` (C, F, 2), `split` (C, T, S, 3: idx1, idx2,
//! threshold), `leaf` (C, T, S + 1, 10).
//!
//! [`face_chip`] is dlib's `get_face_chip`: the similarity transform from
//! the five points to dlib's mean face, an image pyramid (dlib's
//! `pyramid_down<2>`, its integer 5-tap filter) to the level just above the
//! chip's size, then bilinear sampling truncated to 8 bits. Both follow
//! dlib 20.0.1's arithmetic; the parity test compares points and chips with
//! dlib's own on fixture faces.

use candle_nn::VarBuilder;
use image::RgbImage;

use crate::error::{Error, Result};

/// Points of a shape.
pub const POINTS: usize = 5;
/// How much the labeller upscales a 64-pixel face before finding its points.
pub const UPSCALE: u32 = 4;

/// A point in pixels, as dlib rounds them.
pub type Point = [i64; 2];

/// One cascade of the shape predictor.
struct Cascade {
    /// Shape point each feature pixel is placed from.
    anchor: Vec<usize>,
    /// Offset of each feature pixel from its anchor (box units).
    delta: Vec<[f32; 2]>,
    /// Per tree, per split: the two feature pixels compared.
    features: Vec<[usize; 2]>,
    /// Per tree, per split: the threshold on their difference.
    thresholds: Vec<f32>,
    /// Per tree, per leaf: the shape change.
    leaves: Vec<f32>,
}

/// The 5-point shape predictor.
pub struct LandmarkJudge {
    initial: Vec<f32>,
    cascades: Vec<Cascade>,
    splits: usize,
}

/// A tensor's numbers, with its shape.
fn tensor(vb: &VarBuilder, name: &str, rank: usize) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = vb.get_unchecked(name)?;
    let dims = t.dims().to_vec();
    if dims.len() != rank {
        return Err(Error::invalid(format!(
            "landmark tensor {name} has shape {dims:?}, expected {rank} dimensions"
        )));
    }
    Ok((dims, t.flatten_all()?.to_vec1::<f32>()?))
}

/// A stored index, checked to be a whole number below `limit`.
fn index(v: f32, limit: usize, what: &str) -> Result<usize> {
    if v >= 0.0 && v.fract() == 0.0 && (v as usize) < limit {
        Ok(v as usize)
    } else {
        Err(Error::invalid(format!(
            "landmark {what} {v} is not an index below {limit}"
        )))
    }
}

impl LandmarkJudge {
    /// Builds the predictor from weights named as in the module docs,
    /// checking that their shapes agree and every index is in range.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let (_, initial) = tensor(&vb, "initial_shape", 1)?;
        if initial.len() != 2 * POINTS {
            return Err(Error::invalid(format!(
                "landmark initial_shape has {} numbers, expected {}",
                initial.len(),
                2 * POINTS
            )));
        }
        let (ad, anchor) = tensor(&vb, "anchor", 2)?;
        let (dd, delta) = tensor(&vb, "delta", 3)?;
        let (sd, split) = tensor(&vb, "split", 4)?;
        let (ld, leaf) = tensor(&vb, "leaf", 4)?;
        let (c, f) = (ad[0], ad[1]);
        let (t, s) = (sd[1], sd[2]);
        if dd != [c, f, 2] || sd != [c, t, s, 3] || ld != [c, t, s + 1, 2 * POINTS] {
            return Err(Error::invalid(format!(
                "landmark tensors disagree: anchor {ad:?}, delta {dd:?}, split {sd:?}, leaf {ld:?}"
            )));
        }
        let mut cascades = Vec::with_capacity(c);
        for k in 0..c {
            let anchor = anchor[k * f..(k + 1) * f]
                .iter()
                .map(|&a| index(a, POINTS, "anchor"))
                .collect::<Result<_>>()?;
            let delta = delta[k * f * 2..(k + 1) * f * 2]
                .chunks(2)
                .map(|d| [d[0], d[1]])
                .collect();
            let mut features = Vec::with_capacity(t * s);
            let mut thresholds = Vec::with_capacity(t * s);
            for n in split[k * t * s * 3..(k + 1) * t * s * 3].chunks(3) {
                features.push([index(n[0], f, "feature")?, index(n[1], f, "feature")?]);
                thresholds.push(n[2]);
            }
            let per = t * (s + 1) * 2 * POINTS;
            cascades.push(Cascade {
                anchor,
                delta,
                features,
                thresholds,
                leaves: leaf[k * per..(k + 1) * per].to_vec(),
            });
        }
        Ok(Self {
            initial,
            cascades,
            splits: s,
        })
    }

    /// The five points of the face in `rect` (left, top, right, bottom,
    /// inclusive) of `img`, as dlib's `shape_predictor` finds them.
    pub fn points(&self, img: &RgbImage, rect: [i64; 4]) -> [Point; POINTS] {
        self.points_many(&[(img, rect)])[0]
    }

    /// [`points`](Self::points) of many faces at once: each tree's leaves
    /// are read once for all of them (the forests are megabytes; walked face
    /// by face, every leaf is a cache miss). Each face's sums run in the
    /// same order as alone, so its points are the same bits.
    pub fn points_many(&self, views: &[(&RgbImage, [i64; 4])]) -> Vec<[Point; POINTS]> {
        let leaf_len = 2 * POINTS;
        let leaves_per_tree = self.splits + 1;
        let mut shapes: Vec<Vec<f32>> = views.iter().map(|_| self.initial.clone()).collect();
        let mut values: Vec<Vec<f32>> = views.iter().map(|_| Vec::new()).collect();
        for cascade in &self.cascades {
            for ((view, shape), values) in views.iter().zip(&shapes).zip(&mut values) {
                let m = shape_similarity(&self.initial, shape);
                let m = [m[0] as f32, m[1] as f32, m[2] as f32, m[3] as f32];
                let frame = Frame::new(view.0, view.1);
                values.clear();
                values.extend(cascade.anchor.iter().zip(&cascade.delta).map(|(&a, d)| {
                    let x = m[0] * d[0] + m[1] * d[1] + shape[2 * a];
                    let y = m[2] * d[0] + m[3] * d[1] + shape[2 * a + 1];
                    frame.intensity(frame.to_img(x as f64, y as f64))
                }));
            }
            for (tree, leaves) in cascade
                .leaves
                .chunks(leaves_per_tree * leaf_len)
                .enumerate()
            {
                let at = tree * self.splits;
                let features = &cascade.features[at..at + self.splits];
                let thresholds = &cascade.thresholds[at..at + self.splits];
                for (shape, values) in shapes.iter_mut().zip(&values) {
                    let mut i = 0;
                    while i < self.splits {
                        let [a, b] = features[i];
                        i = if values[a] - values[b] > thresholds[i] {
                            2 * i + 1
                        } else {
                            2 * i + 2
                        };
                    }
                    let leaf = &leaves[(i - self.splits) * leaf_len..][..leaf_len];
                    for (s, d) in shape.iter_mut().zip(leaf) {
                        *s += d;
                    }
                }
            }
        }
        views
            .iter()
            .zip(&shapes)
            .map(|(view, shape)| {
                let frame = Frame::new(view.0, view.1);
                std::array::from_fn(|i| frame.to_img(shape[2 * i] as f64, shape[2 * i + 1] as f64))
            })
            .collect()
    }

    /// The points of a 64×64 face as the labeller finds them: on its
    /// [`UPSCALE`]× bicubic upscale (PIL's arithmetic), in the fixed box an
    /// eighth in from each side (the faces are centred crops). Returns the
    /// upscale too, which the chips are cut from.
    pub fn face_points(&self, face: &RgbImage) -> (RgbImage, [Point; POINTS]) {
        let big = super::mesh::upscale_bicubic(face, face.width() * UPSCALE);
        let points = self.points(&big, labeller_box(&big));
        (big, points)
    }
}

/// The labeller's face box on an upscaled face: an eighth in from each side
/// (the faces are centred crops).
fn labeller_box(big: &RgbImage) -> [i64; 4] {
    let n = big.width() as i64;
    [n / 8, n / 8, n - n / 8, n - n / 8]
}

/// A face box in an image: where the shape predictor's box units land and
/// the intensity it reads there.
struct Frame<'a> {
    raw: &'a [u8],
    size: [i64; 2],
    origin: [f64; 2],
    scale: [f64; 2],
}

impl<'a> Frame<'a> {
    fn new(img: &'a RgbImage, rect: [i64; 4]) -> Self {
        let [l, t, r, b] = rect;
        Self {
            raw: img.as_raw(),
            size: [img.width() as i64, img.height() as i64],
            origin: [l as f64, t as f64],
            // dlib's unnormalizing_tform: (0, 0) → top left, (1, 1) → bottom right.
            scale: [(r - l) as f64, (b - t) as f64],
        }
    }

    /// Box units to a pixel, rounded as dlib rounds.
    fn to_img(&self, x: f64, y: f64) -> Point {
        [
            (self.origin[0] + x * self.scale[0] + 0.5).floor() as i64,
            (self.origin[1] + y * self.scale[1] + 0.5).floor() as i64,
        ]
    }

    /// dlib's grey level of a pixel (the mean of R, G and B, truncated);
    /// 0 outside the image.
    fn intensity(&self, p: Point) -> f32 {
        let [w, h] = self.size;
        if p[0] < 0 || p[1] < 0 || p[0] >= w || p[1] >= h {
            return 0.0;
        }
        let at = ((p[1] * w + p[0]) * 3) as usize;
        let px = &self.raw[at..at + 3];
        ((px[0] as u32 + px[1] as u32 + px[2] as u32) / 3) as f32
    }
}

/// The least-squares similarity taking shape `from` to shape `to` (x, y
/// interleaved), as a 2×2 matrix row by row: [a, −b; b, a].
fn shape_similarity(from: &[f32], to: &[f32]) -> [f64; 4] {
    let pts =
        |s: &[f32]| -> Vec<[f64; 2]> { s.chunks(2).map(|p| [p[0] as f64, p[1] as f64]).collect() };
    let (m, _) = similarity(&pts(from), &pts(to));
    m
}

/// The least-squares similarity (rotation, scale, shift) taking `from` to
/// `to`: its matrix row by row and its shift (Umeyama's result, which in 2-D
/// has this closed form).
fn similarity(from: &[[f64; 2]], to: &[[f64; 2]]) -> ([f64; 4], [f64; 2]) {
    let n = from.len() as f64;
    let mean = |p: &[[f64; 2]]| {
        let s = p.iter().fold([0.0, 0.0], |a, q| [a[0] + q[0], a[1] + q[1]]);
        [s[0] / n, s[1] / n]
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f[0] - mf[0], f[1] - mf[1]);
        let (tx, ty) = (t[0] - mt[0], t[1] - mt[1]);
        dot += fx * tx + fy * ty;
        cross += fx * ty - fy * tx;
        norm += fx * fx + fy * fy;
    }
    let (a, b) = if norm > 0.0 {
        (dot / norm, cross / norm)
    } else {
        (1.0, 0.0)
    };
    let m = [a, -b, b, a];
    let shift = [
        mt[0] - (m[0] * mf[0] + m[1] * mf[1]),
        mt[1] - (m[2] * mf[0] + m[3] * mf[1]),
    ];
    (m, shift)
}

/// dlib's mean face for 5-point shapes, in [0, 1] chip units (from
/// `get_face_chip_details`).
const MEAN_FACE: [[f64; 2]; POINTS] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

/// A rectangle of real coordinates, dlib's `drectangle` (inclusive ends:
/// its width is `right − left + 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    l: f64,
    t: f64,
    r: f64,
    b: f64,
}

impl Rect {
    fn area(&self) -> f64 {
        if self.t > self.b || self.l > self.r {
            0.0
        } else {
            (self.r - self.l + 1.0) * (self.b - self.t + 1.0)
        }
    }

    fn centre(&self) -> [f64; 2] {
        [(self.l + self.r) / 2.0, (self.t + self.b) / 2.0]
    }

    /// The bounding box of `points`.
    fn around(points: &[[f64; 2]]) -> Self {
        points.iter().fold(
            Rect {
                l: f64::INFINITY,
                t: f64::INFINITY,
                r: f64::NEG_INFINITY,
                b: f64::NEG_INFINITY,
            },
            |a, p| Rect {
                l: a.l.min(p[0]),
                t: a.t.min(p[1]),
                r: a.r.max(p[0]),
                b: a.b.max(p[1]),
            },
        )
    }

    /// `pyramid_down<2>::rect_down`: a rectangle's place one level down.
    fn down(&self) -> Self {
        let p = |x: f64, y: f64| [x / 2.0 - 1.25, y / 2.0 - 0.75];
        Rect::around(&[p(self.l, self.t), p(self.r, self.b)])
    }

    /// The corners top left, top right, bottom left, turned by `angle`
    /// about the centre.
    fn turned_corners(&self, angle: f64) -> [[f64; 2]; 3] {
        let c = self.centre();
        let (s, k) = angle.sin_cos();
        let turn = |x: f64, y: f64| {
            let (dx, dy) = (x - c[0], y - c[1]);
            [k * dx - s * dy + c[0], s * dx + k * dy + c[1]]
        };
        [
            turn(self.l, self.t),
            turn(self.r, self.t),
            turn(self.l, self.b),
        ]
    }
}

/// One level down dlib's `pyramid_down<2>` for RGB: a 5-tap [1 4 6 4 1]
/// filter across then down, every other row and column, in integers.
fn pyramid_down(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w <= 8 || h <= 8 {
        return RgbImage::new(0, 0);
    }
    let (tw, oh) = ((w - 3) / 2, (h - 3) / 2);
    let stride = tw * 3;
    let mut across = vec![0u32; h * stride];
    for (row, out) in img
        .as_raw()
        .chunks_exact(w * 3)
        .zip(across.chunks_exact_mut(stride))
    {
        for (c, o) in out.chunks_exact_mut(3).enumerate() {
            let p = &row[c * 6..c * 6 + 15];
            for (ch, v) in o.iter_mut().enumerate() {
                let q = |k: usize| p[3 * k + ch] as u32;
                *v = q(0) + 4 * q(1) + 6 * q(2) + 4 * q(3) + q(4);
            }
        }
    }
    let mut out = vec![0u8; oh * stride];
    for (dr, dst) in out.chunks_exact_mut(stride).enumerate() {
        let r = 2 + 2 * dr;
        let row = |k: usize| &across[(r + k - 2) * stride..][..stride];
        let (a, b, c, d, e) = (row(0), row(1), row(2), row(3), row(4));
        for (i, o) in dst.iter_mut().enumerate() {
            *o = ((a[i] + 4 * b[i] + 6 * c[i] + 4 * d[i] + e[i]) / 256) as u8;
        }
    }
    RgbImage::from_raw(tw as u32, oh as u32, out).unwrap_or_default()
}

/// dlib's `interpolate_bilinear` on RGB, truncated to 8 bits; `None`
/// outside the image.
fn bilinear(img: &RgbImage, x: f64, y: f64) -> Option<[u8; 3]> {
    let (left, top) = (x.floor() as i64, y.floor() as i64);
    let (w, h) = (img.width() as i64, img.height() as i64);
    if left < 0 || top < 0 || left + 1 >= w || top + 1 >= h {
        return None;
    }
    let (lr, tb) = (x - left as f64, y - top as f64);
    let raw = img.as_raw();
    let at = |xx: i64, yy: i64| ((yy * w + xx) * 3) as usize;
    // The pixel pairs (left, right) of the two rows.
    let (upper, lower) = (&raw[at(left, top)..][..6], &raw[at(left, top + 1)..][..6]);
    Some(std::array::from_fn(|c| {
        let top_row = (1.0 - lr) * upper[c] as f64 + lr * upper[c + 3] as f64;
        let bottom_row = (1.0 - lr) * lower[c] as f64 + lr * lower[c + 3] as f64;
        ((1.0 - tb) * top_row + tb * bottom_row) as u8
    }))
}

/// The crop of `img` from `(x0, y0)`, `w`×`h` (inside the image).
fn sub_image(img: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> RgbImage {
    let stride = img.width() as usize * 3;
    let (x0, w) = (x0 as usize * 3, w as usize * 3);
    let raw = img.as_raw();
    let mut out = Vec::with_capacity(w * h as usize);
    for y in y0 as usize..(y0 + h) as usize {
        out.extend_from_slice(&raw[y * stride + x0..][..w]);
    }
    RgbImage::from_raw(w as u32 / 3, h, out).unwrap_or_default()
}

/// dlib's `get_face_chip(img, shape, size, padding)`: the face of `points`
/// (found in `img`) turned upright and scaled to `size`×`size`, with
/// `padding` around dlib's mean face (0.2 and 0.3 for the gender network).
pub fn face_chip(img: &RgbImage, points: &[Point; POINTS], size: u32, padding: f64) -> RgbImage {
    // get_face_chip_details: the similarity from chip to image.
    let from: Vec<[f64; 2]> = MEAN_FACE
        .iter()
        .map(|p| {
            [
                (padding + p[0]) / (2.0 * padding + 1.0) * size as f64,
                (padding + p[1]) / (2.0 * padding + 1.0) * size as f64,
            ]
        })
        .collect();
    let to: Vec<[f64; 2]> = points.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    let (m, shift) = similarity(&from, &to);
    let angle = m[2].atan2(m[0]);
    let scale = (m[0] * m[0] + m[2] * m[2]).sqrt();
    let half = size as f64 / 2.0;
    let centre = [
        m[0] * half + m[1] * half + shift[0],
        m[2] * half + m[3] * half + shift[1],
    ];
    // dlib's centered_drect: inclusive ends, so a side of `s` spans s − 1.
    let half_side = (size as f64 * scale - 1.0) / 2.0;
    let rect = Rect {
        l: centre[0] - half_side,
        t: centre[1] - half_side,
        r: centre[0] + half_side,
        b: centre[1] + half_side,
    };
    let chip_area = (size * size) as f64;
    // extract_image_chips: how deep the pyramid goes, and the region it covers.
    let (mut depth, mut grow) = (0usize, 2.0f64);
    let mut r = rect.down();
    while r.area() > chip_area {
        r = r.down();
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }
    let c = rect.centre();
    let (s, k) = angle.sin_cos();
    let turn = |x: f64, y: f64| {
        let (dx, dy) = (x - c[0], y - c[1]);
        [k * dx - s * dy + c[0], s * dx + k * dy + c[1]]
    };
    let turned = Rect::around(&[
        turn(rect.l, rect.t),
        turn(rect.r, rect.t),
        turn(rect.l, rect.b),
        turn(rect.r, rect.b),
    ]);
    let (w, h) = (img.width() as f64, img.height() as f64);
    let (bl, bt, br, bb) = (
        (turned.l - grow).max(0.0).round() as i64,
        (turned.t - grow).max(0.0).round() as i64,
        (turned.r + grow).min(w - 1.0).round() as i64,
        (turned.b + grow).min(h - 1.0).round() as i64,
    );
    let out = RgbImage::new(size, size);
    if br < bl || bb < bt {
        return out;
    }
    let region = sub_image(
        img,
        bl as u32,
        bt as u32,
        (br - bl + 1) as u32,
        (bb - bt + 1) as u32,
    );
    // The level the chip is sampled from.
    let mut r = Rect {
        l: rect.l - bl as f64,
        t: rect.t - bt as f64,
        r: rect.r - bl as f64,
        b: rect.b - bt as f64,
    };
    let mut level = 0;
    while r.down().area() > chip_area {
        level += 1;
        r = r.down();
    }
    let mut source = region;
    for _ in 0..level.min(depth) {
        source = pyramid_down(&source);
    }
    let [a, b, cc] = r.turned_corners(angle);
    let last = (size - 1) as f64;
    // The affine map taking chip (0, 0), (last, 0), (0, last) to a, b, cc.
    let (mx, my) = (
        [(b[0] - a[0]) / last, (cc[0] - a[0]) / last],
        [(b[1] - a[1]) / last, (cc[1] - a[1]) / last],
    );
    let mut out = out;
    for (x, y, p) in out.enumerate_pixels_mut() {
        let (xf, yf) = (x as f64, y as f64);
        let sx = mx[0] * xf + mx[1] * yf + a[0];
        let sy = my[0] * xf + my[1] * yf + a[1];
        if let Some(v) = bilinear(&source, sx, sy) {
            p.0 = v;
        }
    }
    out
}

/// The labeller's skin tone of a 64×64 face from its points (upscaled
/// units): the mean CIE L* of two 5×5 patches on the cheeks, below and
/// outside each eye, or `None` when the eyes are too close to place them or
/// both patches fall off the frame.
pub fn skin_tone(face: &RgbImage, points: &[Point; POINTS]) -> Option<f32> {
    // As label.py computes it, in float32: points in face pixels.
    let p: Vec<[f32; 2]> = points
        .iter()
        .map(|q| [q[0] as f32 / UPSCALE as f32, q[1] as f32 / UPSCALE as f32])
        .collect();
    let mid2 = |a: [f32; 2], b: [f32; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let (e1, e2, nose) = (mid2(p[0], p[1]), mid2(p[2], p[3]), p[4]);
    let iod = ((e1[0] - e2[0]).powi(2) + (e1[1] - e2[1]).powi(2)).sqrt();
    if iod <= 4.0 {
        return None;
    }
    let mid = mid2(e1, e2);
    let (w, h) = (face.width() as i64, face.height() as i64);
    let (mut sum, mut n) = (0f64, 0usize);
    for e in [e1, e2] {
        let cx = e[0] + (nose[0] - mid[0]) * 0.9 + (e[0] - mid[0]) * 0.35;
        let cy = e[1] + (nose[1] - mid[1]) * 0.9 + (e[1] - mid[1]) * 0.35;
        let (cx, cy) = (cx.round_ties_even() as i64, cy.round_ties_even() as i64);
        if (2..w - 2).contains(&cx) && (2..h - 2).contains(&cy) {
            for y in cy - 2..=cy + 2 {
                for x in cx - 2..=cx + 2 {
                    sum += super::pixels::lightness(face.get_pixel(x as u32, y as u32).0);
                    n += 1;
                }
            }
        }
    }
    (n > 0).then(|| (sum / n as f64) as f32)
}

/// The paddings of the labeller's gender chips.
pub const CHIP_PADDINGS: [f64; 2] = [0.2, 0.3];

/// What the labeller takes from one face's landmarks.
pub struct Aligned {
    /// The gender network's four 32×32 chips: the frame at each of
    /// [`CHIP_PADDINGS`], then its mirror's (found on the mirror).
    pub chips: Vec<RgbImage>,
    /// The frame's skin tone ([`skin_tone`]).
    pub skin_tone: Option<f32>,
}

impl LandmarkJudge {
    /// The labeller's alignment of a 64×64 face: points on the frame and,
    /// separately, on its mirror; chips from each; skin from the frame's.
    pub fn align(&self, face: &RgbImage) -> Aligned {
        self.align_many(&[face]).remove(0)
    }

    /// [`align`](Self::align) of many faces, their points found together
    /// ([`points_many`](Self::points_many)); each face's result is the
    /// same bits as alone.
    pub fn align_many(&self, faces: &[&RgbImage]) -> Vec<Aligned> {
        let bigs: Vec<[RgbImage; 2]> = faces
            .iter()
            .map(|f| {
                let (big, mirror) = super::mesh::upscale_bicubic_and_mirror(f, f.width() * UPSCALE);
                [big, mirror]
            })
            .collect();
        let views: Vec<(&RgbImage, [i64; 4])> = bigs
            .iter()
            .flatten()
            .map(|big| (big, labeller_box(big)))
            .collect();
        let points = self.points_many(&views);
        faces
            .iter()
            .zip(bigs.iter().zip(points.chunks(2)))
            .map(|(face, (bigs, points))| Aligned {
                chips: bigs
                    .iter()
                    .zip(points)
                    .flat_map(|(big, p)| {
                        CHIP_PADDINGS
                            .iter()
                            .map(move |&pad| face_chip(big, p, super::gender::CHIP as u32, pad))
                    })
                    .collect(),
                skin_tone: skin_tone(face, &points[0]),
            })
            .collect()
    }
}
