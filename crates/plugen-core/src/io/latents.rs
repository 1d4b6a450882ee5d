//! Latent vectors on disk: `.npy` (f32/f64, shape (D,) or (N, D)),
//! `.safetensors` (a tensor named `latents`, or the only tensor), or a plugen
//! sidecar `.json`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::{npy, sidecar};
use crate::rng::SeededRng;

/// Largest latent file plugen reads (1 GiB): far beyond any real use, far below harm.
pub const MAX_LATENT_FILE_BYTES: u64 = 1 << 30;

/// A batch of latent vectors, row-major (count × dim).
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    /// Numbers per latent.
    pub dim: usize,
    /// `count() * dim` values.
    pub data: Vec<f32>,
}

impl Latents {
    /// Wraps row-major values; `data.len()` must be a multiple of `dim`.
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::invalid(format!(
                "{} values do not split into latents of {dim}",
                data.len()
            )));
        }
        Ok(Self { dim, data })
    }

    /// How many latents.
    pub fn count(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// Latent `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `idx` as a new batch.
    pub fn select(&self, idx: &[usize]) -> Self {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Self {
            dim: self.dim,
            data,
        }
    }
}

/// Latent `index` of a seeded run without a plugin (`plugen sample --no-plugin
/// --seed SEED`): `dim` draws from N(0, T²) on the run's stream for that image.
pub fn seeded_row(seed: u64, index: usize, dim: usize, temperature: f32) -> Vec<f32> {
    let mut rng = SeededRng::new(seed, index as u64);
    let mut row = rng.normal_vec(dim);
    for v in &mut row {
        *v *= temperature;
    }
    row
}

/// The first `count` latents of `plugen sample --no-plugin --seed SEED`
/// (temperature 1): training data that regenerates from a seed instead of a file.
pub fn seeded(seed: u64, count: usize, dim: usize) -> Latents {
    let mut data = Vec::with_capacity(count * dim);
    for i in 0..count {
        data.extend(seeded_row(seed, i, dim, 1.0));
    }
    Latents { dim, data }
}

/// Reads latents from `path`, checking that each has `dim` finite numbers.
pub fn read(path: &Path, dim: usize) -> Result<Latents> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let (shape, data) = match ext.as_str() {
        "npy" => {
            let bytes = fsutil::read_limited(path, MAX_LATENT_FILE_BYTES)?;
            let a = npy::parse(path, &bytes)?;
            (a.shape, a.data)
        }
        "safetensors" => read_safetensors(path)?,
        "json" => {
            let s = sidecar::read(path)?;
            (vec![s.latent.len()], s.latent)
        }
        "jsonl" => read_manifest(path, dim)?,
        _ => {
            return Err(Error::format(
                path,
                "unknown latent file type: use .npy, .safetensors, a plugen sidecar .json or a run's manifest.jsonl",
            ));
        }
    };
    let latents = match shape.as_slice() {
        [d] if *d == dim => Latents { dim, data },
        [n, d] if *d == dim && *n > 0 => Latents { dim, data },
        _ => {
            return Err(Error::format(
                path,
                format!("latents have shape {shape:?}; expected ({dim},) or (N, {dim})"),
            ));
        }
    };
    if let Some(i) = latents.data.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            path,
            format!(
                "latent {} contains a non-finite value ({})",
                i / dim,
                latents.data[i]
            ),
        ));
    }
    Ok(latents)
}

/// A run's `manifest.jsonl`: one sidecar per line, in image order.
fn read_manifest(path: &Path, dim: usize) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = fsutil::read_limited(path, MAX_LATENT_FILE_BYTES)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::format(path, "manifest is not UTF-8 text"))?;
    let mut data = Vec::new();
    let mut rows = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let s = sidecar::parse(path, line.as_bytes()).map_err(|e| {
            let why = match e {
                Error::Format { message, .. } => message,
                other => other.to_string(),
            };
            Error::format(path, format!("line {}: {why}", i + 1))
        })?;
        if s.latent.len() != dim {
            return Err(Error::format(
                path,
                format!(
                    "line {}: latent has {} numbers; expected {dim}",
                    i + 1,
                    s.latent.len()
                ),
            ));
        }
        data.extend(s.latent);
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::format(path, "manifest has no faces"));
    }
    Ok((vec![rows, dim], data))
}

fn read_safetensors(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = fsutil::read_limited(path, MAX_LATENT_FILE_BYTES)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    let names = st.names();
    let name = ["latents", "latent", "z"]
        .into_iter()
        .find(|n| names.contains(n))
        .or(if names.len() == 1 {
            Some(names[0])
        } else {
            None
        })
        .ok_or_else(|| Error::format(path, format!("no tensor named 'latents' among {names:?}")))?;
    let view = st
        .tensor(name)
        .map_err(|e| Error::format(path, format!("tensor '{name}': {e}")))?;
    let data = crate::io::weights::view_to_f32(path, name, &view)?;
    Ok((view.shape().to_vec(), data))
}

/// Writes latents as a (N, dim) float32 `.npy`, atomically.
pub fn write_npy(path: &Path, latents: &Latents, overwrite: Overwrite) -> Result<()> {
    let bytes = npy::encode(&[latents.count(), latents.dim], &latents.data);
    fsutil::write_atomic(path, &bytes, overwrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_manifest_reads_as_rows_and_bad_lines_are_named() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let line = |z: Vec<f32>| {
            serde_json::to_string(&sidecar::Sidecar::new(z, "abc")).unwrap_or_default()
        };
        let path = dir.path().join("manifest.jsonl");
        let text = format!("{}\n{}\n", line(vec![1.0, 2.0]), line(vec![3.0, 4.0]));
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        let z = read(&path, 2)?;
        assert_eq!((z.count(), z.row(1)), (2, &[3.0f32, 4.0][..]));
        let bad = format!("{}\n{{\"format\": 1}}\n", line(vec![1.0, 2.0]));
        std::fs::write(&path, bad).map_err(|e| Error::io(&path, e))?;
        let e = read(&path, 2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("manifest.jsonl: line 2: not a plugen sidecar"),
            "{e}"
        );
        assert_eq!(e.matches("manifest.jsonl").count(), 1, "{e}");
        let e = read(&path, 3)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("line 1: latent has 2 numbers; expected 3"),
            "{e}"
        );
        Ok(())
    }
}
