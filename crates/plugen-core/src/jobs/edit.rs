//! Setting attributes of an existing latent, in two ways.
//!
//! - [`EditMode::Flow`], PluGeN's own edit: forward flow, replace the attribute
//!   coordinates, inverse flow. Every other flow coordinate, the free ones
//!   included, keeps its value.
//! - [`EditMode::Minimal`]: the latent closest to the original (Euclidean
//!   distance, step by step) at which the plugin reads the requested values
//!   and every other attribute reads what it read before. The free coordinates
//!   may move; the latent moves only as far as the request needs. Found by
//!   short minimum-norm Gauss–Newton steps on the flow's attribute readout, its
//!   Jacobian taken by central differences (one batched forward pass per step).

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::io::latents::Latents;
use crate::jobs::loaded::Model;
use crate::jobs::session::EditSession;
use crate::jobs::steer;
use crate::model::attributes::AttributeKind;
use crate::model::flow::invert;
use crate::model::judges::{JudgeMap, JudgeSet, Reading, Verdict};
use crate::model::plugin::Plugin;

/// How an edit moves a latent; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EditMode {
    /// Forward flow, set the attribute coordinates, inverse flow.
    #[default]
    Flow,
    /// The nearest latent with the requested readout, other attributes kept.
    Minimal,
}

impl FromStr for EditMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "flow" => Ok(Self::Flow),
            "minimal" => Ok(Self::Minimal),
            _ => Err(Error::invalid(format!(
                "edit mode {s:?}: expected flow or minimal"
            ))),
        }
    }
}

/// Gauss–Newton steps at most.
pub const MAX_STEPS: usize = 40;
/// Stop when every attribute reads within this of its target (flow units).
pub const TOLERANCE: f32 = 1e-3;
/// A minimal edit that ends further than this from its targets (flow units)
/// falls back to the flow edit, which always reaches them.
pub const FALLBACK: f32 = 0.05;
/// Longest Gauss–Newton step (latent units): the readout is far from linear
/// over a whole edit, so it is followed in short steps.
const MAX_STEP_NORM: f64 = 0.75;
/// Central-difference step in latent units.
const STEP: f32 = 1e-2;

/// `latent` with the attributes in `values` (flow units, `None` = keep) set.
pub fn edit(
    plugin: &Plugin,
    latent: &[f32],
    values: &[Option<f32>],
    mode: EditMode,
) -> Result<Vec<f32>> {
    match mode {
        EditMode::Flow => plugin.edit(latent, values),
        EditMode::Minimal => match minimal(plugin, latent, values)? {
            Some(z) => Ok(z),
            None => plugin.edit(latent, values),
        },
    }
}

/// Strengths (flow units) a judged edit tries, weakest first.
pub const JUDGED_LADDER: [f32; 5] = [1.0, 1.5, 2.0, 2.5, 3.0];

/// How far (flow units) a judged edit may push each attribute it was not
/// asked to change back towards the side the judges read on the original
/// face, when the edit alone would carry it across (a smile that opens the
/// lips): 0 first, then these.
pub const KEEP_LADDER: [f32; 4] = [0.5, 1.0, 1.5, 2.0];

/// A flow edit that stops where the judges agree and keeps what was not
/// asked: the judged binary attributes asked are stopped at the weakest
/// strength the judges agree with (see `stop_binary`), then the judged
/// continuous ones (yaw, pitch, …) are steered ([`steer_continuous`]).
/// `values` are flow units, as [`Plugin::edit`] takes them.
/// Returns the latent and the values used (the pushed attributes included).
pub fn edit_until_judged(
    model: &Model,
    judges: &JudgeSet,
    latent: &[f32],
    values: &[Option<f32>],
) -> Result<Edited> {
    let (z, used) = stop_binary(model, judges, latent, values)?;
    steer_continuous(model, judges, latent, z, used)
}

