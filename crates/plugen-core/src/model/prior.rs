//! PluGeN's prior on flow space and the training loss.
//!
//! The first K coordinates are the attributes, the rest are N(0, 1):
//! - binary attribute, labelled: N(+1, σ) for label 1, N(−1, σ) for label 0;
//!   each labelled term is weighted by `0.5 / frequency` of its class so that a
//!   rare class pulls as hard as a common one (this is how σ-level balance is
//!   kept with skewed labels such as 11 % smiling);
//! - binary attribute, missing label: the mixture p·N(+1, σ) + (1−p)·N(−1, σ),
//!   with p the positive frequency, so partially labelled data trains; but when
//!   fewer than half of the rows are labelled (an attribute added with a few
//!   hundred hand labels), N(mean, √(std² + σ²)) of the labelled values, like a
//!   continuous attribute: the mixture would make the flow split thousands of
//!   unlabelled faces into two tight clusters guided by a few hundred labels,
//!   and it splits them along whatever is easiest instead of the attribute;
//! - continuous attribute, labelled: N(label, σ), labels scaled to [−1, 1];
//! - continuous attribute, missing: N(mean, √(std² + σ²)) of the labelled values.
//!
//! σ decays over training (see [`crate::learn::train`]). Loss = −(log prior + log det),
//! averaged over the batch and divided by the dimension.

use candle_core::{D, Device, Tensor};

use crate::error::Result;
use crate::model::attributes::{Attribute, AttributeKind};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
/// Class weights are clamped to this range, so a class seen a handful of times cannot dominate.
const MAX_CLASS_WEIGHT: f32 = 10.0;

/// Below this labelled fraction, missing binary labels get one broad Gaussian instead of the mixture.
pub const MIXTURE_MIN_LABELLED: f32 = 0.5;

/// The prior for one plugin's attributes.
pub struct Prior {
    attributes: Vec<Attribute>,
    /// Per attribute: missing labels use the two-class mixture.
    mixture_for_missing: Vec<bool>,
}

/// Per-batch targets for the attribute coordinates, shape (N, K) each.
pub struct PriorBatch {
    mean: Tensor,
    /// Standard deviation of the Gaussian term (before σ is applied for labelled rows).
    sd: Tensor,
    gauss_weight: Tensor,
    mixture_weight: Tensor,
}

impl Prior {
    /// A prior over the given attributes (the first K flow coordinates), for
    /// training data of `rows` rows.
    pub fn new(attributes: Vec<Attribute>, rows: usize) -> Self {
        let mixture_for_missing = attributes
            .iter()
            .map(|a| {
                a.kind == AttributeKind::Binary
                    && a.labelled as f32 >= MIXTURE_MIN_LABELLED * rows as f32
            })
            .collect();
        Self {
            attributes,
            mixture_for_missing,
        }
    }

    fn class_weight(a: &Attribute, positive: bool) -> f32 {
        let p = a.positive_rate.clamp(1e-3, 1.0 - 1e-3);
        let f = if positive { p } else { 1.0 - p };
        (0.5 / f).clamp(1.0 / MAX_CLASS_WEIGHT, MAX_CLASS_WEIGHT)
    }

    /// Builds batch targets from label rows in user (label) units and the current σ.
    pub fn batch(
        &self,
        rows: &[&[Option<f32>]],
        sigma: f32,
        device: &Device,
    ) -> Result<PriorBatch> {
        let k = self.attributes.len();
        let n = rows.len();
        let mut mean = vec![0f32; n * k];
        let mut sd = vec![1f32; n * k];
        let mut gw = vec![0f32; n * k];
        let mut mw = vec![0f32; n * k];
        for (i, row) in rows.iter().enumerate() {
            for (j, a) in self.attributes.iter().enumerate() {
                let at = i * k + j;
                match (a.kind, row[j]) {
                    (AttributeKind::Binary, Some(label)) => {
                        mean[at] = a.label_to_flow(label);
                        sd[at] = sigma;
                        gw[at] = Self::class_weight(a, label >= 0.5);
                    }
                    (AttributeKind::Binary, None) if self.mixture_for_missing[j] => mw[at] = 1.0,
                    (AttributeKind::Continuous, Some(label)) => {
                        mean[at] = a.to_flow(label);
                        sd[at] = sigma;
                        gw[at] = 1.0;
                    }
                    (_, None) => {
                        mean[at] = a.prior_mean;
                        sd[at] = (a.prior_std * a.prior_std + sigma * sigma).sqrt();
                        gw[at] = 1.0;
                    }
                }
            }
        }
        let t = |v: Vec<f32>| Tensor::from_vec(v, (n, k), device);
        Ok(PriorBatch {
            mean: t(mean)?,
            sd: t(sd)?,
            gauss_weight: t(gw)?,
            mixture_weight: t(mw)?,
        })
    }

