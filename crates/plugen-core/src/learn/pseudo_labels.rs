//! Pseudo-labels for sparsely labelled binary attributes.
//!
//! A flow learns a new attribute coordinate from a few hundred labels poorly:
//! its coupling networks memorise them (measured on a synthetic attribute with
//! 300 labels: held-out readout 67 % where always answering "no" scores 70 %).
//! A ridge-regularised logistic regression on the latents generalises from the
//! same labels far better, so before training, each binary attribute labelled
//! on fewer than half of the rows, and on fewer than [`MAX_LABELS`] rows in
//! all, gets a classifier, and the rows it is
//! confident about (p ≥ [`CONFIDENCE`] or ≤ 1 − [`CONFIDENCE`]) get its answer as
//! a label. The flow then trains on thousands of rows (self-training).
//! Given labels are never changed.

use crate::io::labels::LabelTable;
use crate::io::latents::Latents;
use crate::model::attributes::AttributeKind;
use crate::model::prior::MIXTURE_MIN_LABELLED;

/// Probability a classifier must reach before its answer becomes a label.
pub const CONFIDENCE: f32 = 0.9;
/// Ridge penalty of the logistic regression (on standardised latents).
const RIDGE: f64 = 10.0;
/// Gradient steps of the logistic regression.
const STEPS: usize = 2000;
/// Most labels an attribute may have and still be pseudo-labelled. The remedy
/// is for a few hundred labels; an attribute with tens of thousands (v3's
/// mouth_open: 49 000 of 100 000 rows, its labeller unsure on the rest) trains
/// the flow by itself, and a linear model's guesses on the rows its labeller
/// refused add nothing (measured: mouth_open at +1 gave 29.4 % open with
/// 28 000 pseudo-labels, 30.3 % without, n = 200).
pub const MAX_LABELS: usize = 5000;
/// Fewest labels (and fewest of each class) before pseudo-labelling.
const MIN_LABELS: usize = 10;

/// How many pseudo-labels an attribute got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PseudoCount {
    /// Attribute name.
    pub name: String,
    /// Rows that got a pseudo-label.
    pub added: usize,
}

/// A ridge logistic regression on standardised latents: the pseudo-labeller,
/// and a linear probe for judging attributes independently of a flow.
pub struct Logistic {
    mean: Vec<f64>,
    scale: Vec<f64>,
    weights: Vec<f64>,
    bias: f64,
}

impl Logistic {
    /// Fits rows `rows` of `latents` to 0/1 `targets` (standardised over all rows).
    pub fn fit(latents: &Latents, rows: &[usize], targets: &[f64]) -> Self {
        let dim = latents.dim;
        let n = latents.count().max(1) as f64;
        let mut mean = vec![0f64; dim];
        let mut sq = vec![0f64; dim];
        for i in 0..latents.count() {
            for (j, &v) in latents.row(i).iter().enumerate() {
                mean[j] += v as f64;
                sq[j] += (v as f64) * (v as f64);
            }
        }
        for j in 0..dim {
            mean[j] /= n;
            sq[j] = (sq[j] / n - mean[j] * mean[j]).max(1e-12).sqrt();
        }
        let mut model = Self {
            mean,
            scale: sq,
            weights: vec![0.0; dim],
            bias: 0.0,
        };
        let x: Vec<Vec<f64>> = rows
            .iter()
            .map(|&i| model.features(latents.row(i)))
            .collect();
        let m = rows.len() as f64;
        let rate = 0.5;
        for _ in 0..STEPS {
            let mut gw = vec![0f64; dim];
            let mut gb = 0f64;
            for (xi, &t) in x.iter().zip(targets) {
                let err = model.prob_of(xi) - t;
                for (g, v) in gw.iter_mut().zip(xi) {
                    *g += err * v;
                }
                gb += err;
            }
            for (w, g) in model.weights.iter_mut().zip(&gw) {
                *w -= rate * (g + RIDGE * *w) / m;
            }
            model.bias -= rate * gb / m;
        }
        model
    }

    fn features(&self, row: &[f32]) -> Vec<f64> {
        row.iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(&v, (m, s))| (v as f64 - m) / s)
            .collect()
    }

    fn prob_of(&self, x: &[f64]) -> f64 {
        let z: f64 = self.bias + x.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// P(label = 1) for one latent.
    pub fn prob(&self, row: &[f32]) -> f64 {
        self.prob_of(&self.features(row))
    }
}

