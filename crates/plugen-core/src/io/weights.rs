//! Named weight files (safetensors): checked loading and atomic saving.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::TensorView;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};

/// Largest weight file plugen reads (2 GiB).
pub const MAX_WEIGHT_FILE_BYTES: u64 = 2 << 30;

/// A weight file's bytes and their SHA-256, read once.
pub struct WeightFile {
    /// Tensors by name, as f32 on the requested device.
    pub tensors: HashMap<String, Tensor>,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// The header's `__metadata__` strings (empty when it has none).
    pub metadata: HashMap<String, String>,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Converts a safetensors view of a float type to f32 values, refusing other types.
pub fn view_to_f32(path: &Path, name: &str, view: &TensorView) -> Result<Vec<f32>> {
    use safetensors::Dtype;
    let d = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        other => {
            return Err(Error::format(
                path,
                format!("tensor '{name}' has dtype {other:?}; expected a float type"),
            ));
        }
    })
}

fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal
            let v = f as f32 / 1024.0 * 2f32.powi(-14);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Loads every tensor of a safetensors file as f32 on `device`, refusing
/// non-float tensors and non-finite values, and hashing the file.
pub fn load(path: &Path, device: &Device) -> Result<WeightFile> {
    let bytes = fsutil::read_limited(path, MAX_WEIGHT_FILE_BYTES)?;
    let sha256 = sha256_hex(&bytes);
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    let metadata = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?
        .1
        .metadata()
        .clone()
        .unwrap_or_default();
    let mut tensors = HashMap::new();
    for (name, view) in st.iter() {
        let data = view_to_f32(path, name, &view)?;
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::format(
                path,
                format!("tensor '{name}' has a non-finite value at element {i}"),
            ));
        }
        let t = Tensor::from_vec(data, view.shape(), &Device::Cpu)?.to_device(device)?;
        tensors.insert(name.to_string(), t);
    }
    Ok(WeightFile {
        tensors,
        sha256,
        metadata,
    })
}

/// The tensors of a training run's variables, by name (to save them).
pub fn varmap_tensors(varmap: &candle_nn::VarMap) -> Result<HashMap<String, Tensor>> {
    Ok(varmap
        .data()
        .lock()
        .map_err(|_| Error::invalid("internal error: variable map lock poisoned"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect())
}

/// Saves f32 tensors to a safetensors file atomically; returns the file's SHA-256.
pub fn save(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    overwrite: Overwrite,
) -> Result<String> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| {
            Ok((
                k.clone(),
                t.to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .contiguous()?,
            ))
        })
        .collect::<Result<_>>()?;
    let bytes = safetensors::tensor::serialize(cpu.iter().map(|(k, t)| (k.as_str(), t)), None)
        .map_err(|e| Error::invalid(format!("cannot encode {}: {e}", path.display())))?;
    fsutil::write_atomic(path, &bytes, overwrite)?;
    Ok(sha256_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0000), 0.0);
        assert!(half_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn save_then_load_round_trips_and_hashes() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let p = dir.path().join("w.safetensors");
        let mut m = HashMap::new();
        m.insert(
            "a.weight".to_string(),
            Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?,
        );
        let sha = save(&p, &m, Overwrite::Never)?;
        let back = load(&p, &Device::Cpu)?;
        assert_eq!(back.sha256, sha);
        let a = back
            .tensors
            .get("a.weight")
            .ok_or_else(|| Error::invalid("missing"))?;
        assert_eq!(a.to_vec2::<f32>()?, vec![vec![1., 2.], vec![3., 4.]]);
        Ok(())
    }
}
