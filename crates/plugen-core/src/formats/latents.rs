//! Latent vectors on disk: `.npy` (f32/f64, shape (D,) or (N, D)),
//! `.safetensors` (a tensor named `latents`, or the only tensor), or a plugen
//! sidecar `.json`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::{npy, sidecar};
use crate::fsutil::{self, Overwrite};

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
        _ => {
            return Err(Error::format(
                path,
                "unknown latent file type: use .npy, .safetensors or a plugen sidecar .json",
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
    let data = crate::formats::weights::view_to_f32(path, name, &view)?;
    Ok((view.shape().to_vec(), data))
}

/// Writes latents as a (N, dim) float32 `.npy`, atomically.
pub fn write_npy(path: &Path, latents: &Latents, overwrite: Overwrite) -> Result<()> {
    let bytes = npy::encode(&[latents.count(), latents.dim], &latents.data);
    fsutil::write_atomic(path, &bytes, overwrite)
}
