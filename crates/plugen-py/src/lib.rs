//! `plugen._native`: the Rust side of the Python package. A thin layer over
//! `plugen-core`'s jobs, as the CLI is: numbers cross as little-endian `f32`
//! and `u8` bytes with their shapes (the pure-Python `plugen` package wraps
//! them in numpy arrays), records as JSON text. Every computation releases
//! the GIL; plugen's errors become `ValueError`, or `FileNotFoundError` where
//! a file or folder is missing, with the CLI's one-line message.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::RgbImage;
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::{Value, json};

use plugen_core::io::imaging;
use plugen_core::io::latents::Latents;
use plugen_core::jobs::dataset::{self, SampleRequest};
use plugen_core::jobs::edit::{self, EditMode};
use plugen_core::jobs::fill;
use plugen_core::jobs::projection;
use plugen_core::model::bundle;
use plugen_core::model::judges::JudgeSet;
use plugen_core::{DeviceChoice, Error, Model, PluginChoice};

/// plugen's error as the Python exception a user expects.
fn py_err(e: Error) -> PyErr {
    let missing = match &e {
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        Error::Format { path, message } => message.contains("not found") || !path.exists(),
        _ => false,
    };
    if missing {
        PyFileNotFoundError::new_err(e.to_string())
    } else {
        PyValueError::new_err(e.to_string())
    }
}

fn value_err(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// Runs `f` without the GIL and maps plugen's errors.
fn detached<T: Send>(
    py: Python<'_>,
    f: impl Send + FnOnce() -> plugen_core::Result<T>,
) -> PyResult<T> {
    py.detach(f).map_err(py_err)
}

/// Runs `f` (already without the GIL) and maps plugen's errors.
fn core<T>(f: impl FnOnce() -> plugen_core::Result<T>) -> PyResult<T> {
    f().map_err(py_err)
}

/// `n` rows of little-endian f32 values of width `dim`, checked.
fn latents_from(bytes: &[u8], n: usize, dim: usize) -> PyResult<Latents> {
    if bytes.len() != n * dim * 4 {
        return Err(value_err(format!(
            "latents: {} bytes do not hold {n} rows of {dim} float32 values",
            bytes.len()
        )));
    }
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(value_err(format!(
            "latents: row {} holds a value that is not finite (NaN or infinity)",
            i / dim
        )));
    }
    Latents::new(dim, data).map_err(py_err)
}

fn f32_bytes<'py>(py: Python<'py>, values: &[f32]) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    PyBytes::new(py, &bytes)
}

fn image_bytes<'py>(py: Python<'py>, images: &[RgbImage]) -> Bound<'py, PyBytes> {
    let mut bytes = Vec::with_capacity(images.iter().map(|i| i.as_raw().len()).sum());
    for im in images {
        bytes.extend_from_slice(im.as_raw());
    }
    PyBytes::new(py, &bytes)
}

/// `n` images of `h`×`w` RGB bytes.
fn images_from(bytes: &[u8], n: usize, h: usize, w: usize) -> PyResult<Vec<RgbImage>> {
    if bytes.len() != n * h * w * 3 {
        return Err(value_err(format!(
            "images: {} bytes do not hold {n} images of {h}×{w}×3",
            bytes.len()
        )));
    }
    if n > 0 && (h == 0 || w == 0) {
        return Err(value_err("images: an image is empty"));
    }
    let side = |v: usize| {
        u32::try_from(v).map_err(|_| value_err(format!("images: a side of {v} pixels is too big")))
    };
    let (hh, ww) = (side(h)?, side(w)?);
    if n == 0 {
        return Ok(Vec::new());
    }
    bytes
        .chunks_exact(h * w * 3)
        .map(|c| {
            RgbImage::from_raw(ww, hh, c.to_vec())
                .ok_or_else(|| value_err("images: wrong number of bytes"))
        })
        .collect()
}

/// Each image centre-cropped to a square of `size` (as the CLI does to files).
fn fit_all(images: &[RgbImage], size: u32) -> PyResult<Vec<RgbImage>> {
    images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            if im.width() == size && im.height() == size {
                return Ok(im.clone());
            }
            projection::fit_square(im, size).map_err(|e| value_err(format!("images[{i}]: {e}")))
        })
        .collect()
}

/// `NAME=VALUE` words (VALUE a number, `on` or `off`) resolved as `--set` does.
fn parse_sets(model: &Model, sets: &[String]) -> PyResult<Vec<(String, f32)>> {
    sets.iter()
        .map(|s| plugen_core::jobs::calibrate::parse_set(model.plugin(), s).map_err(py_err))
        .collect()
}

