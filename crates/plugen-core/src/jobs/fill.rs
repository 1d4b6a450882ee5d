//! Filling the rare cells of a real dataset: count the joint cells of some
//! attributes in the user's own attribute table, and generate exactly the
//! faces that bring every cell up to a target.
//!
//! A cell is one combination of bins, one bin per `--by` attribute: a binary
//! attribute has its two classes, a continuous one `BINS` equal-width bins
//! over the plugin's label range. Each generated face requests its cell
//! (binary: the class; continuous: a value drawn uniformly inside the bin);
//! the other attributes and the free coordinates come from the prior. With
//! verification, a face whose readout falls outside its cell is drawn again
//! (a bounded number of times); cells that almost never accept are reported,
//! not looped on.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::imaging;
use crate::io::labels::is_identifier;
use crate::io::latents::Latents;
pub use crate::jobs::dataset::Verify;
use crate::jobs::dataset::{self, MAX_CELLS};
use crate::jobs::loaded::Model;
use crate::model::attributes::AttributeKind;
use crate::model::judges::{JudgeMap, JudgeSet, Reading, Verdict};
use crate::model::plugin::Plugin;
use crate::rng::SeededRng;

/// Default bins of a continuous attribute.
pub const DEFAULT_BINS: usize = 3;
/// Name of the fill description inside the output folder.
pub const FILL_FILE: &str = "fill.json";

/// One `--by` attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// Attribute name.
    pub name: String,
    /// Its index in the plugin.
    pub index: usize,
    /// Binary or continuous.
    pub kind: AttributeKind,
    /// Number of bins (2 for binary).
    pub bins: usize,
    /// Label range the bins split (continuous only).
    pub range: (f32, f32),
    /// Binary only: the values asked for bins 0 and 1, the calibrated
    /// off/on ends where the plugin has them (else −1 and +1, the class
    /// means).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<(f32, f32)>,
}

impl Axis {
    /// Bin of a label from the user's table (binary: 0 or 1; continuous: label units).
    pub fn bin_of_label(&self, label: f32) -> Option<usize> {
        match self.kind {
            AttributeKind::Binary if label == 0.0 => Some(0),
            AttributeKind::Binary if label == 1.0 => Some(1),
            AttributeKind::Binary => None,
            AttributeKind::Continuous => Some(self.continuous_bin(label)),
        }
    }

    /// Bin of a plugin readout (user units: binary around ±1, continuous in label units).
    pub fn bin_of_readout(&self, value: f32) -> usize {
        match self.kind {
            AttributeKind::Binary => usize::from(value > 0.0),
            AttributeKind::Continuous => self.continuous_bin(value),
        }
    }

    fn continuous_bin(&self, v: f32) -> usize {
        let (lo, hi) = self.range;
        let t = ((v - lo) / (hi - lo) * self.bins as f32).floor();
        if t.is_nan() {
            return 0;
        }
        (t.max(0.0) as usize).min(self.bins - 1)
    }

    /// The value a face of bin `b` requests, in user units.
    fn request(&self, b: usize, rng: &mut SeededRng) -> f32 {
        match self.kind {
            AttributeKind::Binary => {
                let (off, on) = self.ends.unwrap_or((-1.0, 1.0));
                if b == 1 { on } else { off }
            }
            AttributeKind::Continuous => {
                let (lo, hi) = self.range;
                let w = (hi - lo) / self.bins as f32;
                lo + w * (b as f32 + rng.uniform())
            }
        }
    }

    /// Bin `b` in words: `smile=1`, `skin_tone∈[20.0, 40.0)`.
    fn describe(&self, b: usize) -> String {
        match self.kind {
            AttributeKind::Binary => format!("{}={b}", self.name),
            AttributeKind::Continuous => {
                let (lo, hi) = self.range;
                let w = (hi - lo) / self.bins as f32;
                let close = if b + 1 == self.bins { ']' } else { ')' };
                format!(
                    "{}∈[{:.3}, {:.3}{close}",
                    self.name,
                    lo + w * b as f32,
                    lo + w * (b + 1) as f32
                )
            }
        }
    }
}

/// The joint cells of some attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSpec {
    /// The attributes, first varying slowest.
    pub axes: Vec<Axis>,
}