/// The binary half of [`edit_until_judged`]. Every judged binary attribute
/// asked in `values` is set to ±s for s in [`JUDGED_LADDER`] (never beyond
/// the |value| asked; other values, continuous ones such as yaw, are set as
/// asked; an edit that asks no judged binary attribute is a plain flow
/// edit); every judged binary attribute not asked, read on one side of its
/// threshold on the
/// original face, may be pushed back towards that side by c in 0 and
/// [`KEEP_LADDER`]. Of all these tries, rendered and judged as one batch,
/// the edit is the one that moves the latent least among those at which the
/// judges read every asked side and every other attribute on its original
/// side; failing that, the first try at which the asked sides are read
/// (the plain ladder, weakest first, before any push); failing that, the
/// values asked.
/// Returns the latent and the values used (the pushed attributes included).
fn stop_binary(
    model: &Model,
    judges: &JudgeSet,
    latent: &[f32],
    values: &[Option<f32>],
) -> Result<Edited> {
    let plugin = model.require_plugin()?;
    let map = plugin.judges();
    let attributes = plugin.attributes();
    let binary_judged: Vec<usize> = attributes
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.kind == AttributeKind::Binary
                && map.rule(&a.name).is_some_and(|r| r.threshold.is_some())
        })
        .map(|(k, _)| k)
        .collect();
    let asked_value = |k: usize| values.get(k).copied().flatten();
    let (judged, others): (Vec<usize>, Vec<usize>) = binary_judged
        .iter()
        .partition(|&&k| asked_value(k).is_some());
    let judged: Vec<usize> = judged
        .into_iter()
        .filter(|&k| asked_value(k).is_some_and(|v| v != 0.0))
        .collect();
    // Nothing to stop: a plain flow edit. (Pushing the judged binary
    // attributes back on a yaw or pitch edit kept them, but cost the pose
    // success and the person: measured, see the model card.)
    if judged.is_empty() {
        return Ok((plugin.edit(latent, values)?, values.to_vec()));
    }
    let dim = latent.len();
    let code = plugin.encode(&Latents::new(dim, latent.to_vec())?)?.data;
    let checked = map.only(
        judged
            .iter()
            .chain(&others)
            .map(|&k| attributes[k].name.as_str()),
    );
    let read = |rows: Vec<f32>| judge_latents(model, judges, &checked, dim, rows);
    // Where the original face stands on the attributes not asked.
    let original = read(latent.to_vec())?.remove(0);
    let keep: Vec<(usize, bool)> = others
        .iter()
        .filter_map(|&k| Some((k, map.side(&attributes[k].name, &original)?)))
        .collect();
    let mut tries: Vec<Vec<Option<f32>>> = Vec::new();
    let mut push = |v: Vec<Option<f32>>| {
        if !tries.contains(&v) {
            tries.push(v);
        }
    };
    for c in std::iter::once(0.0).chain(KEEP_LADDER.iter().copied().filter(|_| !keep.is_empty())) {
        for s in JUDGED_LADDER {
            let mut v = values.to_vec();
            for &k in &judged {
                let asked = values[k].unwrap_or(0.0);
                v[k] = Some(asked.signum() * s.min(asked.abs()));
            }
            if c > 0.0 {
                for &(k, positive) in &keep {
                    v[k] = Some(code[k] + if positive { c } else { -c });
                }
            }
            push(v);
        }
    }
    push(values.to_vec());
    let mut batch = Vec::with_capacity(tries.len() * dim);
    for v in &tries {
        batch.extend(plugin.edit(latent, v)?);
    }
    let edited = Latents::new(dim, batch)?;
    let readings = read(edited.data.clone())?;
    let took = |r: &Reading| {
        judged.iter().all(|&k| {
            let want = values[k].unwrap_or(0.0) > 0.0;
            map.verdict(&attributes[k].name, r) == Verdict::Class(want)
        })
    };
    // An attribute the judges cannot read on the edited face (the mouth of
    // a face turned away) is not counted as changed.
    let kept = |r: &Reading| {
        keep.iter()
            .all(|&(k, side)| map.side(&attributes[k].name, r) != Some(!side))
    };
    let moved = |t: usize| -> f32 {
        edited
            .row(t)
            .iter()
            .zip(latent)
            .map(|(a, b)| (a - b) * (a - b))
            .sum()
    };
    let best = (0..tries.len())
        .filter(|&t| took(&readings[t]) && kept(&readings[t]))
        .min_by(|&a, &b| moved(a).total_cmp(&moved(b)));
    // The plain ladder (no push) comes first in `tries`.
    let t = best
        .or_else(|| (0..tries.len()).find(|&t| took(&readings[t])))
        .unwrap_or(tries.len() - 1);
    Ok((edited.row(t).to_vec(), tries.swap_remove(t)))
}

/// An edited latent and the values (flow units) that made it.
pub type Edited = (Vec<f32>, Vec<Option<f32>>);