    /// Log-density of the flow-space points `y` (N, D) under the prior, per row (N).
    pub fn log_prob(&self, y: &Tensor, batch: &PriorBatch, sigma: f32) -> Result<Tensor> {
        let (_n, dim) = y.dims2()?;
        let k = self.attributes.len();
        let free = y.narrow(1, k, dim - k)?;
        let free_lp = ((free.sqr()? * -0.5)? - HALF_LN_2PI)?.sum(D::Minus1)?;
        if k == 0 {
            return Ok(free_lp);
        }
        let att = y.narrow(1, 0, k)?;
        // Gaussian terms: −½((y−μ)/s)² − ln s − ½ ln 2π
        let z = (&att - &batch.mean)?.div(&batch.sd)?;
        let gauss = (((z.sqr()? * -0.5)? - batch.sd.log()?)? - HALF_LN_2PI)?;
        // Mixture for missing binary labels.
        let device = y.device();
        let ln_p: Vec<f32> = self
            .attributes
            .iter()
            .map(|a| a.positive_rate.clamp(1e-3, 1.0 - 1e-3).ln())
            .collect();
        let ln_q: Vec<f32> = self
            .attributes
            .iter()
            .map(|a| (1.0 - a.positive_rate.clamp(1e-3, 1.0 - 1e-3)).ln())
            .collect();
        let ln_p = Tensor::from_vec(ln_p, k, device)?;
        let ln_q = Tensor::from_vec(ln_q, k, device)?;
        let s = sigma as f64;
        let a_pos = (((&att - 1.0)? / s)?.sqr()? * -0.5)?.broadcast_add(&ln_p)?;
        let a_neg = (((&att + 1.0)? / s)?.sqr()? * -0.5)?.broadcast_add(&ln_q)?;
        let hi = a_pos.maximum(&a_neg)?;
        let gap = (&a_pos - &a_neg)?.abs()?;
        let lse = (hi + ((gap * -1.0)?.exp()? + 1.0)?.log()?)?;
        let mixture = ((lse - s.ln())? - HALF_LN_2PI)?;
        let att_lp = ((gauss * &batch.gauss_weight)? + (mixture * &batch.mixture_weight)?)?
            .sum(D::Minus1)?;
        Ok((free_lp + att_lp)?)
    }

    /// The training loss: −mean(log prior + log det) / D.
    pub fn loss(
        &self,
        y: &Tensor,
        log_det: &Tensor,
        batch: &PriorBatch,
        sigma: f32,
    ) -> Result<Tensor> {
        let dim = y.dim(1)? as f64;
        let lp = (self.log_prob(y, batch, sigma)? + log_det)?;
        Ok((lp.mean_all()? * (-1.0 / dim))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(p: f32) -> Attribute {
        Attribute {
            name: "b".into(),
            display_name: String::new(),
            description: String::new(),
            kind: AttributeKind::Binary,
            ends: None,
            labeller: String::new(),
            label_min: 0.0,
            label_max: 1.0,
            positive_rate: p,
            prior_mean: 0.0,
            prior_std: 1.0,
            labelled: 1,
        }
    }

    /// Compares with the closed form written out by hand for one point.
    #[test]
    fn log_prob_matches_closed_form() -> Result<()> {
        let dev = Device::Cpu;
        // 1 of 2 rows labelled: the mixture for the missing one.
        let prior = Prior::new(vec![binary(0.25)], 2);
        let sigma = 0.5f32;
        let y = Tensor::new(&[[0.8f32, 0.3], [0.2, -1.0]], &dev)?;
        let rows: Vec<&[Option<f32>]> = vec![&[Some(1.0)], &[None]];
        let batch = prior.batch(&rows, sigma, &dev)?;
        let lp = prior.log_prob(&y, &batch, sigma)?.to_vec1::<f32>()?;
        let norm = |x: f64, m: f64, s: f64| {
            (-(x - m).powi(2) / (2. * s * s)).exp() / (s * (2. * std::f64::consts::PI).sqrt())
        };
        let w_pos = (0.5f64 / 0.25).min(10.0);
        let want0 = w_pos * norm(0.8, 1.0, 0.5).ln() + norm(0.3, 0., 1.).ln();
        let want1 = (0.25 * norm(0.2, 1.0, 0.5) + 0.75 * norm(0.2, -1.0, 0.5)).ln()
            + norm(-1.0, 0., 1.).ln();
        assert!((lp[0] as f64 - want0).abs() < 1e-4, "{} vs {want0}", lp[0]);
        assert!((lp[1] as f64 - want1).abs() < 1e-4, "{} vs {want1}", lp[1]);
        Ok(())
    }

    /// With few labelled rows a missing label is one broad Gaussian, N(mean, √(std² + σ²)).
    #[test]
    fn sparse_labels_use_a_broad_gaussian_for_missing() -> Result<()> {
        let dev = Device::Cpu;
        let mut a = binary(0.25);
        a.prior_mean = -0.5;
        a.prior_std = 0.8;
        let prior = Prior::new(vec![a], 3);
        let sigma = 0.5f32;
        let y = Tensor::new(&[[0.2f32, -1.0]], &dev)?;
        let rows: Vec<&[Option<f32>]> = vec![&[None]];
        let batch = prior.batch(&rows, sigma, &dev)?;
        let lp = prior.log_prob(&y, &batch, sigma)?.to_vec1::<f32>()?;
        let norm = |x: f64, m: f64, s: f64| {
            (-(x - m).powi(2) / (2. * s * s)).exp() / (s * (2. * std::f64::consts::PI).sqrt())
        };
        let sd = (0.8f64 * 0.8 + 0.25).sqrt();
        let want = norm(0.2, -0.5, sd).ln() + norm(-1.0, 0., 1.).ln();
        assert!((lp[0] as f64 - want).abs() < 1e-4, "{} vs {want}", lp[0]);
        Ok(())
    }
}
