//! Steering judged continuous attributes to the value asked.
//!
//! The flow's own coordinate of, say, yaw is not the degrees the face mesh
//! measures (asked +25°, fresh faces read 21 ± 7°). Steering reads the face
//! with the judges and, while a value asked is read further than
//! [`STEER_TOLERANCE`] from it, moves the value set for it by what was
//! missed and makes the face again, at most [`STEER_ROUNDS`] in all. Edits
//! ([`crate::jobs::edit::steer_continuous`]) and conditional sampling
//! ([`crate::jobs::dataset::sample`]) steer by these rules.

use crate::model::attributes::{AttributeKind, MAX_FLOW_VALUE};
use crate::model::judges::{JudgeMap, Reading, Verdict};
use crate::model::plugin::Plugin;

/// Rounds a steered attribute may take: the plain value, then corrections.
pub const STEER_ROUNDS: usize = 4;
/// A judged continuous attribute counts as reached when the judges read it
/// within this of the value asked, in flow units: 5 % of its labels' range
/// (about 5° of yaw, 4° of pitch).
pub const STEER_TOLERANCE: f32 = 0.1;

/// One attribute to steer: its index and the value asked (flow units).
pub type Target = (usize, f32);

/// The judged continuous attributes `values` asks for (a judge reads their
/// value, no threshold), with the values asked.
pub fn targets(plugin: &Plugin, values: &[Option<f32>]) -> Vec<Target> {
    let map = plugin.judges();
    plugin
        .attributes()
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            a.kind == AttributeKind::Continuous
                && map.rule(&a.name).is_some_and(|r| r.threshold.is_none())
        })
        .filter_map(|(k, _)| Some((k, values.get(k).copied().flatten()?)))
        .collect()
}

/// How far each target's reading falls short of its value asked, flow units
/// (`None` when a judge in `map` could not read the face).
pub fn misses(
    plugin: &Plugin,
    map: &JudgeMap,
    targets: &[Target],
    reading: &Reading,
) -> Option<Vec<f32>> {
    let attributes = plugin.attributes();
    targets
        .iter()
        .map(
            |&(k, want)| match map.verdict(&attributes[k].name, reading) {
                Verdict::Value(v) => Some(want - attributes[k].to_flow(v)),
                _ => None,
            },
        )
        .collect()
}

/// The largest miss, in flow units (0 for none).
pub fn worst(misses: &[f32]) -> f32 {
    misses.iter().fold(0f32, |m, e| m.max(e.abs()))
}

/// Whether every target is read within [`STEER_TOLERANCE`].
pub fn reached(misses: &[f32]) -> bool {
    worst(misses) <= STEER_TOLERANCE
}

/// Moves each target's value set in `values` by what it missed, within the
/// flow's range.
pub fn correct(values: &mut [Option<f32>], targets: &[Target], misses: &[f32]) {
    for (&(k, _), e) in targets.iter().zip(misses) {
        if let Some(v) = values.get_mut(k) {
            *v = Some((v.unwrap_or(0.0) + e).clamp(-MAX_FLOW_VALUE, MAX_FLOW_VALUE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_adds_the_miss_and_stays_in_range() {
        let mut values = vec![Some(0.5), None, Some(2.8)];
        correct(&mut values, &[(0, 0.9), (2, 3.0)], &[0.25, 0.5]);
        assert_eq!(values, vec![Some(0.75), None, Some(MAX_FLOW_VALUE)]);
    }

    #[test]
    fn reached_only_within_the_tolerance_either_way() {
        assert!(reached(&[]));
        assert!(reached(&[0.05, -STEER_TOLERANCE]));
        assert!(!reached(&[0.05, -0.11]));
        assert_eq!(worst(&[0.05, -0.3, 0.2]), 0.3);
    }
}