/// Fills confident pseudo-labels into `labels` for binary attributes (by
/// `kinds`, in column order) labelled on fewer than half of the rows and on at
/// most [`MAX_LABELS`] rows.
pub fn fill(
    latents: &Latents,
    labels: &mut LabelTable,
    kinds: &[AttributeKind],
) -> Vec<PseudoCount> {
    let n = labels.rows.len();
    let mut counts = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        if *kind != AttributeKind::Binary {
            continue;
        }
        let rows: Vec<usize> = (0..n).filter(|&i| labels.rows[i][k].is_some()).collect();
        let targets: Vec<f64> = rows
            .iter()
            .map(|&i| f64::from(labels.rows[i][k].unwrap_or(0.0) >= 0.5))
            .collect();
        let positives = targets.iter().filter(|&&t| t > 0.5).count();
        if rows.len() as f32 >= MIXTURE_MIN_LABELLED * n as f32
            || rows.len() > MAX_LABELS
            || rows.len() < MIN_LABELS
            || positives < MIN_LABELS.min(rows.len() / 2)
            || rows.len() - positives < MIN_LABELS.min(rows.len() / 2)
        {
            continue;
        }
        let model = Logistic::fit(latents, &rows, &targets);
        let mut added = 0;
        for i in 0..n {
            if labels.rows[i][k].is_none() {
                let p = model.prob(latents.row(i)) as f32;
                if p >= CONFIDENCE {
                    labels.rows[i][k] = Some(1.0);
                    added += 1;
                } else if p <= 1.0 - CONFIDENCE {
                    labels.rows[i][k] = Some(0.0);
                    added += 1;
                }
            }
        }
        counts.push(PseudoCount {
            name: labels.names[k].clone(),
            added,
        });
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    /// A linear attribute labelled on 200 of 3 000 rows: the pseudo-labels are
    /// mostly right, many rows get one, and the given labels are kept.
    #[test]
    fn pseudo_labels_follow_a_linear_attribute() -> crate::Result<()> {
        let dim = 16;
        let mut rng = SeededRng::new(3, 0);
        let latents = Latents::new(dim, rng.normal_vec(3000 * dim))?;
        let truth = |r: &[f32]| r[0] + 0.5 * r[1] > 0.3;
        let mut labels = LabelTable {
            names: vec!["a".into()],
            rows: (0..3000)
                .map(|i| (i < 200).then(|| f32::from(u8::from(truth(latents.row(i))))))
                .map(|v| vec![v])
                .collect(),
        };
        let given = labels.rows[..200].to_vec();
        let counts = fill(&latents, &mut labels, &[AttributeKind::Binary]);
        assert_eq!(counts.len(), 1);
        assert!(counts[0].added > 500, "{counts:?}");
        assert_eq!(&labels.rows[..200], given.as_slice());
        let (mut right, mut total) = (0, 0);
        for i in 200..3000 {
            if let Some(v) = labels.rows[i][0] {
                total += 1;
                right += usize::from((v >= 0.5) == truth(latents.row(i)));
            }
        }
        assert!(right as f32 / total as f32 > 0.95, "{right}/{total}");
        // Densely labelled or continuous attributes are left alone.
        let mut dense = LabelTable {
            names: vec!["a".into()],
            rows: (0..3000)
                .map(|i| vec![(i % 3 != 0).then(|| f32::from(u8::from(truth(latents.row(i)))))])
                .collect(),
        };
        let before = dense.clone();
        assert!(fill(&latents, &mut dense, &[AttributeKind::Binary]).is_empty());
        assert_eq!(dense, before);
        assert!(fill(&latents, &mut labels.clone(), &[AttributeKind::Continuous]).is_empty());
        // So are attributes with more than MAX_LABELS labels, even on under half the rows.
        let n = 3 * MAX_LABELS;
        let big = Latents::new(dim, rng.normal_vec(n * dim))?;
        let mut many = LabelTable {
            names: vec!["a".into()],
            rows: (0..n)
                .map(|i| vec![(i <= MAX_LABELS).then(|| f32::from(u8::from(truth(big.row(i)))))])
                .collect(),
        };
        let before = many.clone();
        assert!(fill(&big, &mut many, &[AttributeKind::Binary]).is_empty());
        assert_eq!(many, before);
        Ok(())
    }
}