impl CellSpec {
    /// Parses `ATTR[:BINS],ATTR[:BINS]...` against a plugin's attributes.
    pub fn parse(plugin: &Plugin, by: &str) -> Result<Self> {
        let mut axes: Vec<Axis> = Vec::new();
        for part in by.split(',') {
            let part = part.trim();
            let (name, bins) = match part.split_once(':') {
                Some((n, b)) => {
                    let bins = b
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|b| (2..=100).contains(b));
                    let Some(bins) = bins else {
                        return Err(Error::invalid(format!(
                            "--by {part}: BINS must be a whole number 2..=100"
                        )));
                    };
                    (n.trim(), Some(bins))
                }
                None => (part, None),
            };
            if name.is_empty() {
                return Err(Error::invalid("--by: an empty attribute name"));
            }
            let index = plugin.index_of(name)?;
            if axes.iter().any(|a| a.index == index) {
                return Err(Error::invalid(format!("--by: {name} appears twice")));
            }
            let a = &plugin.attributes()[index];
            let bins = match (a.kind, bins) {
                (AttributeKind::Binary, None | Some(2)) => 2,
                (AttributeKind::Binary, Some(b)) => {
                    return Err(Error::invalid(format!(
                        "--by {name}:{b}: {name} is binary, it has 2 bins"
                    )));
                }
                (AttributeKind::Continuous, b) => b.unwrap_or(DEFAULT_BINS),
            };
            axes.push(Axis {
                name: name.to_string(),
                index,
                kind: a.kind,
                bins,
                range: (a.label_min, a.label_max),
                ends: plugin
                    .judges()
                    .rule(name)
                    .and_then(|r| r.calibrated.as_ref())
                    .filter(|_| a.kind == AttributeKind::Binary)
                    .map(|c| (c.off, c.on)),
            });
        }
        let spec = Self { axes };
        if spec.cells() > MAX_CELLS {
            return Err(Error::invalid(format!(
                "--by makes {} cells; at most {MAX_CELLS}",
                spec.cells()
            )));
        }
        Ok(spec)
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.axes.iter().map(|a| a.bins).product()
    }

    /// The cell of one bin per axis (mixed radix, first axis slowest).
    pub fn cell_of(&self, bins: &[usize]) -> usize {
        self.axes
            .iter()
            .zip(bins)
            .fold(0, |cell, (a, &b)| cell * a.bins + b)
    }

    /// The bins of a cell, one per axis.
    pub fn bins_of(&self, mut cell: usize) -> Vec<usize> {
        let mut bins = vec![0; self.axes.len()];
        for (k, a) in self.axes.iter().enumerate().rev() {
            bins[k] = cell % a.bins;
            cell /= a.bins;
        }
        bins
    }

    /// A cell in words: `smile=1, male=0`.
    pub fn describe(&self, cell: usize) -> String {
        self.axes
            .iter()
            .zip(self.bins_of(cell))
            .map(|(a, b)| a.describe(b))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The cell the judges put a face in: each axis by its judge where the
    /// judge map has one (and the judge could read it), else by the plugin's
    /// readout (user units, all plugin attributes); `None` when a judge's
    /// reading is too close to its threshold to call, or the judge could not
    /// read the face.
    pub fn cell_of_judged(
        &self,
        map: &JudgeMap,
        reading: &Reading,
        readout: &[f32],
    ) -> Option<usize> {
        let bins = self
            .axes
            .iter()
            .map(|a| match map.verdict(&a.name, reading) {
                Verdict::Class(shown) => Some(usize::from(shown)),
                Verdict::Value(v) => Some(a.continuous_bin(v)),
                Verdict::Uncertain | Verdict::Unread => None,
                Verdict::Unjudged => {
                    Some(a.bin_of_readout(readout.get(a.index).copied().unwrap_or(f32::NAN)))
                }
            })
            .collect::<Option<Vec<usize>>>()?;
        Some(self.cell_of(&bins))
    }

    /// The cell a latent's readout (user units, all plugin attributes) falls in.
    pub fn cell_of_readout(&self, readout: &[f32]) -> usize {
        let bins: Vec<usize> = self
            .axes
            .iter()
            .map(|a| a.bin_of_readout(readout.get(a.index).copied().unwrap_or(f32::NAN)))
            .collect();
        self.cell_of(&bins)
    }
}

