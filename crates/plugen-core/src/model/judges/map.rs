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

/// The slider values at which the judge agrees with the ends' labels, as
/// `plugen calibrate` measured them. The strength is raised until the judge
/// crosses, up to the last value tried; an end it never crossed holds the
/// value that came nearest, and [`reached`](Self::reached) says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The value at which at most [`OFF_RATE`] of fresh faces are judged
    /// positive (or, not reached, the fewest were).
    pub off: f32,
    /// The value at which at least [`ON_RATE`] of fresh faces are judged
    /// positive (or, not reached, the most were).
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
/// One-sided 90 % normal quantile: an end must reach its rate with this
/// confidence, not only on the faces measured.
const CONFIDENCE_Z: f32 = 1.2816;

/// Wilson score bound of a rate `p` seen on `n` faces (`z` > 0: upper, < 0: lower).
fn wilson(p: f32, n: usize, z: f32) -> f32 {
    let n = n.max(1) as f32;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre + spread) / (1.0 + z2 / n)
}

/// Whether a rate measured on `faces` faces reaches an end's goal (`on`:
/// at least [`ON_RATE`], else at most [`OFF_RATE`]) with 90 % confidence.
pub fn reaches(on: bool, rate: f32, faces: usize) -> bool {
    if on {
        wilson(rate, faces, -CONFIDENCE_Z) >= ON_RATE
    } else {
        wilson(rate, faces, CONFIDENCE_Z) <= OFF_RATE
    }
}

impl Calibration {
    /// The calibrated value of one end (`on`: the positive one).
    pub fn end(&self, on: bool) -> f32 {
        if on { self.on } else { self.off }
    }

    /// Whether the judge crossed at that end (its rate reached with 90 %
    /// confidence), or the end is only the nearest value tried.
    pub fn reached(&self, on: bool) -> bool {
        let rate = if on { self.on_rate } else { self.off_rate };
        reaches(on, rate, self.faces)
    }

    /// One end for people: `"+2.00 (96.5 % judged positive)"`, with
    /// "not reached" where the judge never crossed.
    pub fn describe(&self, on: bool) -> String {
        let rate = if on { self.on_rate } else { self.off_rate };
        let goal = if on {
            format!("≥ {:.0} %", ON_RATE * 100.0)
        } else {
            format!("≤ {:.0} %", OFF_RATE * 100.0)
        };
        let mut s = format!(
            "{:+.2} ({:.1} % judged positive",
            self.end(on),
            rate * 100.0
        );
        if !self.reached(on) {
            s.push_str(&format!("; not reached: no value tried gave {goal}"));
        }
        s.push(')');
        s
    }
}

