//! `plugen calibrate`: where each judged binary attribute's slider must sit
//! for the judges to agree with its ends' labels, measured on fresh faces (the
//! protocol of PluGeN4Faces: raise the strength until the classifier
//! crosses). "On" is the smallest value at which at least [`ON_RATE`] of the
//! faces are judged to show the attribute; "off" the value nearest zero at
//! which at most [`OFF_RATE`] are not judged clearly without it; both with 90 %
//! confidence (a Wilson bound on the faces measured). Stored in the
//! plugin's judge map; `--set NAME=on|off` and fills use them.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::latents::Latents;
use crate::jobs::loaded::Model;
use crate::model::attributes::AttributeKind;
use crate::model::judges::map::{Calibration, OFF_RATE, ON_RATE};
use crate::model::judges::{JudgeSet, Reading, Verdict};
use crate::model::plugin::{Plugin, PluginManifest};
use crate::rng::SeededRng;

/// One-sided 90 % normal quantile: an end must reach its rate with this
/// confidence, not only on the faces measured.
const Z: f32 = 1.2816;

/// Wilson score bound of a rate `p` seen on `n` faces (`z` > 0: upper, < 0: lower).
fn wilson(p: f32, n: usize, z: f32) -> f32 {
    let n = n.max(1) as f32;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre + spread) / (1.0 + z2 / n)
}

/// Strengths tried for "on" (flow units), in order; "off" tries their negatives.
pub const GRID: [f32; 11] = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0];

/// How to calibrate.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateRequest {
    /// Fresh faces per value.
    pub faces: usize,
    /// Seed of the faces (the same identities at every value).
    pub seed: u64,
    /// Scale of the free coordinates.
    pub temperature: f32,
    /// Only these attributes (empty: every judged binary one).
    pub only: Vec<String>,
}

/// What the judges read at one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The value asked for (flow units).
    pub value: f32,
    /// Faces judged to show the attribute (fraction).
    pub positive: f32,
    /// Faces judged clearly without it (fraction).
    pub negative: f32,
    /// Faces not judged clearly without it (fraction): what "off" bounds.
    pub not_negative: f32,
}

/// One attribute's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeCalibration {
    /// Attribute name.
    pub name: String,
    /// Every value measured, in the order measured.
    pub points: Vec<Point>,
    /// The calibration, when both ends were reached.
    pub calibration: Option<Calibration>,
}

/// What the judges read of attribute `index` on `req.faces` fresh faces asked
/// for `value`, the other attributes from the prior.
pub fn measure(
    model: &Model,
    judges: &JudgeSet,
    index: usize,
    value: f32,
    req: &CalibrateRequest,
) -> Result<Point> {
    let plugin = model.require_plugin()?;
    let a = plugin
        .attributes()
        .get(index)
        .ok_or_else(|| Error::invalid(format!("no attribute {index}")))?;
    let mut values = vec![None; plugin.attributes().len()];
    values[index] = Some(a.checked_flow_value(value)?);
    let asked = vec![values; req.faces];
    let (_, readings) = judged_draws(model, judges, &asked, req.seed, req.temperature)?;
    let (mut pos, mut neg) = (0usize, 0usize);
    for r in &readings {
        match plugin.judges().verdict(&a.name, r) {
            Verdict::Class(true) => pos += 1,
            Verdict::Class(false) => neg += 1,
            _ => {}
        }
    }
    let n = readings.len().max(1) as f32;
    Ok(Point {
        value,
        positive: pos as f32 / n,
        negative: neg as f32 / n,
        not_negative: (readings.len() - neg) as f32 / n,
    })
}

/// Fresh faces asked for `asked[i]` (flow units, one per plugin attribute),
/// face `i` from stream `i` of `seed` (the same identities for every list
/// of requests of the same length), decoded, rendered and read by the
/// judges, in batches of 256.
pub(crate) fn judged_draws(
    model: &Model,
    judges: &JudgeSet,
    asked: &[Vec<Option<f32>>],
    seed: u64,
    temperature: f32,
) -> Result<(Latents, Vec<Reading>)> {
    let plugin = model.require_plugin()?;
    let dim = model.latent_dim();
    let mut latents = Vec::with_capacity(asked.len() * dim);
    let mut readings = Vec::with_capacity(asked.len());
    for (c, chunk) in asked.chunks(256).enumerate() {
        let mut codes = Vec::with_capacity(chunk.len() * dim);
        for (k, values) in chunk.iter().enumerate() {
            let mut rng = SeededRng::new(seed, (c * 256 + k) as u64);
            codes.extend(plugin.sample_code(values, temperature, &mut rng));
        }
        let z = plugin.decode(&Latents::new(dim, codes)?)?;
        let images = model.render(&z)?;
        readings.extend(judges.read(&images.iter().collect::<Vec<_>>())?);
        latents.extend(z.data);
    }
    Ok((Latents::new(dim, latents)?, readings))
}