/// Cell counts of the user's dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Census {
    /// Rows per cell.
    pub counts: Vec<usize>,
    /// Rows with a `--by` attribute missing (counted apart, not filled).
    pub unknown: usize,
}

/// Largest attribute table read (256 MiB).
const MAX_TABLE_BYTES: u64 = 256 << 20;

/// Counts the cells of the attribute table at `path`: a CSV with a header
/// naming its columns; the `--by` attributes' columns are read (0/1 for
/// binary, label units for continuous, empty = unknown), every other column
/// (e.g. `file_name`) is ignored. Fields are split on commas: no quoting.
pub fn census(spec: &CellSpec, path: &Path) -> Result<Census> {
    let bytes = fsutil::read_limited(path, MAX_TABLE_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::format(path, "not UTF-8 text"))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| Error::format(path, "empty: expected a header row of column names"))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let columns: Vec<usize> = spec
        .axes
        .iter()
        .map(|a| {
            names.iter().position(|n| *n == a.name).ok_or_else(|| {
                let shown: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| is_identifier(n))
                    .take(12)
                    .collect();
                Error::format(
                    path,
                    format!(
                        "no column {:?} (the header has: {})",
                        a.name,
                        shown.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    let mut census = Census {
        counts: vec![0; spec.cells()],
        unknown: 0,
    };
    let mut rows = 0usize;
    for (line_no, line) in lines {
        rows += 1;
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != names.len() {
            return Err(Error::format(
                path,
                format!(
                    "line {}: {} fields, the header has {}",
                    line_no + 1,
                    cells.len(),
                    names.len()
                ),
            ));
        }
        let mut bins = Vec::with_capacity(columns.len());
        for (a, &c) in spec.axes.iter().zip(&columns) {
            let cell = cells[c].trim();
            if cell.is_empty() {
                break;
            }
            let bad = || {
                let want = match a.kind {
                    AttributeKind::Binary => "0 or 1",
                    AttributeKind::Continuous => "a finite number",
                };
                Error::format(
                    path,
                    format!("line {}: {} = {cell:?} is not {want}", line_no + 1, a.name),
                )
            };
            let v = cell
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(bad)?;
            bins.push(a.bin_of_label(v).ok_or_else(bad)?);
        }
        if bins.len() == spec.axes.len() {
            census.counts[spec.cell_of(&bins)] += 1;
        } else {
            census.unknown += 1;
        }
    }
    if rows == 0 {
        return Err(Error::format(path, "no rows under the header"));
    }
    Ok(census)
}

/// How many faces to aim for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Target {
    /// Every cell up to the largest cell's count.
    Largest,
    /// Every cell up to at least this many.
    PerCell(usize),
    /// Exactly this many faces, spent so the final cells are as even as possible.
    Total(usize),
}

/// Faces to generate per cell for `counts` to reach `target`.
pub fn plan(counts: &[usize], target: Target) -> Vec<usize> {
    match target {
        Target::Largest => {
            let top = counts.iter().copied().max().unwrap_or(0);
            counts.iter().map(|&c| top - c).collect()
        }
        Target::PerCell(n) => counts.iter().map(|&c| n.saturating_sub(c)).collect(),
        Target::Total(n) => {
            // Water-filling: the highest level L whose deficit fits the budget,
            // then one more face each to the lowest cells at L, first cell first.
            let need = |l: usize| counts.iter().map(|&c| l.saturating_sub(c)).sum::<usize>();
            let (mut lo, mut hi) = (0usize, counts.iter().copied().max().unwrap_or(0) + n);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if need(mid) <= n {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            let mut add: Vec<usize> = counts.iter().map(|&c| lo.saturating_sub(c)).collect();
            let mut left = n - need(lo);
            for (a, &c) in add.iter_mut().zip(counts) {
                if left == 0 {
                    break;
                }
                if c + *a == lo {
                    *a += 1;
                    left -= 1;
                }
            }
            add
        }
    }
}

/// What a fill is for: the cells, the dataset's counts, and the faces to make per cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillPlan {
    /// The cells.
    pub spec: CellSpec,
    /// The user's dataset, counted.
    pub census: Census,
    /// Faces to generate per cell (see [`plan`]).
    pub planned: Vec<usize>,
}

impl FillPlan {
    /// The plan for filling the table at `have` along `by` (`ATTR[:BINS],…`)
    /// up to `target`: its cells, counted, and the faces each needs.
    pub fn for_table(plugin: &Plugin, have: &Path, by: &str, target: Target) -> Result<Self> {
        let spec = CellSpec::parse(plugin, by)?;
        let census = census(&spec, have)?;
        let planned = plan(&census.counts, target);
        Ok(Self {
            spec,
            census,
            planned,
        })
    }
}

/// How to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillRequest {
    /// Run seed: face `i`, try `t` uses random stream `i + t·2⁴⁰` of it.
    pub seed: u64,
    /// Scale of the free flow coordinates.
    pub temperature: f32,
    /// PNG upscaling.
    pub scale: u32,
    /// Which check a face must pass to count for its cell (else it is redrawn).
    pub verify: Verify,
    /// Draws per face at most (with a check).
    pub max_tries: usize,
}

impl FillRequest {
    /// A request as `plugen fill` makes it: 16 draws per face at most with the
    /// judges, 8 otherwise.
    pub fn new(seed: u64, temperature: f32, scale: u32, verify: Verify) -> Self {
        Self {
            seed,
            temperature,
            scale,
            verify,
            max_tries: if verify == Verify::Judge { 16 } else { 8 },
        }
    }
}

/// What happened in one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellReport {
    /// The cell in words.
    pub cell: String,
    /// Rows in the user's dataset.
    pub before: usize,
    /// Faces planned (in this shard, for a sharded run).
    pub planned: usize,
    /// Faces written.
    pub written: usize,
    /// Draws made (≥ written; equal without a check).
    pub draws: usize,
    /// Written / draws.
    pub acceptance: f32,
    /// Given up on: acceptance too low to reach the plan.
    pub unreachable: bool,
}

/// Generates the planned faces into `out` (a new folder, or an empty one):
/// PNGs, `manifest.jsonl` (sidecars), `metadata.jsonl` and `fill.json`.
/// `judges` are needed for [`Verify::Judge`], which also needs the plugin's
/// judge map; a face reads the same alone or in a batch, so its fate depends
/// only on the seed and its index (shards stay byte-identical).
pub fn fill(
    model: &Model,
    fill_plan: &FillPlan,
    req: &FillRequest,
    judges: Option<&JudgeSet>,
    out: &Path,
    shard: dataset::Shard,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<CellReport>> {
    let FillPlan {
        spec,
        census,
        planned,
    } = fill_plan;
    let plugin = model.require_plugin()?;
    let judges = dataset::judges_for(req.verify, plugin, judges)?;
    if !(req.temperature.is_finite() && (0.0..=10.0).contains(&req.temperature)) {
        return Err(Error::invalid("--temperature must be between 0 and 10"));
    }
    let planned_total: usize = planned.iter().sum();
    if planned_total > dataset::MAX_IMAGES {
        return Err(Error::invalid(format!(
            "{planned_total} faces planned; at most {}",
            dataset::MAX_IMAGES
        )));
    }
    if out.join(FILL_FILE).exists() || out.join(dataset::MANIFEST_FILE).exists() {
        return Err(Error::format(
            out,
            "already holds a run; choose another --out",
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let description = serde_json::json!({
        "plan": fill_plan, "request": req,
        "generator_sha256": model.generator_sha256(),
        "plugin_sha256": plugin.weights_sha256(),
    });
    let text =
        serde_json::to_string_pretty(&description).map_err(|e| Error::invalid(e.to_string()))?;
    fsutil::write_atomic(&out.join(FILL_FILE), text.as_bytes(), Overwrite::Never)?;

    // Face i belongs to the i-th planned slot, cells in order.
    let slots: Vec<usize> = planned
        .iter()
        .enumerate()
        .flat_map(|(cell, &n)| std::iter::repeat_n(cell, n))
        .collect();
    let mut reports: Vec<CellReport> = (0..spec.cells())
        .map(|c| CellReport {
            cell: spec.describe(c),
            before: census.counts[c],
            // This shard's share of the cell (all of it without --shard).
            planned: slots
                .iter()
                .enumerate()
                .filter(|&(i, &cell)| cell == c && shard.owns(i))
                .count(),
            written: 0,
            draws: 0,
            acceptance: 0.0,
            unreachable: false,
        })
        .collect();
    let manifest_path = out.join(dataset::MANIFEST_FILE);
    let mut manifest = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&manifest_path)
        .map_err(|e| Error::io(&manifest_path, e))?;
    let names: Vec<String> = plugin.attributes().iter().map(|a| a.name.clone()).collect();
    let dim = model.latent_dim();
    let tries = if req.verify == Verify::Off {
        1
    } else {
        req.max_tries.max(1)
    };
    // (face, try) pairs still to draw.
    let mut pending: Vec<(usize, usize)> = (0..slots.len())
        .filter(|&i| shard.owns(i))
        .map(|i| (i, 0))
        .collect();
    let total = pending.len();
    let mut done = 0usize;
    // Only the cells' attributes are checked, so only their judges run.
    let checked = plugin
        .judges()
        .only(spec.axes.iter().map(|a| a.name.as_str()));
    while !pending.is_empty() {
        let batch: Vec<(usize, usize)> = pending.drain(..pending.len().min(64)).collect();
        let mut requested = Vec::with_capacity(batch.len());
        let mut codes = Vec::with_capacity(batch.len() * dim);
        for &(i, t) in &batch {
            let mut rng = SeededRng::new(req.seed, i as u64 + ((t as u64) << 40));
            let mut values = vec![None; names.len()];
            for (a, b) in spec.axes.iter().zip(spec.bins_of(slots[i])) {
                let v = a.request(b, &mut rng);
                values[a.index] = Some(plugin.attributes()[a.index].checked_flow_value(v)?);
            }
            codes.extend(plugin.sample_code(&values, req.temperature, &mut rng));
            requested.push(values);
        }
        let (latents, readouts) = dataset::decode_rows(plugin, &Latents::new(dim, codes)?)?;
        // With the judges, every draw is rendered and read (a face reads the
        // same alone or in a batch, so its fate depends only on its index).
        let (drawn, judged) = match judges {
            Some(j) => {
                let images = dataset::render_rows(model, &latents)?;
                let readings = j.read_for(&images.iter().collect::<Vec<_>>(), &checked)?;
                (Some(images), readings)
            }
            None => (None, Vec::new()),
        };
        let mut keep = Vec::new();
        for (j, &(i, t)) in batch.iter().enumerate() {
            let cell = slots[i];
            let r = &mut reports[cell];
            r.draws += 1;
            let accepted = match req.verify {
                Verify::Off => true,
                Verify::Plugin => spec.cell_of_readout(&readouts[j]) == cell,
                Verify::Judge => {
                    spec.cell_of_judged(plugin.judges(), &judged[j], &readouts[j]) == Some(cell)
                }
            };
            if accepted {
                r.written += 1;
                keep.push(j);
                continue;
            }
            r.unreachable |= dataset::hopeless(r.written, r.draws);
            if t + 1 < tries && !r.unreachable {
                pending.push((i, t + 1));
            }
        }
        let kept = Latents::new(
            dim,
            keep.iter().flat_map(|&j| latents.row(j).to_vec()).collect(),
        )?;
        let images: Vec<image::RgbImage> = match drawn {
            Some(mut all) => keep.iter().map(|&j| std::mem::take(&mut all[j])).collect(),
            None if keep.is_empty() => Vec::new(),
            None => dataset::render_rows(model, &kept)?,
        };
        let mut lines = String::new();
        for (image, &j) in images.iter().zip(&keep) {
            let i = batch[j].0;
            let name = dataset::image_name(i);
            imaging::save_png(&out.join(&name), image, req.scale, Overwrite::Never)?;
            lines.push_str(&dataset::manifest_line(&dataset::Generated {
                model,
                index: i,
                latent: latents.row(j),
                seed: req.seed,
                temperature: req.temperature,
                requested: &requested[j],
                readout: &readouts[j],
                judged: judged.get(j),
            })?);
        }
        manifest
            .write_all(lines.as_bytes())
            .map_err(|e| Error::io(&manifest_path, e))?;
        done += keep.len();
        progress(done, total);
    }
    drop(manifest);
    dataset::sort_manifest(&manifest_path)?;
    for r in &mut reports {
        r.acceptance = if r.draws == 0 {
            1.0
        } else {
            r.written as f32 / r.draws as f32
        };
    }
    dataset::write_metadata(out, &names)?;
    imaging::save_png(
        &out.join(REPORT_FILE),
        &report_chart(&reports),
        1,
        Overwrite::Allow,
    )?;
    Ok(reports)
}

/// Name of the bar chart a fill writes next to its images.
pub const REPORT_FILE: &str = "fill-report.png";

/// The chart of a fill folder rebuilt from its `fill.json` plan and the
/// image indexes it holds (what [`crate::jobs::merge`] needs): face `i` belongs to
/// the cell whose planned slots cover `i`.
pub fn chart_of_folder(plan: &FillPlan, indexes: &[u64]) -> image::RgbImage {
    let mut ends = Vec::with_capacity(plan.planned.len());
    let mut sum = 0u64;
    for &p in &plan.planned {
        sum += p as u64;
        ends.push(sum);
    }
    let mut written = vec![0usize; plan.planned.len()];
    for &i in indexes {
        if let Some(cell) = ends.iter().position(|&e| i < e) {
            written[cell] += 1;
        }
    }
    let reports: Vec<CellReport> = (0..plan.planned.len())
        .map(|c| CellReport {
            cell: plan.spec.describe(c),
            before: plan.census.counts.get(c).copied().unwrap_or(0),
            planned: plan.planned[c],
            written: written[c],
            draws: written[c],
            acceptance: 1.0,
            unreachable: false,
        })
        .collect();
    report_chart(&reports)
}

/// A bar chart of the cells: grey = rows in the dataset, blue = faces added,
/// one bar per cell in table order, numbered from 1 under each bar (the
/// printed table names the cells in the same order).
pub fn report_chart(reports: &[CellReport]) -> image::RgbImage {
    const BAR: u32 = 18;
    const GAP: u32 = 10;
    const PLOT: u32 = 200;
    const MARGIN: u32 = 20;
    let n = reports.len() as u32;
    let width = 2 * MARGIN + n * (BAR + GAP);
    let height = PLOT + 2 * MARGIN + 16;
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let top = reports
        .iter()
        .map(|r| r.before + r.written)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let base = MARGIN + PLOT;
    let px = |v: usize| ((v as f64 / top) * f64::from(PLOT)).round() as u32;
    for (k, r) in reports.iter().enumerate() {
        let x0 = MARGIN + k as u32 * (BAR + GAP);
        let before = px(r.before);
        let after = px(r.before + r.written);
        for y in (base - after)..base {
            let colour = if y >= base - before {
                image::Rgb([150, 150, 150])
            } else {
                image::Rgb([45, 110, 200])
            };
            for x in x0..x0 + BAR {
                img.put_pixel(x, y, colour);
            }
        }
        imaging::draw_number(&mut img, k + 1, x0 + 2, base + 6);
    }
    for x in MARGIN / 2..width - MARGIN / 2 {
        img.put_pixel(x, base, image::Rgb([0, 0, 0]));
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CellSpec {
        CellSpec {
            axes: vec![
                Axis {
                    name: "smile".into(),
                    index: 0,
                    kind: AttributeKind::Binary,
                    bins: 2,
                    range: (0.0, 1.0),
                    ends: None,
                },
                Axis {
                    name: "tone".into(),
                    index: 1,
                    kind: AttributeKind::Continuous,
                    bins: 3,
                    range: (0.0, 90.0),
                    ends: None,
                },
            ],
        }
    }

    /// The judges decide the axes they have a rule for; a reading too near
    /// its threshold puts the face in no cell; an unjudged axis falls back
    /// to the plugin's readout.
    #[test]
    fn judged_cells_follow_the_judge_map() {
        let spec = spec();
        let map: JudgeMap = serde_json::from_str(
            r#"{"smile": {"reading": "happy", "threshold": 0.5, "margin": 0.1}}"#,
        )
        .expect("map");
        let reading = |h: f32| Reading::from([("happy".to_string(), h)]);
        // Readout says not smiling, tone 50 (bin 1); the judge says smiling.
        let readout = [-1.0, 50.0];
        assert_eq!(spec.cell_of_judged(&map, &reading(0.9), &readout), Some(4));
        assert_eq!(spec.cell_of_judged(&map, &reading(0.2), &readout), Some(1));
        assert_eq!(spec.cell_of_judged(&map, &reading(0.55), &readout), None);
        assert_eq!(spec.cell_of_readout(&readout), 1);
    }

    #[test]
    fn cells_are_mixed_radix_and_round_trip() {
        let s = spec();
        assert_eq!(s.cells(), 6);
        for cell in 0..6 {
            assert_eq!(s.cell_of(&s.bins_of(cell)), cell);
        }
        assert_eq!(s.cell_of(&[1, 2]), 5);
        assert_eq!(s.describe(5), "smile=1, tone∈[60.000, 90.000]");
        // Readouts: binary by sign, continuous by bin, out-of-range into the edge bins.
        assert_eq!(s.cell_of_readout(&[0.8, 29.9]), 3);
        assert_eq!(s.cell_of_readout(&[-0.2, 30.0]), 1);
        assert_eq!(s.cell_of_readout(&[1.0, 500.0]), 5);
        assert_eq!(s.cell_of_readout(&[1.0, -5.0]), 3);
    }

    #[test]
    fn census_counts_cells_ignores_other_columns_and_counts_unknowns() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let path = dir.path().join("have.csv");
        let csv = "file_name,tone,smile,other\n\
                   a.jpg,10,1,x\n\
                   b.jpg,45,0,y\n\
                   c.jpg,89.9,1,z\n\
                   d.jpg,,1,w\n\
                   e.jpg,12,1,v\n";
        std::fs::write(&path, csv).map_err(|e| Error::io(&path, e))?;
        let c = census(&spec(), &path)?;
        assert_eq!(c.counts, vec![0, 1, 0, 2, 0, 1]);
        assert_eq!(c.unknown, 1);
        // Bad tables: one error naming the file and the problem.
        for (text, says) in [
            ("", "empty"),
            ("smile,tone\n", "no rows"),
            ("smile\n1\n", "no column \"tone\""),
            ("smile,tone\n1,2,3\n", "line 2: 3 fields"),
            ("smile,tone\n0.5,2\n", "smile = \"0.5\" is not 0 or 1"),
            (
                "smile,tone\n1,NaN\n",
                "tone = \"NaN\" is not a finite number",
            ),
        ] {
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
            let e = census(&spec(), &path).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains(says) && e.contains("have.csv")),
                "{text:?}: {e:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn chart_bars_scale_with_the_cells() {
        let cell = |before, written| CellReport {
            cell: String::new(),
            before,
            planned: written,
            written,
            draws: written,
            acceptance: 1.0,
            unreachable: false,
        };
        let img = report_chart(&[cell(100, 0), cell(20, 80), cell(50, 0)]);
        // Column heights at the middle of each bar: grey then blue above it.
        let grey = image::Rgb([150, 150, 150]);
        let blue = image::Rgb([45, 110, 200]);
        let column = |k: u32, colour| {
            (0..img.height())
                .filter(|&y| *img.get_pixel(20 + k * 28 + 9, y) == colour)
                .count()
        };
        assert_eq!((column(0, grey), column(0, blue)), (200, 0));
        assert_eq!((column(1, grey), column(1, blue)), (40, 160));
        assert_eq!((column(2, grey), column(2, blue)), (100, 0));
    }

    #[test]
    fn plans_reach_their_targets() {
        let counts = [50, 3, 20, 0];
        assert_eq!(plan(&counts, Target::Largest), vec![0, 47, 30, 50]);
        assert_eq!(plan(&counts, Target::PerCell(10)), vec![0, 7, 0, 10]);
        // 30 faces: level 11 costs 8 + 11 = 19, level 16 costs 13 + 16 = 29; one left over.
        let add = plan(&counts, Target::Total(30));
        assert_eq!(add.iter().sum::<usize>(), 30);
        assert_eq!(add, vec![0, 14, 0, 16]);
        // A budget beyond the largest cell keeps the cells even.
        let add = plan(&counts, Target::Total(200));
        let after: Vec<usize> = counts.iter().zip(&add).map(|(c, a)| c + a).collect();
        assert_eq!(add.iter().sum::<usize>(), 200);
        let (lo, hi) = (after.iter().min(), after.iter().max());
        assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{after:?}");
        assert_eq!(plan(&counts, Target::Total(0)), vec![0; 4]);
    }
}
