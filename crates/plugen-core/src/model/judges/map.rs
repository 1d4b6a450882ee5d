//! The judge map a plugin carries: which judge reading decides each of its
//! attributes, where a binary attribute's threshold is, and the calibrated
//! slider ends. Attributes without a rule are unjudged (glasses, headwear, a
//! user's own), and say so wherever it matters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::set::Reading;

/// How one attribute is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRule {
    /// The judge reading that decides it (e.g. `happy`, `background`).
    pub reading: String,
    /// Binary attributes: the face shows the attribute when the reading is at
    /// least this. Continuous attributes: none; the reading is in label units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Binary attributes: a verdict counts only this far from the threshold
    /// (a reading within it is uncertain), for a judge that only
    /// approximates its labeller.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub margin: f32,
    /// Binary attributes: calibrated plugin values, measured by
    /// `plugen calibrate` on fresh faces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrated: Option<Calibration>,
}

/// The slider values at which the judge agrees with the ends' labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The value at which at most [`OFF_RATE`] of fresh faces are judged positive.
    pub off: f32,
    /// The value at which at least [`ON_RATE`] of fresh faces are judged positive.
    pub on: f32,
    /// Judged positive at `off` (fraction).
    pub off_rate: f32,
    /// Judged positive at `on` (fraction).
    pub on_rate: f32,
    /// Fresh faces per measured value.
    pub faces: usize,
}

/// Fraction of faces that must be judged positive at the calibrated "on" end.
pub const ON_RATE: f32 = 0.95;
/// Largest fraction judged positive at the calibrated "off" end.
pub const OFF_RATE: f32 = 0.03;

/// What the judges say of one attribute of one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A binary attribute: shown or not.
    Class(bool),
    /// A continuous attribute, in label units.
    Value(f32),
    /// A binary attribute read too close to its threshold to call.
    Uncertain,
    /// No judge decides it, or the judge could not read it from this face.
    Unjudged,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// Attribute name → its rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JudgeMap(pub BTreeMap<String, JudgeRule>);

impl JudgeMap {
    /// Whether no attribute is judged.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rule of `attribute`, if it is judged.
    pub fn rule(&self, attribute: &str) -> Option<&JudgeRule> {
        self.0.get(attribute)
    }

    /// What the judges say of `attribute` from a face's `reading`.
    pub fn verdict(&self, attribute: &str, reading: &Reading) -> Verdict {
        let Some(rule) = self.rule(attribute) else {
            return Verdict::Unjudged;
        };
        match reading.get(&rule.reading).copied() {
            Some(v) if v.is_finite() => match rule.threshold {
                Some(t) if v >= t + rule.margin => Verdict::Class(true),
                Some(t) if v < t - rule.margin => Verdict::Class(false),
                Some(_) => Verdict::Uncertain,
                None => Verdict::Value(v),
            },
            _ => Verdict::Unjudged,
        }
    }

    /// The judged attributes, in name order.
    pub fn judged(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> JudgeMap {
        let json = r#"{"smile": {"reading": "happy", "threshold": 0.5},
                       "background": {"reading": "background"}}"#;
        serde_json::from_str(json).expect("a judge map")
    }

    #[test]
    fn verdicts_follow_the_rules() {
        let m = map();
        let mut r = Reading::new();
        r.insert("happy".into(), 0.7);
        r.insert("background".into(), 41.5);
        assert_eq!(m.verdict("smile", &r), Verdict::Class(true));
        assert_eq!(m.verdict("background", &r), Verdict::Value(41.5));
        assert_eq!(m.verdict("glasses", &r), Verdict::Unjudged);
        r.insert("happy".into(), 0.49);
        assert_eq!(m.verdict("smile", &r), Verdict::Class(false));
        r.insert("happy".into(), f32::NAN);
        assert_eq!(m.verdict("smile", &r), Verdict::Unjudged);
        // With a margin, readings near the threshold are uncertain.
        let mut m = m;
        if let Some(rule) = m.0.get_mut("smile") {
            rule.margin = 0.2;
        }
        for (v, want) in [
            (0.75, Verdict::Class(true)),
            (0.6, Verdict::Uncertain),
            (0.35, Verdict::Uncertain),
            (0.25, Verdict::Class(false)),
        ] {
            r.insert("happy".into(), v);
            assert_eq!(m.verdict("smile", &r), want, "happy {v}");
        }
        r.remove("background");
        assert_eq!(m.verdict("background", &r), Verdict::Unjudged);
    }

    #[test]
    fn round_trips_as_json() {
        let m = map();
        let text = serde_json::to_string(&m).expect("serialises");
        let back: JudgeMap = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, m);
        assert_eq!(m.judged().collect::<Vec<_>>(), ["background", "smile"]);
    }
}
