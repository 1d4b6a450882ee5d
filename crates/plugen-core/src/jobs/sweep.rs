//! Attribute sweeps: one face with an attribute moved step by step from one
//! value to another, as a PNG grid (one row per attribute) or an animated GIF
//! (one frame per step, going there and back) — the way people share edits.

use std::path::Path;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbImage, RgbaImage};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::imaging;
use crate::io::latents::Latents;
use crate::jobs::loaded::Model;
use crate::model::attributes::{Attribute, AttributeKind};

/// Most steps in one sweep.
pub const MAX_STEPS: usize = 64;
/// Pixels between the faces of a grid.
const GAP: u32 = 2;
/// Time each GIF frame is shown.
const FRAME_MS: u32 = 120;

/// What to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// Attribute indices, one row each.
    pub attributes: Vec<usize>,
    /// First value (user units); None: the attribute's own (see [`sweep_range`]).
    pub from: Option<f32>,
    /// Last value (user units); None: the attribute's own.
    pub to: Option<f32>,
    /// Number of values from `from` to `to`, both included (2..=[`MAX_STEPS`]).
    pub steps: usize,
}

/// The default sweep of an attribute: −2 to +2 for a binary one (±1 is the
/// labelled classes, ±2 an exaggeration), the labels' range for a continuous one.
pub fn sweep_range(a: &Attribute) -> (f32, f32) {
    match a.kind {
        AttributeKind::Binary => (-2.0, 2.0),
        AttributeKind::Continuous => (a.label_min, a.label_max),
    }
}

impl SweepSpec {
    /// The `steps` evenly spaced values of attribute `a`, both ends included.
    pub fn values(&self, a: &Attribute) -> Vec<f32> {
        let (lo, hi) = sweep_range(a);
        let (from, to) = (self.from.unwrap_or(lo), self.to.unwrap_or(hi));
        let n = self.steps.max(2);
        (0..n)
            .map(|i| from + (to - from) * i as f32 / (n - 1) as f32)
            .collect()
    }
}

/// The output kind, from a file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepFormat {
    /// A grid: one row per attribute, one column per value.
    Png,
    /// An animation: one frame per value (each frame a column of the grid), looping there and back.
    Gif,
}

impl SweepFormat {
    /// `.png` or `.gif` (any case); anything else is refused, naming the file.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("gif") => Ok(Self::Gif),
            _ => Err(Error::format(
                path,
                "a sweep is written as .png (a grid) or .gif (an animation)",
            )),
        }
    }
}

/// Renders the sweep of `latent`: `rows[a][i]` is attribute `spec.attributes[a]`
/// set to value `i` (the other coordinates of the face's flow code unchanged).
pub fn render(model: &Model, latent: &[f32], spec: &SweepSpec) -> Result<Vec<Vec<RgbImage>>> {
    let plugin = model.require_plugin()?;
    if !(2..=MAX_STEPS).contains(&spec.steps) {
        return Err(Error::invalid(format!(
            "a sweep has 2..={MAX_STEPS} steps, not {}",
            spec.steps
        )));
    }
    if spec.attributes.is_empty() {
        return Err(Error::invalid("a sweep needs at least one attribute"));
    }
    let attributes = plugin.attributes();
    let code = plugin
        .encode(&Latents::new(latent.len(), latent.to_vec())?)?
        .data;
    let mut codes = Vec::with_capacity(spec.attributes.len() * spec.steps * code.len());
    for &k in &spec.attributes {
        let a = attributes
            .get(k)
            .ok_or_else(|| Error::invalid(format!("no attribute #{k}")))?;
        for v in spec.values(a) {
            let mut c = code.clone();
            c[k] = a.checked_flow_value(v)?;
            codes.extend(c);
        }
    }
    let latents = plugin.decode(&Latents::new(code.len(), codes)?)?;
    // A face at a time, so that every cell equals the same edit rendered alone.
    let mut faces = Vec::with_capacity(latents.count());
    for i in 0..latents.count() {
        let row = Latents::new(latents.dim, latents.row(i).to_vec())?;
        faces.extend(model.render(&row)?);
    }
    Ok(faces.chunks(spec.steps).map(<[RgbImage]>::to_vec).collect())
}

/// Lays faces out in a grid (rows × columns) on a white background, each scaled by `scale`.
pub fn grid(rows: &[Vec<RgbImage>], scale: u32) -> Result<RgbImage> {
    let first = rows
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| Error::invalid("nothing to lay out"))?;
    let (w, h) = (first.width() * scale, first.height() * scale);
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let n = rows.len() as u32;
    let mut out = RgbImage::from_pixel(
        cols * w + (cols + 1) * GAP,
        n * h + (n + 1) * GAP,
        image::Rgb([255, 255, 255]),
    );
    for (r, row) in rows.iter().enumerate() {
        for (c, face) in row.iter().enumerate() {
            let x = GAP + c as u32 * (w + GAP);
            let y = GAP + r as u32 * (h + GAP);
            image::imageops::replace(&mut out, &imaging::upscale(face, scale), x as i64, y as i64);
        }
    }
    Ok(out)
}

