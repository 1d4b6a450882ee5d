//! Importing a DCGAN-style PyTorch checkpoint into a plugen model folder.
//!
//! candle's pickle reader interprets the checkpoint without running any code
//! from it. The state dict is expected to be a `Sequential` of
//! ConvTranspose2d (4×4, no bias) layers with a BatchNorm2d after each but the
//! last, named `<prefix>.<index>.<param>` (as `main.0.weight`, `main.1.running_mean`).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::io::fsutil::Overwrite;
use crate::io::weights;
use crate::model::bundle::{self, Bundle, GeneratorManifest};
use crate::model::generator::GeneratorConfig;

/// Largest checkpoint read (2 GiB).
const MAX_CHECKPOINT_BYTES: u64 = 2 << 30;

#[derive(Default)]
struct Layer {
    params: BTreeMap<String, Tensor>,
}

/// Converts `checkpoint` (optionally the state dict under `key`) into
/// `out_dir/generator.safetensors` + `manifest.json`. Refuses to replace files
/// unless `overwrite` allows it.
pub fn import_torch(
    checkpoint: &Path,
    key: Option<&str>,
    out_dir: &Path,
    name: &str,
    overwrite: Overwrite,
) -> Result<GeneratorManifest> {
    let meta = std::fs::metadata(checkpoint).map_err(|e| Error::io(checkpoint, e))?;
    if meta.is_dir() {
        return Err(Error::format(
            checkpoint,
            "is a directory, not a checkpoint file",
        ));
    }
    if meta.len() > MAX_CHECKPOINT_BYTES {
        return Err(Error::format(checkpoint, "checkpoint is larger than 2 GiB"));
    }
    let tensors = candle_core::pickle::read_all_with_key(checkpoint, key).map_err(|e| {
        Error::format(
            checkpoint,
            format!("not a readable PyTorch checkpoint: {e}"),
        )
    })?;
    if tensors.is_empty() {
        return Err(Error::format(
            checkpoint,
            "no tensors found; if the state dict is nested in the checkpoint, name it with --key (e.g. netG_state_dict)",
        ));
    }
    let mut layers: BTreeMap<usize, Layer> = BTreeMap::new();
    for (full, t) in tensors {
        let parts: Vec<&str> = full.rsplitn(3, '.').collect();
        let (param, index) = match parts.as_slice() {
            [param, index, _prefix] => (*param, *index),
            [param, index] => (*param, *index),
            _ => continue,
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if param == "num_batches_tracked" {
            continue;
        }
        layers
            .entry(index)
            .or_default()
            .params
            .insert(param.to_string(), t);
    }
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    for (index, layer) in &layers {
        if layer.params.contains_key("running_mean") {
            norms.push((*index, layer));
        } else if layer.params.get("weight").is_some_and(|w| w.rank() == 4) {
            if layer.params.contains_key("bias") {
                return Err(Error::format(
                    checkpoint,
                    format!("layer {index}: convolutions with a bias are not supported"),
                ));
            }
            convs.push((*index, layer));
        }
    }
    if convs.len() < 2 || norms.len() + 1 != convs.len() {
        return Err(Error::format(
            checkpoint,
            format!(
                "not a DCGAN generator: found {} 4-D conv weights and {} BatchNorm layers (need n and n−1)",
                convs.len(),
                norms.len()
            ),
        ));
    }
    let mut out: std::collections::HashMap<String, Tensor> = std::collections::HashMap::new();
    let mut channels = Vec::new();
    for (i, (index, conv)) in convs.iter().enumerate() {
        let w = conv
            .params
            .get("weight")
            .ok_or_else(|| Error::format(checkpoint, "missing conv weight"))?;
        let (cin, cout, kh, kw) = w.dims4()?;
        if (kh, kw) != (4, 4) {
            return Err(Error::format(
                checkpoint,
                format!("layer {index}: kernel {kh}×{kw}, only 4×4 is supported"),
            ));
        }
        if i == 0 {
            channels.push(cin);
        } else if channels.last() != Some(&cin) {
            return Err(Error::format(
                checkpoint,
                format!(
                    "layer {index}: takes {cin} channels but the previous layer gives {:?}",
                    channels.last()
                ),
            ));
        }
        channels.push(cout);
        out.insert(
            format!("blocks.{i}.conv.weight"),
            w.to_device(&Device::Cpu)?,
        );
        if let Some((bn_index, bn)) = norms.get(i) {
            if !(index < bn_index && convs.get(i + 1).is_none_or(|(next, _)| bn_index < next)) {
                return Err(Error::format(
                    checkpoint,
                    format!("BatchNorm {bn_index} is not between convolutions"),
                ));
            }
            for p in ["weight", "bias", "running_mean", "running_var"] {
                let t = bn.params.get(p).ok_or_else(|| {
                    Error::format(checkpoint, format!("BatchNorm {bn_index} lacks {p}"))
                })?;
                if t.dims() != [cout] {
                    return Err(Error::format(
                        checkpoint,
                        format!(
                            "BatchNorm {bn_index}.{p} has shape {:?}, expected [{cout}]",
                            t.dims()
                        ),
                    ));
                }
                out.insert(format!("blocks.{i}.bn.{p}"), t.clone());
            }
        }
    }
    let config = GeneratorConfig { channels };
    config
        .validate()
        .map_err(|e| Error::format(checkpoint, e.to_string()))?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let weights_file = "generator.safetensors";
    let sha256 = weights::save(&out_dir.join(weights_file), &out, overwrite)?;
    let manifest = GeneratorManifest {
        format: bundle::FORMAT.into(),
        version: 1,
        name: name.into(),
        architecture: "dcgan".into(),
        generator: config,
        weights: weights_file.into(),
        sha256,
        source: format!(
            "imported from {} (key {})",
            checkpoint
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            key.unwrap_or("none")
        ),
    };
    Bundle::write_manifest(out_dir, &manifest, overwrite)?;
    // Prove the result loads and decodes before reporting success.
    let bundle = Bundle::open(out_dir)?;
    let generator = bundle.load_generator(&Device::Cpu)?;
    let z = Tensor::zeros(
        (1, generator.config().latent_dim()),
        candle_core::DType::F32,
        &Device::Cpu,
    )?;
    let img = generator.decode(&z)?;
    if img
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .any(|v| !v.is_finite())
    {
        return Err(Error::format(
            checkpoint,
            "imported generator produces non-finite pixels",
        ));
    }
    Ok(manifest)
}