/// Calls a Python progress callback `(done, total)`; one that raises stops nothing.
fn report(progress: &Option<Py<PyAny>>, done: usize, total: usize) {
    if let Some(cb) = progress {
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (done, total)) {
                e.print(py);
            }
        });
    }
}

fn to_json(v: &Value) -> String {
    v.to_string()
}

/// What `NativeModel.sample` returns: indices, latents bytes, images bytes, JSON.
type SampleOut<'py> = (Vec<usize>, Bound<'py, PyBytes>, Bound<'py, PyBytes>, String);

/// A loaded model: the bundle's generator and a plugin, on a device.
#[pyclass(module = "plugen._native")]
struct NativeModel {
    inner: Mutex<Model>,
}

impl NativeModel {
    /// Runs `f` on the model without the GIL (the lock is taken without it
    /// too, so a second Python thread waiting for the model cannot stall the first).
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl Send + FnOnce(&mut Model) -> PyResult<T>,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.inner.lock().map_err(|_| {
                PyRuntimeError::new_err("the model was poisoned by an earlier panic")
            })?;
            f(&mut guard)
        })
    }
}

#[pymethods]
impl NativeModel {
    /// Loads a model folder (default: `$PLUGEN_MODEL` or the bundled one) with
    /// `plugin` (default: the folder's own; `no_plugin` for none) on `device`.
    #[new]
    #[pyo3(signature = (model=None, plugin=None, no_plugin=false, device="auto"))]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        plugin: Option<PathBuf>,
        no_plugin: bool,
        device: &str,
    ) -> PyResult<Self> {
        let device: DeviceChoice = device.parse().map_err(py_err)?;
        let loaded = detached(py, move || {
            let choice = match (&plugin, no_plugin) {
                (_, true) => PluginChoice::None,
                (Some(p), false) => PluginChoice::Path(p),
                (None, false) => PluginChoice::BundleDefault,
            };
            Model::load(model.as_deref(), choice, device)
        })?;
        Ok(Self {
            inner: Mutex::new(loaded),
        })
    }

    /// The model as JSON: folder, device, latent size, image size, attributes.
    fn info(&self, py: Python<'_>) -> PyResult<String> {
        self.run(py, |m| {
            let attributes: Vec<Value> = match m.plugin() {
                Some(p) => p
                    .attributes()
                    .iter()
                    .map(|a| {
                        let rule = p.judges().rule(&a.name);
                        json!({
                            "name": a.name,
                            "display_name": a.display_name,
                            "description": a.description,
                            "kind": a.kind,
                            "ends": a.ends,
                            "label_min": a.label_min,
                            "label_max": a.label_max,
                            "judged_by": rule.map(|r| r.reading.clone()),
                            "calibrated": rule.and_then(|r| r.calibrated.as_ref())
                                .map(|c| json!({"on": c.on, "off": c.off})),
                        })
                    })
                    .collect(),
                None => Vec::new(),
            };
            Ok(to_json(&json!({
                "model_dir": m.bundle().dir(),
                "device": m.device_name(),
                "device_note": m.device_note(),
                "latent_dim": m.latent_dim(),
                "image_size": m.generator().config().image_size(),
                "generator_sha256": m.generator_sha256(),
                "plugin": m.plugin().map(|p| p.path().to_path_buf()),
                "plugin_sha256": m.plugin().map(|p| p.weights_sha256().to_string()),
                "judges_dir": m.judges_dir(None),
                "attributes": attributes,
            })))
        })
    }

    /// Conditional sampling, image for image `plugen sample`'s: returns
    /// (indices, latents bytes, images bytes, JSON of requested, readouts,
    /// judged, cells).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (n, seed, sets, balance, bins, temperature, verify, judges, progress))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
        sets: Vec<String>,
        balance: Option<String>,
        bins: usize,
        temperature: f32,
        verify: String,
        judges: Option<PathBuf>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<SampleOut<'py>> {
        let sampled = self.run(py, |m| {
            let sets = parse_sets(m, &sets)?;
            let model: &Model = m;
            core(|| {
                // Nothing asked, nothing to check (as the CLI).
                let asks = !sets.is_empty() || balance.is_some();
                let verify = if asks || verify != "auto" {
                    verify.as_str()
                } else {
                    "off"
                };
                let chosen = dataset::choose_verify(model, verify, judges.as_deref())?;
                let req = SampleRequest {
                    count: n,
                    seed,
                    sets,
                    balance,
                    bins,
                    temperature,
                    scale: 1,
                    verify: chosen.verify,
                    max_tries: chosen.verify.max_draws(),
                    generator_sha256: String::new(),
                    plugin_sha256: None,
                };
                let s =
                    dataset::sample_in_memory(model, &req, chosen.judges.as_ref(), &mut |d, t| {
                        report(&progress, d, t)
                    })?;
                Ok((s, chosen.note))
            })
        })?;
        let (s, note) = sampled;
        let cells: Vec<Value> = s
            .cells
            .iter()
            .map(|c| json!({"asked": c.cell, "written": c.written, "draws": c.draws, "given_up": c.given_up}))
            .collect();
        let extra = json!({
            "requested": s.requested,
            "readouts": s.readouts,
            "judged": s.judged,
            "cells": cells,
            "note": note,
        });
        Ok((
            s.indices,
            f32_bytes(py, &s.latents.data),
            image_bytes(py, &s.images),
            to_json(&extra),
        ))
    }

    /// The faces of `n` latents, as bytes of `n`×size×size×3.
    fn render<'py>(
        &self,
        py: Python<'py>,
        latents: &[u8],
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let images = self.run(py, |m| {
            let rows = latents_from(latents, n, m.latent_dim())?;
            let model: &Model = m;
            core(|| render_in_batches(model, &rows))
        })?;
        Ok(image_bytes(py, &images))
    }

    /// Edits `n` latents as `plugen edit` does; returns the edited latents and
    /// JSON of the values used per row.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (latents, n, sets, mode, until_judged, judges))]
    fn edit<'py>(
        &self,
        py: Python<'py>,
        latents: &[u8],
        n: usize,
        sets: Vec<String>,
        mode: &str,
        until_judged: bool,
        judges: Option<PathBuf>,
    ) -> PyResult<(Bound<'py, PyBytes>, String)> {
        let mode: EditMode = mode.parse().map_err(py_err)?;
        let (edited, used) = self.run(py, |m| {
            let rows = latents_from(latents, n, m.latent_dim())?;
            let sets = parse_sets(m, &sets)?;
            let model: &Model = m;
            core(|| {
                let judges = if until_judged {
                    Some(edit::judges_for_until(model, judges.as_deref())?)
                } else {
                    None
                };
                let mut out = Vec::with_capacity(rows.data.len());
                let mut used = Vec::with_capacity(n);
                for i in 0..rows.count() {
                    let e = edit::edit_named(model, rows.row(i), &sets, mode, judges.as_ref())?;
                    out.extend(e.latent);
                    used.push(
                        e.used
                            .into_iter()
                            .collect::<std::collections::BTreeMap<_, _>>(),
                    );
                }
                Ok((out, used))
            })
        })?;
        Ok((f32_bytes(py, &edited), to_json(&json!(used))))
    }

    /// The plugin's readout of `n` latents (user units), as bytes of n×K f32.
    fn readout<'py>(
        &self,
        py: Python<'py>,
        latents: &[u8],
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let values = self.run(py, |m| {
            let rows = latents_from(latents, n, m.latent_dim())?;
            let model: &Model = m;
            core(|| {
                let plugin = model.require_plugin()?;
                let mut out = Vec::new();
                if rows.count() > 0 {
                    for r in plugin.readout(&rows)? {
                        out.extend(r);
                    }
                }
                Ok(out)
            })
        })?;
        Ok(f32_bytes(py, &values))
    }

    /// Projects `n` images of h×w into latents, as `plugen project` does;
    /// returns the latents and each face's pixel MSE.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (images, n, h, w, use_encoder, seed, steps, progress))]
    fn project<'py>(
        &self,
        py: Python<'py>,
        images: &[u8],
        n: usize,
        h: usize,
        w: usize,
        use_encoder: bool,
        seed: u64,
        steps: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Bound<'py, PyBytes>, Vec<f32>)> {
        let (latents, mse) = self.run(py, |m| {
            let size = m.generator().config().image_size() as u32;
            let targets = fit_all(&images_from(images, n, h, w)?, size)?;
            let model: &mut Model = m;
            core(|| {
                let mut latents = Vec::new();
                let mut mse = Vec::new();
                for (i, t) in targets.iter().enumerate() {
                    let p = model.project(t, use_encoder, seed, steps, &mut |_, _, _| true)?;
                    latents.extend(p.latent);
                    mse.push(p.mse);
                    report(&progress, i + 1, targets.len());
                }
                Ok((latents, mse))
            })
        })?;
        Ok((f32_bytes(py, &latents), mse))
    }

    /// Fills the rare cells of the table at `have`, as `plugen fill` does;
    /// returns JSON of the check and the per-cell report.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (have, by, per_cell, total, seed, verify, judges, temperature, scale, out, shard, progress))]
    fn fill(
        &self,
        py: Python<'_>,
        have: PathBuf,
        by: String,
        per_cell: Option<usize>,
        total: Option<usize>,
        seed: u64,
        verify: String,
        judges: Option<PathBuf>,
        temperature: f32,
        scale: u32,
        out: PathBuf,
        shard: Option<String>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        if per_cell.is_some() && total.is_some() {
            return Err(value_err("give per_cell or total, not both"));
        }
        self.run(py, |m| {
            let model: &Model = m;
            core(|| {
                let shard = match &shard {
                    Some(s) => s.parse()?,
                    None => dataset::Shard::WHOLE,
                };
                let chosen = dataset::choose_verify(model, &verify, judges.as_deref())?;
                let target = match (per_cell, total) {
                    (Some(n), _) => fill::Target::PerCell(n),
                    (_, Some(n)) => fill::Target::Total(n),
                    _ => fill::Target::Largest,
                };
                let plan = fill::FillPlan::for_table(model.require_plugin()?, &have, &by, target)?;
                let req = fill::FillRequest::new(seed, temperature, scale, chosen.verify);
                let reports = fill::fill(
                    model,
                    &plan,
                    &req,
                    chosen.judges.as_ref(),
                    &out,
                    shard,
                    &mut |d, t| report(&progress, d, t),
                )?;
                Ok(to_json(&json!({
                    "verify": chosen.verify,
                    "note": chosen.note,
                    "unknown": plan.census.unknown,
                    "cells": reports,
                })))
            })
        })
    }
}

