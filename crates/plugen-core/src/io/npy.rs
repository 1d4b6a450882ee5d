//! NumPy `.npy` arrays of floats: a small, defensive reader and a writer.
//!
//! The reader checks the header's claimed size against the file's real size
//! before it allocates anything, so a header claiming 10^12 elements is an
//! error, not an out-of-memory abort.

use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// A float array read from a `.npy` file, converted to f32, C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in C (row-major) order.
    pub data: Vec<f32>,
}

/// Parses `.npy` bytes read from `path` (used only in error messages).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<NpyArray> {
    let bad = |m: String| Error::format(path, m);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("not a .npy file (missing \\x93NUMPY magic)".into()));
    }
    let major = bytes[6];
    let (header_len, header_start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated .npy header".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated .npy header".into()))?;
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| bad(".npy header is not text".into()))?;
    let descr = dict_value(header, "descr")
        .and_then(|v| v.strip_prefix('\'').and_then(|v| v.split('\'').next()))
        .ok_or_else(|| bad(format!(".npy header has no 'descr': {header:?}")))?;
    let fortran = match dict_value(header, "fortran_order") {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => return Err(bad(".npy header has no 'fortran_order'".into())),
    };
    let shape = dict_value(header, "shape")
        .and_then(parse_shape)
        .ok_or_else(|| bad(".npy header has no readable 'shape'".into()))?;
    let (item, big_endian) = match descr {
        "<f4" => (4, false),
        "<f8" => (8, false),
        ">f4" => (4, true),
        ">f8" => (8, true),
        other => {
            return Err(bad(format!(
                "array dtype {other:?} is not float32 or float64"
            )));
        }
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} is impossibly large")))?;
    let payload = &bytes[data_start..];
    let expected = count
        .checked_mul(item)
        .ok_or_else(|| bad(format!("shape {shape:?} is impossibly large")))?;
    if payload.len() < expected {
        return Err(bad(format!(
            "truncated: shape {shape:?} needs {expected} data bytes, the file has {}",
            payload.len()
        )));
    }
    if payload.len() > expected {
        return Err(bad(format!(
            "{} unexpected bytes after the {shape:?} array",
            payload.len() - expected
        )));
    }
    let mut data: Vec<f32> = payload
        .chunks_exact(item)
        .map(|c| match (item, big_endian) {
            (4, false) => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            (4, true) => f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            (_, false) => {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }
            (_, true) => {
                f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            }
        })
        .collect();
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    Ok(NpyArray { shape, data })
}

/// The text after `'key':` in a .npy header dict, trimmed at the start.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let at = header.find(&pat)? + pat.len();
    Some(header[at..].trim_start())
}

fn parse_shape(v: &str) -> Option<Vec<usize>> {
    let inner = v.strip_prefix('(')?.split(')').next()?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().ok())
        .collect()
}

fn fortran_to_c(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let n = data.len();
    let mut out = vec![0f32; n];
    // column-major strides
    let mut fstrides = vec![1usize; shape.len()];
    for i in 1..shape.len() {
        fstrides[i] = fstrides[i - 1] * shape[i - 1];
    }
    let mut idx = vec![0usize; shape.len()];
    for o in out.iter_mut() {
        let src: usize = idx.iter().zip(&fstrides).map(|(i, s)| i * s).sum();
        *o = data[src];
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Encodes an f32 array of `shape` as `.npy` (version 1.0, little-endian, C order).
pub fn encode(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() -> Result<()> {
        let data: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        let bytes = encode(&[2, 3], &data);
        assert_eq!((bytes.len() - 24) % 64, 0); // header padded to 64; then 24 data bytes
        let a = parse(Path::new("x.npy"), &bytes)?;
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, data);
        let b = parse(Path::new("y.npy"), &encode(&[4], &[1., 2., 3., 4.]))?;
        assert_eq!(b.shape, vec![4]);
        Ok(())
    }

    #[test]
    fn refuses_lies_about_size() {
        let mut bytes = encode(&[2, 3], &[0.; 6]);
        bytes.truncate(bytes.len() - 4);
        let e = parse(Path::new("t.npy"), &bytes).unwrap_err().to_string();
        assert!(e.contains("t.npy") && e.contains("truncated"), "{e}");
        let huge = encode(&[1000000, 1000000], &[]);
        let e = parse(Path::new("h.npy"), &huge).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let big = encode(&[usize::MAX, 4], &[]);
        assert!(parse(Path::new("b.npy"), &big).is_err());
    }

    #[test]
    fn reads_fortran_order() -> Result<()> {
        let mut bytes = encode(&[2, 3], &[1., 4., 2., 5., 3., 6.]);
        let at = bytes
            .windows(5)
            .position(|w| w == b"False")
            .ok_or_else(|| Error::invalid("no False in header"))?;
        bytes[at..at + 5].copy_from_slice(b"True ");
        let a = parse(Path::new("f.npy"), &bytes)?;
        assert_eq!(a.data, vec![1., 2., 3., 4., 5., 6.]);
        Ok(())
    }
}
