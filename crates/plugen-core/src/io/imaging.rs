//! Writing images: PNG encoding (optionally scaled up) and atomic saving.

use std::path::Path;

use image::{ImageFormat, RgbImage, imageops::FilterType};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};

/// Largest allowed upscaling factor for saved images.
pub const MAX_SCALE: u32 = 16;

/// Scales `img` up by an integer factor (nearest neighbour: crisp pixels).
pub fn upscale(img: &RgbImage, scale: u32) -> RgbImage {
    if scale <= 1 {
        return img.clone();
    }
    image::imageops::resize(
        img,
        img.width() * scale,
        img.height() * scale,
        FilterType::Nearest,
    )
}

/// Encodes an image as PNG bytes.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| Error::invalid(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}

/// Saves `img` as PNG at `path`, scaled by `scale`, atomically.
pub fn save_png(path: &Path, img: &RgbImage, scale: u32, overwrite: Overwrite) -> Result<()> {
    if !(1..=MAX_SCALE).contains(&scale) {
        return Err(Error::invalid(format!(
            "--scale must be 1..={MAX_SCALE}, got {scale}"
        )));
    }
    let bytes = encode_png(&upscale(img, scale))?;
    fsutil::write_atomic(path, &bytes, overwrite)
}

/// Draws `n` in a 3×5 pixel font, doubled, with its top-left corner at (x, y).
pub(crate) fn draw_number(img: &mut image::RgbImage, n: usize, x: u32, y: u32) {
    const DIGITS: [[u8; 5]; 10] = [
        [0b111, 0b101, 0b101, 0b101, 0b111],
        [0b010, 0b110, 0b010, 0b010, 0b111],
        [0b111, 0b001, 0b111, 0b100, 0b111],
        [0b111, 0b001, 0b111, 0b001, 0b111],
        [0b101, 0b101, 0b111, 0b001, 0b001],
        [0b111, 0b100, 0b111, 0b001, 0b111],
        [0b111, 0b100, 0b111, 0b101, 0b111],
        [0b111, 0b001, 0b001, 0b001, 0b001],
        [0b111, 0b101, 0b111, 0b101, 0b111],
        [0b111, 0b101, 0b111, 0b001, 0b111],
    ];
    for (i, ch) in n.to_string().bytes().enumerate() {
        let glyph = DIGITS[usize::from(ch - b'0')];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3u32 {
                if bits >> (2 - col) & 1 == 1 {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let (px, py) = (x + i as u32 * 8 + col * 2 + dx, y + row as u32 * 2 + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, image::Rgb([0, 0, 0]));
                        }
                    }
                }
            }
        }
    }
}
