//! Pixel measures, as `tools/labels/label.py` takes them: the background's
//! lightness, the mean CIE L* (D65) of the frame's outer 4-pixel ring.

use image::RgbImage;

/// Width of the ring the background is measured on.
const RING: u32 = 4;

/// CIE L* of an sRGB pixel, 0 (black) to 100 (white).
pub fn lightness(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c > 0.04045 {
            ((c + 0.055) / 1.055).powf(2.4)
        } else {
            c / 12.92
        }
    };
    let y = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
    let f = if y > 0.008856 {
        y.cbrt()
    } else {
        7.787 * y + 16.0 / 116.0
    };
    116.0 * f - 16.0
}

/// Mean lightness of the outer ring of `face` (every pixel when it is too
/// small to have an inside).
pub fn background_lightness(face: &RgbImage) -> f32 {
    let (w, h) = face.dimensions();
    let inside = |x: u32, y: u32| {
        w > 2 * RING && h > 2 * RING && x >= RING && x < w - RING && y >= RING && y < h - RING
    };
    let (mut sum, mut n) = (0f64, 0usize);
    for (x, y, p) in face.enumerate_pixels() {
        if !inside(x, y) {
            sum += lightness(p.0);
            n += 1;
        }
    }
    (sum / n.max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightness_of_known_colours() {
        assert!((lightness([0, 0, 0]) - 0.0).abs() < 1e-9);
        assert!((lightness([255, 255, 255]) - 100.0).abs() < 1e-3);
        // sRGB mid grey (119, 119, 119) is L* ≈ 50.
        assert!((lightness([119, 119, 119]) - 50.0).abs() < 0.2);
    }

    #[test]
    fn only_the_ring_counts() {
        let mut face = RgbImage::from_pixel(64, 64, image::Rgb([255, 255, 255]));
        for y in 4..60 {
            for x in 4..60 {
                face.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        assert!((background_lightness(&face) - 100.0).abs() < 1e-3);
    }
}