/// Encodes an animated GIF: frame `i` is column `i` of the grid (every swept
/// attribute at value `i`, stacked), played forwards then backwards, looping.
pub fn encode_gif(rows: &[Vec<RgbImage>], scale: u32) -> Result<Vec<u8>> {
    let steps = rows.first().map(Vec::len).unwrap_or(0);
    if steps == 0 || rows.iter().any(|r| r.len() != steps) {
        return Err(Error::invalid(
            "a sweep animation needs rows of equal length",
        ));
    }
    let column = |i: usize| -> Result<RgbaImage> {
        let col: Vec<Vec<RgbImage>> = rows.iter().map(|r| vec![r[i].clone()]).collect();
        Ok(image::DynamicImage::ImageRgb8(grid(&col, scale)?).to_rgba8())
    };
    let order: Vec<usize> = (0..steps)
        .chain((1..steps.saturating_sub(1)).rev())
        .collect();
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| Error::invalid(format!("GIF encoding failed: {e}")))?;
        for i in order {
            let frame =
                Frame::from_parts(column(i)?, 0, 0, Delay::from_numer_denom_ms(FRAME_MS, 1));
            encoder
                .encode_frame(frame)
                .map_err(|e| Error::invalid(format!("GIF encoding failed: {e}")))?;
        }
    }
    Ok(bytes)
}

/// Writes a rendered sweep to `path` as a PNG grid or a GIF (by extension), atomically.
pub fn save(path: &Path, rows: &[Vec<RgbImage>], scale: u32, overwrite: Overwrite) -> Result<()> {
    if !(1..=imaging::MAX_SCALE).contains(&scale) {
        return Err(Error::invalid(format!(
            "--scale must be 1..={}, got {scale}",
            imaging::MAX_SCALE
        )));
    }
    let bytes = match SweepFormat::of(path)? {
        SweepFormat::Png => imaging::encode_png(&grid(rows, scale)?)?,
        SweepFormat::Gif => encode_gif(rows, scale)?,
    };
    fsutil::write_atomic(path, &bytes, overwrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(v: u8) -> RgbImage {
        RgbImage::from_pixel(4, 4, image::Rgb([v, 0, 0]))
    }

    #[test]
    fn values_span_both_ends() {
        let mut a = Attribute {
            name: "smile".into(),
            display_name: String::new(),
            description: String::new(),
            kind: AttributeKind::Binary,
            ends: None,
            labeller: String::new(),
            label_min: 0.0,
            label_max: 1.0,
            positive_rate: 0.5,
            prior_mean: 0.0,
            prior_std: 1.0,
            labelled: 10,
        };
        let mut s = SweepSpec {
            attributes: vec![0],
            from: None,
            to: None,
            steps: 5,
        };
        assert_eq!(s.values(&a), vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        a.kind = AttributeKind::Continuous;
        (a.label_min, a.label_max) = (10.0, 30.0);
        assert_eq!(s.values(&a), vec![10.0, 15.0, 20.0, 25.0, 30.0]);
        s.to = Some(50.0);
        assert_eq!(s.values(&a)[4], 50.0);
    }

    #[test]
    fn grid_places_faces_by_row_and_column() -> Result<()> {
        let rows = vec![vec![face(10), face(20)], vec![face(30), face(40)]];
        let g = grid(&rows, 2)?;
        assert_eq!(g.dimensions(), (2 * 8 + 3 * GAP, 2 * 8 + 3 * GAP));
        // Row 1, column 0 starts at (GAP, GAP + 8 + GAP).
        assert_eq!(g.get_pixel(GAP, 2 * GAP + 8)[0], 30);
        assert_eq!(g.get_pixel(2 * GAP + 8 + 7, GAP + 7)[0], 20);
        assert_eq!(g.get_pixel(0, 0)[0], 255);
        Ok(())
    }

    #[test]
    fn gif_plays_there_and_back() -> Result<()> {
        use image::AnimationDecoder;
        let rows = vec![vec![face(0), face(120), face(240)]];
        let bytes = encode_gif(&rows, 1)?;
        let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
            .map_err(|e| Error::invalid(e.to_string()))?;
        let frames = decoder
            .into_frames()
            .collect_frames()
            .map_err(|e| Error::invalid(e.to_string()))?;
        // 0, 1, 2, then back through 1 (the loop returns to 0).
        let reds: Vec<u8> = frames
            .iter()
            .map(|f| f.buffer().get_pixel(GAP + 1, GAP + 1)[0])
            .collect();
        assert_eq!(reds.len(), 4);
        assert!(
            reds[0] < 10
                && reds[1].abs_diff(120) < 10
                && reds[2] > 230
                && reds[3].abs_diff(120) < 10
        );
        Ok(())
    }

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(
            SweepFormat::of(Path::new("a.PNG")).ok(),
            Some(SweepFormat::Png)
        );
        assert_eq!(
            SweepFormat::of(Path::new("a.gif")).ok(),
            Some(SweepFormat::Gif)
        );
        let e = SweepFormat::of(Path::new("a.jpg"))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("a.jpg") && e.contains(".gif")));
    }
}