/// The continuous half of [`edit_until_judged`]: `first` (the edit of
/// `latent` by `values`) is read by the judges, and while a judged continuous
/// attribute asked in `values` is read further than
/// [`steer::STEER_TOLERANCE`] from it, the value set for it is moved by what
/// was missed and the edit made again, at most [`steer::STEER_ROUNDS`] in
/// all ([`steer`]). Returns the first
/// round that reaches every value while every judged binary attribute stays
/// on the side read after the first one; else a round that reaches them
/// (keeping the sides if one does); else the nearest, keeping the sides
/// first. A face the judges cannot read stops the rounds.
pub fn steer_continuous(
    model: &Model,
    judges: &JudgeSet,
    latent: &[f32],
    first: Vec<f32>,
    values: Vec<Option<f32>>,
) -> Result<Edited> {
    let plugin = model.require_plugin()?;
    let map = plugin.judges();
    let attributes = plugin.attributes();
    let rule_of = |k: usize| map.rule(&attributes[k].name);
    let steered = steer::targets(plugin, &values);
    if steered.is_empty() {
        return Ok((first, values));
    }
    let binary: Vec<usize> = (0..attributes.len())
        .filter(|&k| rule_of(k).is_some_and(|r| r.threshold.is_some()))
        .collect();
    let checked = map.only(
        steered
            .iter()
            .map(|&(k, _)| k)
            .chain(binary.iter().copied())
            .map(|k| attributes[k].name.as_str()),
    );
    let dim = latent.len();
    let (mut z, mut asked) = (first, values);
    let mut sides: Option<Vec<(usize, bool)>> = None;
    // The best round so far and its rank: reaching the values comes first,
    // as asked; then keeping the sides; then the smaller miss.
    let mut best: Option<((bool, bool, f32), Edited)> = None;
    for round in 0..steer::STEER_ROUNDS {
        if round > 0 {
            z = plugin.edit(latent, &asked)?;
        }
        let reading = judge_latents(model, judges, &checked, dim, z.clone())?.remove(0);
        let sides = sides.get_or_insert_with(|| {
            binary
                .iter()
                .filter_map(|&k| Some((k, checked.side(&attributes[k].name, &reading)?)))
                .collect()
        });
        let kept = sides
            .iter()
            .all(|&(k, side)| checked.side(&attributes[k].name, &reading) != Some(!side));
        let Some(missed) = steer::misses(plugin, &checked, &steered, &reading) else {
            // Not read (the mesh lost the face): keep what the rounds have.
            return Ok(best.map_or((z, asked), |(_, edited)| edited));
        };
        let reached = steer::reached(&missed);
        let rank = (reached, kept, -steer::worst(&missed));
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, (z.clone(), asked.clone())));
        }
        if kept && reached {
            break;
        }
        steer::correct(&mut asked, &steered, &missed);
    }
    Ok(best.map_or((z, asked), |(_, edited)| edited))
}

/// What the judges in `map` read on the faces of `rows` (latents of `dim`).
fn judge_latents(
    model: &Model,
    judges: &JudgeSet,
    map: &JudgeMap,
    dim: usize,
    rows: Vec<f32>,
) -> Result<Vec<Reading>> {
    let images = model.render(&Latents::new(dim, rows)?)?;
    judges.read_for(&images.iter().collect::<Vec<_>>(), map)
}

/// The judges an `--until-judged` edit needs, from `judges` (else beside the
/// model): the plugin must have a judge map.
pub fn judges_for_until(model: &Model, judges: Option<&std::path::Path>) -> Result<JudgeSet> {
    if model.plugin().is_none_or(|p| p.judges().is_empty()) {
        return Err(Error::invalid(
            "--until-judged: this plugin has no judge map (no attribute is judged)",
        ));
    }
    JudgeSet::load(&model.judges_dir(judges))
}

/// What [`edit_named`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedEdit {
    /// The edited latent.
    pub latent: Vec<f32>,
    /// The values set, user units, by name.
    pub used: Vec<(String, f32)>,
}