/// What the judges say of one attribute of one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A binary attribute: shown or not.
    Class(bool),
    /// A continuous attribute, in label units.
    Value(f32),
    /// A binary attribute read too close to its threshold to call.
    Uncertain,
    /// No judge decides it.
    Unjudged,
    /// A judge decides it but could not read it from this face (the mesh
    /// found no face, or the face is turned too far for its mouth or
    /// eyes): flagged, never scored; a verified run redraws it.
    Unread,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// What the judges read of one binary attribute over many faces (fractions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    /// At or above the threshold: what calibration and the report card count.
    pub shown: f32,
    /// Below the threshold by more than the margin.
    pub clearly_not: f32,
    /// Within the margin, or not read: what a verified run would redraw.
    pub uncalled: f32,
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
            _ => Verdict::Unread,
        }
    }

    /// Which side of its threshold a binary attribute's reading falls on
    /// (`true`: at or above), ignoring the margin: how the labeller decided.
    /// Rates over many faces (`calibrate`, `eval`) count this; a single face
    /// is accepted or redrawn by its [`verdict`](Self::verdict), margin
    /// included. None: unjudged, continuous, or not read from this face.
    pub fn side(&self, attribute: &str, reading: &Reading) -> Option<bool> {
        let rule = self.rule(attribute)?;
        let t = rule.threshold?;
        let v = reading.get(&rule.reading).copied()?;
        v.is_finite().then_some(v >= t)
    }

    /// How many of `readings` show a binary attribute (at or above the
    /// threshold, see [`side`](Self::side)), how many are clearly without it
    /// and how many a verified run could not call, as fractions of all.
    pub fn tally(&self, attribute: &str, readings: &[Reading]) -> Tally {
        let n = readings.len().max(1) as f32;
        let count =
            |f: &dyn Fn(&Reading) -> bool| readings.iter().filter(|r| f(r)).count() as f32 / n;
        Tally {
            shown: count(&|r| self.side(attribute, r) == Some(true)),
            clearly_not: count(&|r| self.verdict(attribute, r) == Verdict::Class(false)),
            uncalled: count(&|r| !matches!(self.verdict(attribute, r), Verdict::Class(_))),
        }
    }

    /// The judged attributes, in name order.
    pub fn judged(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The rules of `attributes` alone (unjudged names are skipped): what a
    /// run that checks only them needs read, so the judges it does not need
    /// (the face mesh for a smile and male fill) are not run.
    pub fn only<'a>(&self, attributes: impl IntoIterator<Item = &'a str>) -> JudgeMap {
        JudgeMap(
            attributes
                .into_iter()
                .filter_map(|a| Some((a.to_string(), self.0.get(a)?.clone())))
                .collect(),
        )
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
        assert_eq!(m.verdict("smile", &r), Verdict::Unread);
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
            // The side of the threshold ignores the margin.
            assert_eq!(m.side("smile", &r), Some(v >= 0.5), "happy {v}");
        }
        assert_eq!(m.side("background", &r), None, "continuous");
        assert_eq!(m.side("glasses", &r), None, "unjudged");
        r.insert("happy".into(), f32::NAN);
        assert_eq!(m.side("smile", &r), None, "not read");
        r.remove("background");
        assert_eq!(m.verdict("background", &r), Verdict::Unread);
    }

    #[test]
    fn round_trips_as_json() {
        let m = map();
        let text = serde_json::to_string(&m).expect("serialises");
        let back: JudgeMap = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, m);
        assert_eq!(m.judged().collect::<Vec<_>>(), ["background", "smile"]);
    }

    #[test]
    fn only_keeps_the_rules_asked_for() {
        let m = map();
        let smile = m.only(["smile", "glasses"]);
        assert_eq!(smile.judged().collect::<Vec<_>>(), ["smile"]);
        assert_eq!(smile.rule("smile"), m.rule("smile"));
        assert!(m.only([]).is_empty());
    }

    #[test]
    fn an_end_says_whether_the_judge_crossed() {
        let c: Calibration = serde_json::from_str(
            r#"{"off": -3.0, "on": 1.75, "off_rate": 0.058, "on_rate": 0.959, "faces": 1000}"#,
        )
        .expect("a calibration");
        assert!(
            c.reached(true),
            "95.9 % of 1000 is at least 95 % with 90 % confidence"
        );
        assert!(!c.reached(false), "5.8 % is over 3 %");
        assert_eq!(c.end(false), -3.0);
        assert_eq!(c.describe(true), "+1.75 (95.9 % judged positive)");
        assert!(
            c.describe(false).contains("not reached"),
            "{}",
            c.describe(false)
        );
        // 95.5 % of 200 faces is not enough confidence; of 5000 it is.
        assert!(!reaches(true, 0.955, 200) && reaches(true, 0.955, 5000));
        assert!(reaches(false, 0.0, 200) && !reaches(false, 0.0, 20));
    }

    #[test]
    fn wilson_bounds_bracket_the_rate() {
        // 191 of 200 (95.5 %): the lower bound is below 95 %, the upper above.
        let lo = wilson(0.955, 200, -CONFIDENCE_Z);
        let hi = wilson(0.955, 200, CONFIDENCE_Z);
        assert!(lo < 0.95 && lo > 0.92, "{lo}");
        assert!(hi > 0.955 && hi < 0.98, "{hi}");
        assert!(wilson(0.0, 200, CONFIDENCE_Z) > 0.0 && wilson(0.0, 200, CONFIDENCE_Z) < 0.01);
    }

    #[test]
    fn a_tally_counts_the_threshold_and_the_margin_apart() {
        let mut m = map();
        if let Some(rule) = m.0.get_mut("smile") {
            rule.margin = 0.2;
        }
        let readings: Vec<Reading> = [0.9, 0.6, 0.4, 0.1, f32::NAN]
            .iter()
            .map(|&v| Reading::from([("happy".to_string(), v)]))
            .collect();
        let t = m.tally("smile", &readings);
        // Shown: 0.9 and 0.6 (at or above 0.5); clearly not: 0.1; uncalled:
        // 0.6 and 0.4 (within the margin) and the unread face.
        assert_eq!((t.shown, t.clearly_not, t.uncalled), (0.4, 0.2, 0.6));
    }
}
