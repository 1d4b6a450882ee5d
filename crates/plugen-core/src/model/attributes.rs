//! Attributes a plugin controls: their names, kinds, ranges and the mapping
//! between user units (what `--set` and sliders use) and flow units (the
//! plugin's first K coordinates).
//!
//! Binary attributes are given in flow units: −1 and +1 are the means of the
//! two classes, and values up to ±3 push further. Continuous attributes are
//! given in their label units; the training label range maps to [−1, 1].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How far past the class means (binary) or the label range (continuous) a value may go, in flow units.
pub const MAX_FLOW_VALUE: f32 = 3.0;

/// Binary (two classes) or continuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeKind {
    /// Labels 0 or 1; flow means −1 and +1.
    Binary,
    /// Real-valued labels, scaled to [−1, 1] over the training range.
    Continuous,
}

/// One attribute of a plugin, as stored in `plugin.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// Identifier used by `--set`, CSV headers and the GUI (e.g. `smile`).
    pub name: String,
    /// Human name (e.g. "Smile").
    #[serde(default)]
    pub display_name: String,
    /// One-line description, shown as a tooltip.
    #[serde(default)]
    pub description: String,
    /// Binary or continuous.
    pub kind: AttributeKind,
    /// Names of the two ends of a binary attribute, e.g. `["neutral", "smiling"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<[String; 2]>,
    /// How the labels were made.
    #[serde(default)]
    pub labeller: String,
    /// Smallest training label (0 for binary).
    pub label_min: f32,
    /// Largest training label (1 for binary).
    pub label_max: f32,
    /// Fraction of labelled rows with label 1 (binary only).
    #[serde(default)]
    pub positive_rate: f32,
    /// Mean of the labels in flow units.
    pub prior_mean: f32,
    /// Standard deviation of the labels in flow units.
    pub prior_std: f32,
    /// Number of labelled training rows.
    pub labelled: usize,
}

impl Attribute {
    /// User value → flow coordinate.
    pub fn to_flow(&self, value: f32) -> f32 {
        match self.kind {
            AttributeKind::Binary => value,
            AttributeKind::Continuous => {
                2.0 * (value - self.label_min) / (self.label_max - self.label_min) - 1.0
            }
        }
    }

    /// Flow coordinate → user value.
    pub fn from_flow(&self, y: f32) -> f32 {
        match self.kind {
            AttributeKind::Binary => y,
            AttributeKind::Continuous => {
                (y + 1.0) * 0.5 * (self.label_max - self.label_min) + self.label_min
            }
        }
    }

    /// A training label → its flow-space target (binary: 0 → −1, 1 → +1).
    pub fn label_to_flow(&self, label: f32) -> f32 {
        match self.kind {
            AttributeKind::Binary => {
                if label >= 0.5 {
                    1.0
                } else {
                    -1.0
                }
            }
            AttributeKind::Continuous => self.to_flow(label),
        }
    }

    /// The values a user may ask for, in user units.
    pub fn value_range(&self) -> (f32, f32) {
        (
            self.from_flow(-MAX_FLOW_VALUE),
            self.from_flow(MAX_FLOW_VALUE),
        )
    }

    /// The name to show people.
    pub fn label(&self) -> &str {
        if self.display_name.is_empty() {
            &self.name
        } else {
            &self.display_name
        }
    }

    /// Checks a user value and converts it to flow units.
    pub fn checked_flow_value(&self, value: f32) -> Result<f32> {
        let (lo, hi) = self.value_range();
        if !value.is_finite() || value < lo - 1e-4 || value > hi + 1e-4 {
            return Err(Error::invalid(format!(
                "{} = {value} is out of range [{lo:.3}, {hi:.3}]",
                self.name
            )));
        }
        Ok(self.to_flow(value))
    }

    /// Checks the stored statistics.
    pub fn validate(&self) -> Result<()> {
        if !crate::io::labels::is_identifier(&self.name) {
            return Err(Error::invalid(format!(
                "attribute name {:?} is not an identifier",
                self.name
            )));
        }
        let finite = [
            self.label_min,
            self.label_max,
            self.positive_rate,
            self.prior_mean,
            self.prior_std,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite || self.label_max <= self.label_min || self.prior_std < 0.0 {
            return Err(Error::invalid(format!(
                "attribute {}: invalid range or statistics",
                self.name
            )));
        }
        Ok(())
    }
}

/// Parses `NAME=VALUE` as given to `--set`.
pub fn parse_assignment(s: &str) -> Result<(String, f32)> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| Error::invalid(format!("--set {s:?}: expected NAME=VALUE")))?;
    let value: f32 = value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(format!("--set {s:?}: {value:?} is not a number")))?;
    Ok((name.trim().to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaw() -> Attribute {
        Attribute {
            name: "yaw".into(),
            display_name: String::new(),
            description: String::new(),
            kind: AttributeKind::Continuous,
            ends: None,
            labeller: String::new(),
            label_min: -0.5,
            label_max: 1.5,
            positive_rate: 0.0,
            prior_mean: 0.0,
            prior_std: 0.5,
            labelled: 10,
        }
    }

    #[test]
    fn continuous_units_round_trip() {
        let a = yaw();
        assert_eq!(a.to_flow(-0.5), -1.0);
        assert_eq!(a.to_flow(1.5), 1.0);
        assert!((a.from_flow(a.to_flow(0.3)) - 0.3).abs() < 1e-6);
        assert_eq!(a.value_range(), (-2.5, 3.5));
        assert!(a.checked_flow_value(4.0).is_err());
        assert!(a.checked_flow_value(f32::NAN).is_err());
        assert!(a.checked_flow_value(3.0).is_ok());
    }

    #[test]
    fn assignments_parse() {
        assert_eq!(
            parse_assignment("smile=1").ok(),
            Some(("smile".into(), 1.0))
        );
        assert!(parse_assignment("smile").is_err());
        assert!(parse_assignment("smile=yes").is_err());
    }
}
