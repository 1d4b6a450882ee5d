//! `plugen eval`: the plugin's report card, read by the judges on fresh
//! faces. For each judged binary attribute, how often faces asked for −2, −1,
//! +1, +2 and for its calibrated ends are judged to show it; for each judged
//! continuous one, the Spearman correlation between the value asked and the
//! value read; the mean norm of the conditional latents against N(0, I)'s.
//! As a markdown table and a PNG chart.

use crate::error::{Error, Result};
use crate::io::latents;
use crate::jobs::calibrate::judged_draws;
use crate::jobs::loaded::Model;
use crate::model::attributes::AttributeKind;
use crate::model::judges::{JudgeSet, Verdict};

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// Fresh faces per value asked (the same identities at every value).
    pub faces: usize,
    /// Seed of the faces.
    pub seed: u64,
    /// Scale of the free coordinates.
    pub temperature: f32,
}

/// What the judges read at one value of a binary attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    /// What the value is: `-2`, `+1`, `off`, `on`.
    pub label: String,
    /// The value asked (flow units).
    pub value: f32,
    /// Faces judged to show the attribute, at or above the judge's threshold
    /// (fraction of all faces).
    pub positive: f32,
    /// Faces a verified run could not call (within the judge's margin of its
    /// threshold, or unread).
    pub uncertain: f32,
}

/// A judged binary attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryRow {
    /// Attribute name.
    pub name: String,
    /// The rule in words (`happy ≥ 0.5`).
    pub rule: String,
    /// −2, −1, +1, +2, then the calibrated ends where the plugin has them.
    pub rates: Vec<Rate>,
}

/// A judged continuous attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousRow {
    /// Attribute name.
    pub name: String,
    /// The judge reading.
    pub reading: String,
    /// Spearman's ρ between the value asked and the value read.
    pub spearman: f32,
    /// (value asked, median read) at the lowest and at the highest value asked.
    pub ends: [(f32, f32); 2],
    /// Faces read.
    pub faces: usize,
}

/// The report card.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Faces per value asked.
    pub faces: usize,
    /// Judged binary attributes.
    pub binary: Vec<BinaryRow>,
    /// Judged continuous attributes.
    pub continuous: Vec<ContinuousRow>,
    /// Attributes no judge reads.
    pub unjudged: Vec<String>,
    /// Mean norm of the latents asked for ±1 and of the continuous sweeps.
    pub mean_norm: f32,
    /// Mean norm of N(0, I) latents of the same dimension.
    pub prior_norm: f32,
}

/// Values asked of a continuous attribute, evenly over its label range.
const CONTINUOUS_VALUES: usize = 10;

