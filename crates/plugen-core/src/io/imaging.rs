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