/// Renders latents 256 at a time (bounded memory for big arrays).
fn render_in_batches(model: &Model, rows: &Latents) -> plugen_core::Result<Vec<RgbImage>> {
    let mut images = Vec::with_capacity(rows.count());
    for chunk in rows.data.chunks(256 * rows.dim) {
        images.extend(model.render(&Latents::new(rows.dim, chunk.to_vec())?)?);
    }
    Ok(images)
}

/// What the judges read off `n` images of h×w (centre-cropped to 64×64 as
/// `plugen judge` does): JSON, one object per image.
#[pyfunction]
#[pyo3(signature = (images, n, h, w, judges=None))]
fn judge(
    py: Python<'_>,
    images: &[u8],
    n: usize,
    h: usize,
    w: usize,
    judges: Option<PathBuf>,
) -> PyResult<String> {
    let faces = fit_all(&images_from(images, n, h, w)?, 64)?;
    let readings = detached(py, move || {
        let dir = judges.unwrap_or_else(|| JudgeSet::dir_beside(&bundle::default_model_dir()));
        let set = JudgeSet::load(&dir)?;
        set.read(&faces.iter().collect::<Vec<_>>())
    })?;
    Ok(to_json(&json!(readings)))
}

/// The PNG bytes `plugen` writes for an h×w RGB image, upscaled by `scale`.
#[pyfunction]
#[pyo3(signature = (image, h, w, scale=1))]
fn png_bytes<'py>(
    py: Python<'py>,
    image: &[u8],
    h: usize,
    w: usize,
    scale: u32,
) -> PyResult<Bound<'py, PyBytes>> {
    let im = images_from(image, 1, h, w)?.remove(0);
    if !(1..=imaging::MAX_SCALE).contains(&scale) {
        return Err(value_err(format!(
            "scale must be 1..={}, got {scale}",
            imaging::MAX_SCALE
        )));
    }
    let bytes = py
        .detach(|| imaging::encode_png(&imaging::upscale(&im, scale)))
        .map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// The model folder used when none is given.
#[pyfunction]
fn default_model_dir() -> String {
    bundle::default_model_dir().display().to_string()
}

/// Whether `path` is a model folder (holds a manifest).
#[pyfunction]
fn is_model_dir(path: PathBuf) -> bool {
    Path::new(&path).join("manifest.json").is_file()
}

/// The Rust side of `plugen`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeModel>()?;
    m.add_function(wrap_pyfunction!(judge, m)?)?;
    m.add_function(wrap_pyfunction!(png_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(default_model_dir, m)?)?;
    m.add_function(wrap_pyfunction!(is_model_dir, m)?)?;
    Ok(())
}