/// Measures the report card of the model's plugin.
/// `progress(name)` is called before each attribute.
pub fn evaluate(
    model: &Model,
    judges: &JudgeSet,
    req: &EvalRequest,
    progress: &mut dyn FnMut(&str),
) -> Result<Report> {
    if req.faces == 0 || req.faces > 100_000 {
        return Err(Error::invalid("--faces must be 1..=100000"));
    }
    if !(req.temperature.is_finite() && (0.0..=10.0).contains(&req.temperature)) {
        return Err(Error::invalid("--temperature must be between 0 and 10"));
    }
    let plugin = model.require_plugin()?;
    if plugin.judges().is_empty() {
        return Err(Error::invalid(
            "this plugin has no judge map: nothing to evaluate",
        ));
    }
    let k = plugin.attributes().len();
    let (mut norm_sum, mut norm_count) = (0f64, 0usize);
    let mut report = Report {
        faces: req.faces,
        binary: Vec::new(),
        continuous: Vec::new(),
        unjudged: Vec::new(),
        mean_norm: 0.0,
        prior_norm: 0.0,
    };
    for (index, a) in plugin.attributes().iter().enumerate() {
        let Some(rule) = plugin.judges().rule(&a.name) else {
            report.unjudged.push(a.name.clone());
            continue;
        };
        progress(&a.name);
        match (a.kind, rule.threshold) {
            (AttributeKind::Binary, Some(t)) => {
                let mut asked: Vec<(String, f32)> = [-2.0f32, -1.0, 1.0, 2.0]
                    .iter()
                    .map(|&v| (format!("{v:+}"), v))
                    .collect();
                if let Some(c) = &rule.calibrated {
                    asked.push(("off".into(), c.off));
                    asked.push(("on".into(), c.on));
                }
                let mut rates = Vec::new();
                for (label, value) in asked {
                    let mut values = vec![None; k];
                    values[index] = Some(a.checked_flow_value(value)?);
                    let (z, readings) = judged_draws(
                        model,
                        judges,
                        &vec![values; req.faces],
                        req.seed,
                        req.temperature,
                    )?;
                    if value.abs() == 1.0 {
                        norm_sum += sum_of_norms(&z);
                        norm_count += z.count();
                    }
                    // Shown: at or above the threshold, as the labeller decides
                    // (the margin only says how many a verified run would redraw).
                    let tally = plugin.judges().tally(&a.name, &readings);
                    rates.push(Rate {
                        label,
                        value,
                        positive: tally.shown,
                        uncertain: tally.uncalled,
                    });
                }
                let margin = if rule.margin > 0.0 {
                    format!(" ± {}", rule.margin)
                } else {
                    String::new()
                };
                report.binary.push(BinaryRow {
                    name: a.name.clone(),
                    rule: format!("{} ≥ {t}{margin}", rule.reading),
                    rates,
                });
            }
            (AttributeKind::Continuous, None) => {
                let values: Vec<f32> = (0..CONTINUOUS_VALUES)
                    .map(|b| {
                        a.label_min
                            + (a.label_max - a.label_min) * b as f32
                                / (CONTINUOUS_VALUES - 1) as f32
                    })
                    .collect();
                let mut asked = Vec::with_capacity(req.faces);
                let mut per_face = Vec::with_capacity(req.faces);
                for i in 0..req.faces {
                    let v = values[i % CONTINUOUS_VALUES];
                    let mut row = vec![None; k];
                    row[index] = Some(a.checked_flow_value(v)?);
                    asked.push(row);
                    per_face.push(v);
                }
                let (z, readings) = judged_draws(model, judges, &asked, req.seed, req.temperature)?;
                norm_sum += sum_of_norms(&z);
                norm_count += z.count();
                let pairs: Vec<(f32, f32)> = per_face
                    .iter()
                    .zip(&readings)
                    .filter_map(|(&v, r)| match plugin.judges().verdict(&a.name, r) {
                        Verdict::Value(read) => Some((v, read)),
                        _ => None,
                    })
                    .collect();
                let (x, y): (Vec<f32>, Vec<f32>) = pairs.iter().copied().unzip();
                let median_at = |v: f32| {
                    let mut at: Vec<f32> = pairs.iter().filter(|p| p.0 == v).map(|p| p.1).collect();
                    at.sort_by(f32::total_cmp);
                    at.get(at.len() / 2).copied().unwrap_or(f32::NAN)
                };
                let (lo, hi) = (values[0], values[CONTINUOUS_VALUES - 1]);
                report.continuous.push(ContinuousRow {
                    name: a.name.clone(),
                    reading: rule.reading.clone(),
                    spearman: spearman(&x, &y),
                    ends: [(lo, median_at(lo)), (hi, median_at(hi))],
                    faces: pairs.len(),
                });
            }
            // A rule that does not fit the attribute's kind is not measured.
            _ => report.unjudged.push(a.name.clone()),
        }
    }
    // The prior: N(0, I) latents of another seed's stream, as many as measured (≥ 1000).
    let dim = model.latent_dim();
    let prior = norm_count.max(1000);
    let prior_sum: f64 = (0..prior)
        .map(|i| {
            let row = latents::seeded_row(req.seed ^ 0x0005_eed0_fa11, i, dim, 1.0);
            f64::from(row.iter().map(|v| v * v).sum::<f32>().sqrt())
        })
        .sum();
    report.mean_norm = (norm_sum / norm_count.max(1) as f64) as f32;
    report.prior_norm = (prior_sum / prior as f64) as f32;
    Ok(report)
}

/// The sum of the rows' Euclidean norms.
fn sum_of_norms(z: &latents::Latents) -> f64 {
    (0..z.count())
        .map(|i| f64::from(z.row(i).iter().map(|v| v * v).sum::<f32>().sqrt()))
        .sum()
}

/// Ranks of `v` from 1, ties sharing their mean rank.
fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            r[o] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson's on ranks, ties averaged); NaN
/// with fewer than 3 pairs or when either side is constant.
pub fn spearman(x: &[f32], y: &[f32]) -> f32 {
    if x.len() != y.len() || x.len() < 3 {
        return f32::NAN;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return f32::NAN;
    }
    (sxy / (sxx * syy).sqrt()) as f32
}

fn percent(v: f32) -> String {
    format!("{:.1} %", 100.0 * v)
}