/// An edit as `plugen edit` makes it: the named values `sets` (user units)
/// applied to `latent` by `mode`, or, with `judges`, a flow edit stopped
/// where they agree ([`edit_until_judged`]). Returns the edited latent and the
/// values used, user units (with judges: where each edit stopped, and the
/// attributes it pushed back to keep their side). Without
/// `sets` the latent comes back as it is.
pub fn edit_named(
    model: &Model,
    latent: &[f32],
    sets: &[(String, f32)],
    mode: EditMode,
    judges: Option<&JudgeSet>,
) -> Result<NamedEdit> {
    if judges.is_some() && mode != EditMode::Flow {
        return Err(Error::invalid(
            "--until-judged stops flow edits; drop --mode",
        ));
    }
    if sets.is_empty() {
        return Ok(NamedEdit {
            latent: latent.to_vec(),
            used: Vec::new(),
        });
    }
    let Some(plugin) = model.plugin() else {
        return Err(Error::invalid(
            "--set needs a plugin; this model has none (pass --plugin PATH)",
        ));
    };
    let mut used = sets.to_vec();
    let z = match (judges, mode) {
        (Some(judges), _) => {
            let asked = plugin.resolve(sets)?;
            let (z, values) = edit_until_judged(model, judges, latent, &asked)?;
            for (name, value) in used.iter_mut() {
                let k = plugin.index_of(name)?;
                if let Some(v) = values.get(k).copied().flatten() {
                    *value = plugin.attributes()[k].from_flow(v);
                }
            }
            // The attributes pushed back to keep their side.
            for (k, a) in plugin.attributes().iter().enumerate() {
                if let (None, Some(v)) = (
                    asked.get(k).copied().flatten(),
                    values.get(k).copied().flatten(),
                ) {
                    used.push((a.name.clone(), a.from_flow(v)));
                }
            }
            z
        }
        (None, EditMode::Flow) => {
            let mut session = EditSession::from_latent(plugin, latent)?;
            session.set_named(plugin, sets)?;
            session.latent(plugin)?
        }
        (None, EditMode::Minimal) => edit(plugin, latent, &plugin.resolve(sets)?, mode)?,
    };
    Ok(NamedEdit { latent: z, used })
}

/// The minimal edit, or `None` when it does not reach the targets.
fn minimal(plugin: &Plugin, latent: &[f32], values: &[Option<f32>]) -> Result<Option<Vec<f32>>> {
    let d = latent.len();
    let k = plugin.attributes().len().min(d);
    let start = plugin.encode(&Latents::new(d, latent.to_vec())?)?;
    let target: Vec<f32> = (0..k)
        .map(|a| values.get(a).copied().flatten().unwrap_or(start.data[a]))
        .collect();
    if (0..k).all(|a| (target[a] - start.data[a]).abs() <= TOLERANCE) {
        return Ok(Some(latent.to_vec()));
    }
    let mut z = latent.to_vec();
    let mut residual = f32::INFINITY;
    for step in 0..=MAX_STEPS {
        // Rows: z, then z ± STEP along each latent axis.
        let mut batch = Vec::with_capacity((2 * d + 1) * d);
        batch.extend_from_slice(&z);
        for sign in [1.0f32, -1.0] {
            for j in 0..d {
                let mut row = z.clone();
                row[j] += sign * STEP;
                batch.extend(row);
            }
        }
        let codes = plugin.encode(&Latents::new(d, batch)?)?;
        let now = codes.row(0);
        let r: Vec<f64> = (0..k).map(|a| (target[a] - now[a]) as f64).collect();
        residual = r.iter().fold(0.0f32, |m, v| m.max(v.abs() as f32));
        if residual <= TOLERANCE {
            return Ok(Some(z));
        }
        if step == MAX_STEPS {
            break; // `residual` is z's: return z as measured, not one more step.
        }
        // J[a][j] = ∂ code_a / ∂ z_j.
        let jac: Vec<Vec<f64>> = (0..k)
            .map(|a| {
                (0..d)
                    .map(|j| {
                        (codes.row(1 + j)[a] as f64 - codes.row(1 + d + j)[a] as f64)
                            / (2.0 * STEP as f64)
                    })
                    .collect()
            })
            .collect();
        // The smallest step that, linearised at z, reaches the targets:
        // Δ = Jᵀ y with J Jᵀ y = r, shortened to at most MAX_STEP_NORM.
        let gram: Vec<f64> = (0..k * k)
            .map(|ab| (0..d).map(|j| jac[ab / k][j] * jac[ab % k][j]).sum())
            .collect();
        let Some(inv) = invert(&gram, k) else {
            break;
        };
        let y: Vec<f64> = (0..k)
            .map(|a| (0..k).map(|b| inv[a * k + b] * r[b]).sum())
            .collect();
        let delta: Vec<f64> = (0..d)
            .map(|j| (0..k).map(|a| jac[a][j] * y[a]).sum::<f64>())
            .collect();
        let norm = delta.iter().map(|v| v * v).sum::<f64>().sqrt();
        let shrink = (MAX_STEP_NORM / norm.max(1e-12)).min(1.0);
        let next: Vec<f32> = z
            .iter()
            .zip(&delta)
            .map(|(zj, dj)| zj + (dj * shrink) as f32)
            .collect();
        if next.iter().any(|v| !v.is_finite()) {
            break;
        }
        z = next;
    }
    Ok((residual <= FALLBACK).then_some(z))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("flow".parse::<EditMode>().ok(), Some(EditMode::Flow));
        assert_eq!("minimal".parse::<EditMode>().ok(), Some(EditMode::Minimal));
        assert!("nearest".parse::<EditMode>().is_err());
    }
}