/// Calibrates every judged binary attribute of the model's plugin.
/// `progress(name, point)` is called after every measured value.
pub fn calibrate(
    model: &Model,
    judges: &JudgeSet,
    req: &CalibrateRequest,
    progress: &mut dyn FnMut(&str, &Point),
) -> Result<Vec<AttributeCalibration>> {
    if req.faces == 0 || req.faces > 100_000 {
        return Err(Error::invalid("--faces must be 1..=100000"));
    }
    let plugin = model.require_plugin()?;
    if plugin.judges().is_empty() {
        return Err(Error::invalid(
            "this plugin has no judge map: nothing to calibrate",
        ));
    }
    for name in &req.only {
        plugin.index_of(name)?;
    }
    let mut out = Vec::new();
    for (index, a) in plugin.attributes().iter().enumerate() {
        let judged = plugin
            .judges()
            .rule(&a.name)
            .is_some_and(|r| r.threshold.is_some());
        let wanted = req.only.is_empty() || req.only.contains(&a.name);
        if a.kind != AttributeKind::Binary || !judged || !wanted {
            continue;
        }
        let mut points = Vec::new();
        let mut on = None;
        for &v in &GRID {
            let p = measure(model, judges, index, v, req)?;
            progress(&a.name, &p);
            points.push(p);
            if wilson(p.positive, req.faces, -Z) >= ON_RATE {
                on = Some(p);
                break;
            }
        }
        let mut off = None;
        for &v in &GRID {
            let p = measure(model, judges, index, -v, req)?;
            progress(&a.name, &p);
            points.push(p);
            if wilson(p.not_negative, req.faces, Z) <= OFF_RATE {
                off = Some(p);
                break;
            }
        }
        let calibration = match (on, off) {
            (Some(on), Some(off)) => Some(Calibration {
                off: off.value,
                on: on.value,
                off_rate: off.not_negative,
                on_rate: on.positive,
                faces: req.faces,
            }),
            _ => None,
        };
        out.push(AttributeCalibration {
            name: a.name.clone(),
            points,
            calibration,
        });
    }
    Ok(out)
}

/// Writes the calibrations into the judge map of the plugin manifest at
/// `plugin_json` (atomically; everything else in it is kept). Attributes
/// whose ends were not reached lose any old calibration.
pub fn store(plugin_json: &Path, results: &[AttributeCalibration]) -> Result<()> {
    let bytes = fsutil::read_limited(plugin_json, 16 << 20)?;
    let mut manifest: PluginManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(plugin_json, format!("not a plugen plugin manifest: {e}")))?;
    for r in results {
        let Some(rule) = manifest.judges.0.get_mut(&r.name) else {
            return Err(Error::format(
                plugin_json,
                format!("has no judge rule for {}", r.name),
            ));
        };
        rule.calibrated = r.calibration.clone();
    }
    let mut text =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::invalid(e.to_string()))?;
    text.push('\n');
    fsutil::write_atomic(plugin_json, text.as_bytes(), Overwrite::Allow)
}

/// `NAME=VALUE`, where VALUE may be `on` or `off` for a calibrated attribute.
pub fn parse_set(plugin: Option<&Plugin>, s: &str) -> Result<(String, f32)> {
    let Some((name, value)) = s.split_once('=') else {
        return crate::model::attributes::parse_assignment(s);
    };
    let (name, value) = (name.trim(), value.trim());
    let end = match value {
        "on" => true,
        "off" => false,
        _ => return crate::model::attributes::parse_assignment(s),
    };
    let calibrated = plugin
        .and_then(|p| p.judges().rule(name))
        .and_then(|r| r.calibrated.as_ref());
    match calibrated {
        Some(c) => Ok((name.to_string(), if end { c.on } else { c.off })),
        None => Err(Error::invalid(format!(
            "--set {s:?}: {name} has no calibrated ends (run plugen calibrate; only judged binary attributes have them)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_bounds_bracket_the_rate() {
        // 191 of 200 (95.5 %): the lower bound is below 95 %, the upper above.
        let lo = wilson(0.955, 200, -Z);
        let hi = wilson(0.955, 200, Z);
        assert!(lo < 0.95 && lo > 0.92, "{lo}");
        assert!(hi > 0.955 && hi < 0.98, "{hi}");
        // More faces, tighter bounds.
        assert!(wilson(0.955, 5000, -Z) > 0.95);
        assert!(wilson(0.0, 200, Z) > 0.0 && wilson(0.0, 200, Z) < 0.01);
    }
}