/// The report card as markdown; `command` is the line that measured it.
pub fn markdown(r: &Report, command: &str) -> String {
    let mut md = String::from("# plugen eval\n\n");
    md += &format!(
        "`{command}`: {} fresh faces per value, the same identities at every value; \
         the share judged to show each attribute (plugen's judges, models/judges).\n\n",
        r.faces
    );
    if !r.binary.is_empty() {
        md += "| # | attribute | judge | −2 | −1 | +1 | +2 | calibrated off | calibrated on |\n";
        md += "|---|---|---|---|---|---|---|---|---|\n";
        for (n, row) in r.binary.iter().enumerate() {
            let at = |label: &str| {
                row.rates
                    .iter()
                    .find(|x| x.label == label)
                    .map(|x| percent(x.positive))
                    .unwrap_or_else(|| "–".into())
            };
            let end = |label: &str| {
                row.rates
                    .iter()
                    .find(|x| x.label == label)
                    .map(|x| format!("{} at {:+.2}", percent(x.positive), x.value))
                    .unwrap_or_else(|| "not calibrated".into())
            };
            md += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                n + 1,
                row.name,
                row.rule,
                at("-2"),
                at("-1"),
                at("+1"),
                at("+2"),
                end("off"),
                end("on"),
            );
        }
        md += "\nA face counts as shown when the judge reads it at or above the threshold \
               (the margin, where there is one, only decides single faces in verified runs); \
               an end that `plugen calibrate` did not reach holds the value that came nearest. \
               In eval.png, per attribute (numbered as here): −2 and −1 (reds), +1 and +2 (blues), \
               the calibrated off (grey) and on (green) ends; dotted lines at 95 % and 3 %.\n\n";
    }
    if !r.continuous.is_empty() {
        md += "| attribute | judge | Spearman ρ (asked, read) | median read at the lowest / highest value asked | faces |\n";
        md += "|---|---|---|---|---|\n";
        for c in &r.continuous {
            md += &format!(
                "| {} | {} | {:.3} | {:.1} at {:.1} / {:.1} at {:.1} | {} |\n",
                c.name,
                c.reading,
                c.spearman,
                c.ends[0].1,
                c.ends[0].0,
                c.ends[1].1,
                c.ends[1].0,
                c.faces
            );
        }
        md += "\n";
    }
    if !r.unjudged.is_empty() {
        md += &format!(
            "Unjudged (no judge in plugen reads them): {}.\n\n",
            r.unjudged.join(", ")
        );
    }
    md += &format!(
        "Mean |z| of the conditional latents: {:.3} (N(0, I): {:.3}; ratio {:.3}).\n",
        r.mean_norm,
        r.prior_norm,
        r.mean_norm / r.prior_norm
    );
    md
}

/// Colours of the bars, in the order of [`Rate`]s: −2, −1, +1, +2, off, on.
const BAR_COLOURS: [[u8; 3]; 6] = [
    [120, 40, 40],
    [200, 110, 110],
    [120, 170, 220],
    [30, 80, 160],
    [150, 150, 150],
    [40, 160, 70],
];

/// The binary rates as grouped bars (numbered as in the markdown table),
/// with guide lines at the calibration targets (95 % and 3 %).
pub fn chart(r: &Report) -> image::RgbImage {
    const BAR: u32 = 12;
    const GROUP_GAP: u32 = 24;
    const PLOT: u32 = 200;
    const MARGIN: u32 = 20;
    let groups = r.binary.len().max(1) as u32;
    let group = 6 * BAR + GROUP_GAP;
    let width = 2 * MARGIN + groups * group;
    let height = PLOT + 2 * MARGIN + 16;
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let base = MARGIN + PLOT;
    let y_of = |rate: f32| base - (rate.clamp(0.0, 1.0) * PLOT as f32).round() as u32;
    for target in [
        crate::model::judges::map::ON_RATE,
        crate::model::judges::map::OFF_RATE,
    ] {
        let y = y_of(target);
        for x in (MARGIN / 2..width - MARGIN / 2).step_by(4) {
            img.put_pixel(x, y, image::Rgb([230, 60, 60]));
            img.put_pixel(x + 1, y, image::Rgb([230, 60, 60]));
        }
    }
    for (g, row) in r.binary.iter().enumerate() {
        let x0 = MARGIN + g as u32 * group;
        let slots = ["-2", "-1", "+1", "+2", "off", "on"];
        for (s, label) in slots.iter().enumerate() {
            let Some(rate) = row.rates.iter().find(|x| x.label == *label) else {
                continue;
            };
            let colour = image::Rgb(BAR_COLOURS[s]);
            for y in y_of(rate.positive)..base {
                for x in x0 + s as u32 * BAR..x0 + (s as u32 + 1) * BAR - 1 {
                    img.put_pixel(x, y, colour);
                }
            }
        }
        crate::io::imaging::draw_number(&mut img, g + 1, x0 + 3 * BAR - 4, base + 6);
    }
    for x in MARGIN / 2..width - MARGIN / 2 {
        img.put_pixel(x, base, image::Rgb([0, 0, 0]));
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_by_hand() {
        // Monotone either way.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 90.0]) - 1.0).abs() < 1e-6);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-6);
        // x = 1..5, y = 5 6 7 8 7: ranks of y 1 2 3.5 5 3.5; centred x −2 −1 0 1 2,
        // y −2 −1 0.5 2 0.5: Σxy = 4+1+0+2+1 = 8, Σx² = 10, Σy² = 4+1+.25+4+.25 = 9.5,
        // ρ = 8 / √95 = 0.820783.
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]);
        assert!((rho - 0.820_783).abs() < 1e-5, "{rho}");
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(spearman(&[1.0, 2.0], &[1.0, 2.0]).is_nan());
    }
}
