//! `plugen calibrate`: where each judged binary attribute's slider must sit
//! for the judges to agree with its ends' labels, measured on fresh faces (the
//! protocol of PluGeN4Faces: raise the strength until the classifier
//! crosses). "On" is the smallest value at which at least [`ON_RATE`] of the
//! faces are judged to show the attribute; "off" the value nearest zero at
//! which at most [`OFF_RATE`] are; both with 90 % confidence (a Wilson bound
//! on the faces measured). A face shows it when the judge's reading is at or
//! above the labeller's threshold ([`JudgeMap::side`]): the rate the
//! labeller would give; a judge's margin decides single faces in verified
//! runs, not rates. Each end stands on its own: where the judge never
//! crosses within ±3, the end holds the value that came nearest, marked not
//! reached (an attribute with neither end reached is not calibrated).
//! Stored in the plugin's judge map; `--set NAME=on|off`, `--balance` and
//! fills use them.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::latents::Latents;
use crate::jobs::loaded::Model;
use crate::model::attributes::AttributeKind;
use crate::model::judges::map::{Calibration, reaches};
#[cfg(doc)]
use crate::model::judges::map::{JudgeMap, OFF_RATE, ON_RATE};
use crate::model::judges::{JudgeSet, Reading};
use crate::model::plugin::{Plugin, PluginManifest};
use crate::rng::SeededRng;

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
    /// Faces judged to show the attribute, at or above the threshold
    /// (fraction): what both ends bound.
    pub positive: f32,
    /// Faces judged clearly without it, below the threshold by more than
    /// the judge's margin (fraction): what a verified run accepts as "off".
    pub negative: f32,
}

/// One attribute's measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeCalibration {
    /// Attribute name.
    pub name: String,
    /// Every value measured, in the order measured.
    pub points: Vec<Point>,
    /// The calibration, when at least one end was reached (an end not
    /// reached holds the value nearest its goal).
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
    let tally = plugin.judges().tally(&a.name, &readings);
    Ok(Point {
        value,
        positive: tally.shown,
        negative: tally.clearly_not,
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
        readings.extend(judges.read_for(&images.iter().collect::<Vec<_>>(), plugin.judges())?);
        latents.extend(z.data);
    }
    Ok((Latents::new(dim, latents)?, readings))
}

/// Raises the strength along [`GRID`] (its negatives for "off") until an
/// end's rate is reached (`on`: the rate of faces judged positive at least
/// [`ON_RATE`], else at most [`OFF_RATE`], with 90 % confidence), pushing
/// every point `measure` takes.
/// Returns the point that reached it, or the one nearest the goal, and whether
/// it was reached.
fn raise(
    points: &mut Vec<Point>,
    on: bool,
    faces: usize,
    measure: &mut dyn FnMut(f32) -> Result<Point>,
) -> Result<(Point, bool)> {
    let mut best: Option<Point> = None;
    for &v in &GRID {
        let p = measure(if on { v } else { -v })?;
        points.push(p);
        if reaches(on, p.positive, faces) {
            return Ok((p, true));
        }
        let nearer = best.is_none_or(|b| {
            if on {
                p.positive > b.positive
            } else {
                p.positive < b.positive
            }
        });
        if nearer {
            best = Some(p);
        }
    }
    best.map(|p| (p, false))
        .ok_or_else(|| Error::invalid("nothing measured"))
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
        let mut probe = |v| {
            let p = measure(model, judges, index, v, req)?;
            progress(&a.name, &p);
            Ok(p)
        };
        let on = raise(&mut points, true, req.faces, &mut probe)?;
        let off = raise(&mut points, false, req.faces, &mut probe)?;
        // An end stands on its own: a judge that never crosses at one end
        // (male's "off" with plugin v5: 5.8 % still judged male at −3) keeps
        // the nearest value tried there, said "not reached", so `--set` and
        // fills still ask the strongest value and verification redraws the rest.
        let calibration = (on.1 || off.1).then_some(Calibration {
            off: off.0.value,
            on: on.0.value,
            off_rate: off.0.positive,
            on_rate: on.0.positive,
            faces: req.faces,
        });
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
/// with neither end reached lose any old calibration.
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
        Some(c) => Ok((name.to_string(), c.end(end))),
        None => Err(Error::invalid(format!(
            "--set {s:?}: {name} has no calibrated ends (run plugen calibrate; only judged binary attributes have them)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: f32, positive: f32) -> Point {
        Point {
            value,
            positive,
            negative: 1.0 - positive,
        }
    }

    #[test]
    fn the_strength_rises_until_the_judge_crosses() {
        // "On": positive rate rising with the value, 98 % from +1.5 on.
        let mut points = Vec::new();
        let (p, reached) = raise(&mut points, true, 1000, &mut |v| {
            Ok(point(v, if v >= 1.5 { 0.98 } else { 0.5 + v / 10.0 }))
        })
        .expect("measured");
        assert!(reached);
        assert_eq!(p.value, 1.5);
        assert_eq!(points.len(), 5, "stops at the first value that reaches");
        // "Off" that never gets under 3 %: every value tried, the lowest kept.
        let mut points = Vec::new();
        let (p, reached) = raise(&mut points, false, 1000, &mut |v| {
            Ok(point(v, 0.2 + v / 20.0))
        })
        .expect("measured");
        assert!(!reached);
        assert_eq!(points.len(), GRID.len());
        assert_eq!(p.value, -3.0);
        assert!((p.positive - 0.05).abs() < 1e-6);
        // Too few faces for confidence: 0 of 10 positive is not yet ≤ 3 %.
        let (_, reached) =
            raise(&mut Vec::new(), false, 10, &mut |v| Ok(point(v, 0.0))).expect("measured");
        assert!(!reached);
    }
}
