//! Batch sampling into a dataset folder: PNGs plus `manifest.jsonl`, one
//! line per image (its sidecar with the file name).
//!
//! Image `i` of a run with seed `s` uses random stream `i` of `s`, so a run can
//! be resumed (`resume`) and yields byte-identical files however it was split.
//! Each PNG is written atomically before its manifest line is appended, so the
//! manifest never names a file that is not there; on resume, a torn last line
//! is dropped and any image without a line is made again.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::fsutil::{self, Overwrite};
use crate::io::imaging;
use crate::io::latents::{self, Latents};
use crate::io::sidecar::{self, Sidecar};
use crate::jobs::loaded::Model;
use crate::jobs::steer;
use crate::model::attributes::AttributeKind;
use crate::model::judges::{JudgeMap, JudgeSet, Reading, Verdict};
use crate::model::plugin::Plugin;
use crate::rng::SeededRng;

pub use crate::io::sidecar::MANIFEST_FILE;
/// Largest number of cells (the product of the bins) of a balanced run or a fill.
pub const MAX_CELLS: usize = 4096;
/// Name of the loader-ready table inside the output folder (one JSON object per image).
pub const METADATA_FILE: &str = "metadata.jsonl";
/// Name of the run description inside the output folder.
pub const RUN_FILE: &str = "run.json";
/// Largest number of images in one run.
pub const MAX_IMAGES: usize = 10_000_000;

/// What to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRequest {
    /// Number of images.
    pub count: usize,
    /// Run seed.
    pub seed: u64,
    /// Attributes fixed for every image (user units).
    pub sets: Vec<(String, f32)>,
    /// Attributes (comma-separated) whose joint values are split evenly
    /// across the images: image `i` takes cell `i mod cells`.
    pub balance: Option<String>,
    /// Bins for balancing a continuous attribute.
    pub bins: usize,
    /// Scale of the free flow coordinates (or of the latent, without a plugin).
    pub temperature: f32,
    /// PNG upscaling factor.
    pub scale: u32,
    /// The check an image with asked binary attributes must pass (else it is
    /// redrawn with fresh free coordinates).
    #[serde(default)]
    pub verify: Verify,
    /// Draws per image at most, with a check (at least 1).
    #[serde(default = "one")]
    pub max_tries: usize,
    /// Generator weights hash (filled in by [`sample`]).
    #[serde(default)]
    pub generator_sha256: String,
    /// Plugin weights hash (filled in by [`sample`]).
    #[serde(default)]
    pub plugin_sha256: Option<String>,
}

fn one() -> usize {
    1
}

/// The check a generated face must pass to count (else it is redrawn).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// None: every draw counts.
    #[default]
    Off,
    /// The plugin's own readout (its forward flow) agrees with what was asked:
    /// guards against numerical drift only, as the flow inverts the generation exactly.
    Plugin,
    /// The judges read the image as asked, for every judged attribute asked
    /// (unjudged ones fall back to the plugin's readout).
    Judge,
}

impl Verify {
    /// Draws per image at most under this check, as `plugen sample` makes
    /// them: 16 with the judges, 8 with the plugin's readout, 1 without a check.
    pub fn max_draws(self) -> usize {
        match self {
            Self::Judge => 16,
            Self::Plugin => 8,
            Self::Off => 1,
        }
    }
}

impl std::str::FromStr for Verify {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(Self::Off),
            "plugin" => Ok(Self::Plugin),
            "judge" => Ok(Self::Judge),
            _ => Err(Error::invalid(format!(
                "--verify {s:?}: choose judge, plugin or off"
            ))),
        }
    }
}

/// The judges a check needs: with [`Verify::Judge`], the plugin must have a
/// judge map and the judges must be loaded.
pub(crate) fn judges_for<'a>(
    verify: Verify,
    plugin: &Plugin,
    judges: Option<&'a JudgeSet>,
) -> Result<Option<&'a JudgeSet>> {
    match (verify, judges) {
        (Verify::Judge, _) if plugin.judges().is_empty() => Err(Error::invalid(
            "--verify judge: this plugin has no judge map (say which judge reads each attribute in its plugin.json, or use --verify plugin)",
        )),
        (Verify::Judge, None) => Err(Error::invalid(
            "--verify judge needs the judges (models/judges)",
        )),
        (Verify::Judge, Some(j)) => Ok(Some(j)),
        _ => Ok(None),
    }
}

/// The check a `--verify` word asks for, with the judges it needs.
pub struct ChosenVerify {
    /// The check.
    pub verify: Verify,
    /// The judges, loaded, for [`Verify::Judge`].
    pub judges: Option<JudgeSet>,
    /// Why `auto` fell back to the plugin's readout, where it did.
    pub note: Option<String>,
}

/// Resolves `--verify` (`auto`/`on`, `judge`, `plugin` or `off`): `auto` and
/// `on` take the judges (from `judges`, else beside the model) where the plugin
/// has a judge map and they load, else the plugin's readout (with a note
/// saying why, where the judges failed to load); `judge` without a judge map
/// or loadable judges is an error.
pub fn choose_verify(model: &Model, verify: &str, judges: Option<&Path>) -> Result<ChosenVerify> {
    let dir = model.judges_dir(judges);
    let has_map = model.plugin().is_some_and(|p| !p.judges().is_empty());
    let chosen = |verify, judges, note| ChosenVerify {
        verify,
        judges,
        note,
    };
    match verify {
        "auto" | "on" if !has_map => Ok(chosen(Verify::Plugin, None, None)),
        "auto" | "on" => match JudgeSet::load(&dir) {
            Ok(j) => Ok(chosen(Verify::Judge, Some(j), None)),
            Err(e) => Ok(chosen(
                Verify::Plugin,
                None,
                Some(format!(
                    "{e}: checking faces with the plugin's readout instead"
                )),
            )),
        },
        "judge" => {
            if !has_map {
                return Err(Error::invalid(
                    "--verify judge: this plugin has no judge map (use --verify plugin)",
                ));
            }
            Ok(chosen(Verify::Judge, Some(JudgeSet::load(&dir)?), None))
        }
        other => Ok(chosen(other.parse()?, None, None)),
    }
}

/// Below this acceptance, after [`PROBE_DRAWS`] draws, a cell is given up on.
const UNREACHABLE_RATE: f32 = 0.02;
/// Draws before a cell's acceptance is judged.
const PROBE_DRAWS: usize = 64;

/// Whether a cell that kept `written` of `draws` draws almost never passes
/// its check (then it is reported, not looped on).
pub(crate) fn hopeless(written: usize, draws: usize) -> bool {
    draws >= PROBE_DRAWS && (written as f32) < UNREACHABLE_RATE * draws as f32
}

/// How one kind of image of a run (one `--balance` cell, or the `--set`
/// values) fared under its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellTally {
    /// What was asked, in words (`smile=1.60, male=-1.40`).
    pub cell: String,
    /// Images written.
    pub written: usize,
    /// Draws made (≥ written).
    pub draws: usize,
    /// Images given up on (no draw passed within the tries, or the cell
    /// almost never passes): not written.
    pub given_up: usize,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    /// Images written in this call.
    pub written: usize,
    /// Images already present from an earlier, interrupted call.
    pub skipped: usize,
    /// Per kind of image, with a check (empty without one).
    pub cells: Vec<CellTally>,
}

/// Which share of a run's images to compute: image `i` belongs to shard
/// `i mod count` (shards are numbered from 0, as Slurm array task ids and
/// Kubernetes completion indexes are). Every image depends only on the seed
/// and its index, so the shards of a run, merged, are the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole run.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether image `i` is this shard's.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count.max(1) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count && count <= 100_000 => Ok(Self { index, count }),
            _ => Err(Error::invalid(format!(
                "--shard {s}: expected I/N with 0 <= I < N <= 100000 (shards count from 0)"
            ))),
        }
    }
}

/// File name of image `i`.
pub fn image_name(i: usize) -> String {
    format!("{i:06}.png")
}

/// The per-image attribute requests (flow units) of a run.
fn requests(model: &Model, req: &SampleRequest) -> Result<Vec<Vec<Option<f32>>>> {
    let Some(plugin) = model.plugin() else {
        if !req.sets.is_empty() || req.balance.is_some() {
            return Err(Error::invalid(
                "--set and --balance need a plugin; this model has none (pass --plugin PATH)",
            ));
        }
        return Ok(Vec::new());
    };
    let base = plugin.resolve(&req.sets)?;
    let Some(balance) = &req.balance else {
        return Ok(vec![base]);
    };
    // Several attributes: their joint cells, first attribute varying slowest.
    let mut per_image = vec![base];
    let mut seen = Vec::new();
    for name in balance.split(',').map(str::trim) {
        let k = plugin.index_of(name)?;
        if seen.contains(&k) {
            return Err(Error::invalid(format!("--balance: {name} appears twice")));
        }
        if per_image[0][k].is_some() {
            return Err(Error::invalid(format!(
                "--balance {name} conflicts with --set {name}=…"
            )));
        }
        seen.push(k);
        let values: Vec<f32> = match plugin.attributes()[k].kind {
            // The calibrated ends where the judges measured them.
            AttributeKind::Binary => match plugin
                .judges()
                .rule(name)
                .and_then(|r| r.calibrated.as_ref())
            {
                Some(c) => vec![c.off, c.on],
                None => vec![-1.0, 1.0],
            },
            AttributeKind::Continuous => {
                if req.bins < 2 || req.bins > 1000 {
                    return Err(Error::invalid("--bins must be 2..=1000"));
                }
                (0..req.bins)
                    .map(|b| -1.0 + (2 * b + 1) as f32 / req.bins as f32)
                    .collect()
            }
        };
        per_image = per_image
            .iter()
            .flat_map(|r| {
                values.iter().map(move |&v| {
                    let mut r = r.clone();
                    r[k] = Some(v);
                    r
                })
            })
            .collect();
        if per_image.len() > MAX_CELLS {
            return Err(Error::invalid(format!(
                "--balance makes more than {} cells",
                MAX_CELLS
            )));
        }
    }
    Ok(per_image)
}

/// The random stream of draw `attempt` of image `index` (draw 0: stream `index`).
pub(crate) fn stream(index: usize, attempt: usize) -> u64 {
    index as u64 + ((attempt as u64) << 40)
}

/// The flow code of draw `attempt` of image `index` of a run (its latent when
/// there is no plugin).
pub fn code_for(
    model: &Model,
    req: &SampleRequest,
    per_image: &[Vec<Option<f32>>],
    index: usize,
    attempt: usize,
) -> Vec<f32> {
    match model.plugin() {
        // No attributes: every coordinate is free, N(0, T²).
        None => latents::seeded_row(req.seed, index, model.latent_dim(), req.temperature),
        Some(plugin) => {
            let r = &per_image[index % per_image.len()];
            plugin.sample_code(
                r,
                req.temperature,
                &mut SeededRng::new(req.seed, stream(index, attempt)),
            )
        }
    }
}

/// The binary attributes a request asks for, with the class asked (flow
/// value above zero: shown). Judged continuous ones are steered instead
/// ([`steer`]).
fn asked_classes(plugin: &Plugin, requested: &[Option<f32>]) -> Vec<(usize, bool)> {
    plugin
        .attributes()
        .iter()
        .zip(requested)
        .enumerate()
        .filter_map(|(k, (a, v))| match (a.kind, v) {
            (AttributeKind::Binary, Some(v)) if *v != 0.0 => Some((k, *v > 0.0)),
            _ => None,
        })
        .collect()
}

/// Whether a draw shows every asked class: by the judges' verdict where they
/// judge the attribute (a reading too close to call, or a face the judge
/// could not read, fails), by the plugin's readout elsewhere.
fn passes(
    verify: Verify,
    plugin: &Plugin,
    asked: &[(usize, bool)],
    reading: Option<&Reading>,
    readout: &[f32],
) -> bool {
    asked.iter().all(|&(k, want)| {
        let by_readout = || {
            let r = readout.get(k).copied().unwrap_or(f32::NAN);
            r.is_finite() && (r > 0.0) == want
        };
        match verify {
            Verify::Off => true,
            Verify::Plugin => by_readout(),
            Verify::Judge => {
                let name = &plugin.attributes()[k].name;
                match reading.map(|r| plugin.judges().verdict(name, r)) {
                    Some(Verdict::Class(shown)) => shown == want,
                    Some(Verdict::Uncertain | Verdict::Unread) => false,
                    _ => by_readout(),
                }
            }
        }
    })
}

/// A request in words, user units: `smile=1.60, male=-1.40` (`anything` when empty).
fn describe_request(plugin: &Plugin, requested: &[Option<f32>]) -> String {
    let parts: Vec<String> = plugin
        .attributes()
        .iter()
        .zip(requested)
        .filter_map(|(a, v)| v.map(|v| format!("{}={:.2}", a.name, a.from_flow(v))))
        .collect();
    if parts.is_empty() {
        "anything".into()
    } else {
        parts.join(", ")
    }
}

/// Reads which images an earlier call wrote, trimming a torn last line and
/// removing temporary files a killed process left behind.
fn recover(out: &Path) -> Result<BTreeSet<usize>> {
    for entry in std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".plugen-") && name.ends_with(".tmp") {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(&entry.path(), e))?;
        }
    }
    let path = out.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(BTreeSet::new());
    }
    let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let mut done = BTreeSet::new();
    let mut good_len = 0usize;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break; // torn last line
        }
        let s = sidecar::parse(&path, line)?;
        let Some(index) = s.index else {
            return Err(Error::format(&path, "manifest line without an index"));
        };
        done.insert(index as usize);
        good_len += line.len();
    }
    if good_len != text.len() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.set_len(good_len as u64)
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(done)
}

/// A run made ready to draw: the request with the model's hashes filled in,
/// each kind of image's attribute values, what its check looks at, and how it fared.
struct Prepared<'a> {
    req: SampleRequest,
    per_image: Vec<Vec<Option<f32>>>,
    judges: Option<&'a JudgeSet>,
    tries: usize,
    asked: Vec<Vec<(usize, bool)>>,
    /// Each kind's judged continuous attributes to steer ([`Verify::Judge`]
    /// only).
    targets: Vec<Vec<steer::Target>>,
    /// The judge rules of the attributes asked anywhere in the run: only
    /// their judges run.
    checked: JudgeMap,
    cells: Vec<CellTally>,
}

fn prepare<'a>(
    model: &Model,
    req: &SampleRequest,
    judges: Option<&'a JudgeSet>,
) -> Result<Prepared<'a>> {
    if req.count == 0 || req.count > MAX_IMAGES {
        return Err(Error::invalid(format!("-n must be 1..={MAX_IMAGES}")));
    }
    if !(req.temperature.is_finite() && req.temperature >= 0.0 && req.temperature <= 10.0) {
        return Err(Error::invalid("--temperature must be between 0 and 10"));
    }
    let mut req = req.clone();
    req.generator_sha256 = model.generator_sha256().to_string();
    req.plugin_sha256 = model.plugin().map(|p| p.weights_sha256().to_string());
    let per_image = requests(model, &req)?;
    let plugin = model.plugin();
    if plugin.is_none() {
        req.verify = Verify::Off;
    }
    let judges = match plugin {
        Some(p) => judges_for(req.verify, p, judges)?,
        None => None,
    };
    let tries = if req.verify == Verify::Off {
        1
    } else {
        req.max_tries.max(1)
    };
    let asked: Vec<Vec<(usize, bool)>> = match plugin {
        Some(p) => per_image.iter().map(|r| asked_classes(p, r)).collect(),
        None => vec![Vec::new()],
    };
    let targets: Vec<Vec<steer::Target>> = match plugin {
        Some(p) if req.verify == Verify::Judge => {
            per_image.iter().map(|r| steer::targets(p, r)).collect()
        }
        _ => vec![Vec::new(); asked.len()],
    };
    let cells: Vec<CellTally> = match plugin {
        Some(p) => per_image
            .iter()
            .map(|r| CellTally {
                cell: describe_request(p, r),
                written: 0,
                draws: 0,
                given_up: 0,
            })
            .collect(),
        None => Vec::new(),
    };
    let checked = match plugin {
        Some(p) => p.judges().only(
            asked
                .iter()
                .flatten()
                .map(|&(k, _)| k)
                .chain(targets.iter().flatten().map(|&(k, _)| k))
                .map(|k| p.attributes()[k].name.as_str()),
        ),
        None => JudgeMap::default(),
    };
    Ok(Prepared {
        req,
        per_image,
        judges,
        tries,
        asked,
        targets,
        checked,
        cells,
    })
}

/// One batch of the faces a run keeps (those that passed its check), in the
/// order they were drawn.
struct Kept {
    /// Image indexes in the run.
    indices: Vec<usize>,
    /// Their latents.
    latents: Latents,
    /// The plugin's readouts, user units (empty rows without a plugin).
    readouts: Vec<Vec<f32>>,
    /// What the judges read, where they were asked.
    judged: Vec<Option<Reading>>,
    /// The faces.
    images: Vec<image::RgbImage>,
}

/// Draws images `todo` of a prepared run in batches of 64, redrawing those
/// that fail the check, and hands each batch of kept faces to `sink`.
fn draw(
    model: &Model,
    run: &mut Prepared,
    todo: Vec<usize>,
    sink: &mut dyn FnMut(Kept) -> Result<()>,
) -> Result<()> {
    let plugin = model.plugin();
    // (image, draw) pairs still to make.
    let mut pending: Vec<(usize, usize)> = todo.into_iter().map(|i| (i, 0)).collect();
    while !pending.is_empty() {
        let batch: Vec<(usize, usize)> = pending.drain(..pending.len().min(64)).collect();
        let codes: Vec<f32> = batch
            .iter()
            .flat_map(|&(i, t)| code_for(model, &run.req, &run.per_image, i, t))
            .collect();
        let codes = Latents::new(model.latent_dim(), codes)?;
        let (latents, readouts) = match plugin {
            Some(p) => decode_rows(p, &codes)?,
            None => (codes.clone(), vec![Vec::new(); batch.len()]),
        };
        // With the judges, every draw is rendered, read and steered.
        let mut reached = vec![true; batch.len()];
        let (latents, readouts, mut drawn, judged) = match run.judges {
            Some(j) => {
                let images = render_rows(model, &latents)?;
                let refs: Vec<&image::RgbImage> = images.iter().collect();
                let judged = match plugin {
                    Some(_) => j.read_for(&refs, &run.checked)?,
                    None => j.read(&refs)?,
                };
                let mut faces = Faces {
                    latents,
                    readouts,
                    images,
                    judged,
                };
                if let Some(p) = plugin {
                    reached = steer_rows(model, p, j, run, &batch, &codes, &mut faces)?;
                }
                (
                    faces.latents,
                    faces.readouts,
                    Some(faces.images),
                    faces.judged,
                )
            }
            None => (latents, readouts, None, Vec::new()),
        };
        let mut keep = Vec::with_capacity(batch.len());
        for (j, &(i, t)) in batch.iter().enumerate() {
            let kind = i % run.asked.len();
            let ok = match plugin {
                Some(p) => {
                    reached[j]
                        && passes(
                            run.req.verify,
                            p,
                            &run.asked[kind],
                            judged.get(j),
                            &readouts[j],
                        )
                }
                None => true,
            };
            let Some(tally) = run.cells.get_mut(kind) else {
                keep.push(j);
                continue;
            };
            tally.draws += 1;
            if ok {
                tally.written += 1;
                keep.push(j);
            } else if t + 1 < run.tries && !hopeless(tally.written, tally.draws) {
                pending.push((i, t + 1));
            } else {
                tally.given_up += 1;
            }
        }
        let kept = Latents::new(
            latents.dim,
            keep.iter().flat_map(|&j| latents.row(j).to_vec()).collect(),
        )?;
        let images: Vec<image::RgbImage> = match drawn.as_mut() {
            Some(all) => keep.iter().map(|&j| std::mem::take(&mut all[j])).collect(),
            None if keep.is_empty() => Vec::new(),
            None => render_rows(model, &kept)?,
        };
        sink(Kept {
            indices: keep.iter().map(|&j| batch[j].0).collect(),
            latents: kept,
            readouts: keep.iter().map(|&j| readouts[j].clone()).collect(),
            judged: keep.iter().map(|&j| judged.get(j).cloned()).collect(),
            images,
        })?;
    }
    Ok(())
}

/// A batch's faces as made: latents, the plugin's readouts (user units),
/// images and what the judges read.
struct Faces {
    latents: Latents,
    readouts: Vec<Vec<f32>>,
    images: Vec<image::RgbImage>,
    judged: Vec<Reading>,
}

/// How good a steering round is, compared field by field: it passes
/// everything, it reaches the values asked, it passes the binary check, and
/// its largest miss negated.
type RoundRank = (bool, bool, bool, f32);

/// A face of a batch being steered: its row, kind, the values its next round
/// sets, and the rank of its best round so far.
struct Steering {
    row: usize,
    kind: usize,
    values: Vec<Option<f32>>,
    best: RoundRank,
}

/// Steers the judged continuous attributes each face of a batch asks for to
/// the values asked ([`steer`]): while a face is read further than
/// [`steer::STEER_TOLERANCE`] from one, or fails the binary check, the
/// coordinate set for it in the face's code (`codes`) is moved by what was
/// missed and the face made again, at most [`steer::STEER_ROUNDS`] in all.
/// The best round (passing everything first, then reaching the values, then
/// the binary check, then the smaller miss) replaces the face in `faces`.
/// Only a face's own code decides its rounds, so it steers the same in any
/// batch. Returns whether each face reached its values (a face the judges
/// could not read did not).
fn steer_rows(
    model: &Model,
    plugin: &Plugin,
    judges: &JudgeSet,
    run: &Prepared,
    batch: &[(usize, usize)],
    codes: &Latents,
    faces: &mut Faces,
) -> Result<Vec<bool>> {
    let judge_row =
        |kind: usize, reading: &Reading, readout: &[f32]| -> Option<(RoundRank, Vec<f32>)> {
            let missed = steer::misses(plugin, &run.checked, &run.targets[kind], reading)?;
            let reached = steer::reached(&missed);
            let passed = passes(
                run.req.verify,
                plugin,
                &run.asked[kind],
                Some(reading),
                readout,
            );
            Some((
                (reached && passed, reached, passed, -steer::worst(&missed)),
                missed,
            ))
        };
    let mut reached = vec![true; batch.len()];
    let mut active = Vec::new();
    for (row, &(i, _)) in batch.iter().enumerate() {
        let kind = i % run.targets.len();
        if run.targets[kind].is_empty() {
            continue;
        }
        let Some((rank, missed)) = judge_row(kind, &faces.judged[row], &faces.readouts[row]) else {
            reached[row] = false;
            continue;
        };
        reached[row] = rank.1;
        if !rank.0 {
            let mut values = run.per_image[kind].clone();
            steer::correct(&mut values, &run.targets[kind], &missed);
            active.push(Steering {
                row,
                kind,
                values,
                best: rank,
            });
        }
    }
    let dim = codes.dim;
    for _ in 1..steer::STEER_ROUNDS {
        if active.is_empty() {
            break;
        }
        let mut data = Vec::with_capacity(active.len() * dim);
        for s in &active {
            let mut code = codes.row(s.row).to_vec();
            for &(k, _) in &run.targets[s.kind] {
                if let Some(v) = s.values[k] {
                    code[k] = v;
                }
            }
            data.extend(code);
        }
        let (latents, readouts) = decode_rows(plugin, &Latents::new(dim, data)?)?;
        let images = render_rows(model, &latents)?;
        let refs: Vec<&image::RgbImage> = images.iter().collect();
        let readings = judges.read_for(&refs, &run.checked)?;
        let mut still = Vec::with_capacity(active.len());
        for (n, (mut s, image)) in active.into_iter().zip(images).enumerate() {
            // A round the judges could not read ends the face's steering.
            let Some((rank, missed)) = judge_row(s.kind, &readings[n], &readouts[n]) else {
                continue;
            };
            if rank > s.best {
                s.best = rank;
                reached[s.row] = rank.1;
                faces.latents.data[s.row * dim..(s.row + 1) * dim].copy_from_slice(latents.row(n));
                faces.readouts[s.row] = readouts[n].clone();
                faces.images[s.row] = image;
                faces.judged[s.row] = readings[n].clone();
            }
            if !rank.0 {
                steer::correct(&mut s.values, &run.targets[s.kind], &missed);
                still.push(s);
            }
        }
        active = still;
    }
    Ok(reached)
}

/// Samples `req.count` images into `out` (only `shard`'s, see [`Shard`]).
/// With `resume`, continues a run that was interrupted (same request and
/// shard required); otherwise `out` must not hold a run.
///
/// With a check (`req.verify`), an image whose asked binary attributes the
/// check does not see (with [`Verify::Judge`]: or whose judged continuous
/// attributes steering does not bring within [`steer::STEER_TOLERANCE`] of
/// the values asked, see [`steer`]) is redrawn with fresh free coordinates (draw `t` of
/// image `i` uses stream `i + t·2⁴⁰`), up to `req.max_tries` draws; an image
/// no draw passes is given up on and not written. `judges` are needed for
/// [`Verify::Judge`]; a face reads the same alone or in a batch, so its fate
/// depends only on the seed and its index (shards stay byte-identical).
pub fn sample(
    model: &Model,
    req: &SampleRequest,
    judges: Option<&JudgeSet>,
    out: &Path,
    resume: bool,
    shard: Shard,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SampleSummary> {
    let mut run = prepare(model, req, judges)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let run_path = out.join(RUN_FILE);
    let done = if run_path.exists() {
        if !resume {
            return Err(Error::format(
                out,
                "already holds a sampling run; pass --resume to continue it, or choose another --out",
            ));
        }
        let bytes = fsutil::read_limited(&run_path, 1 << 20)?;
        let earlier: SampleRequest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::format(&run_path, format!("unreadable run description: {e}")))?;
        if earlier != run.req {
            return Err(Error::format(
                &run_path,
                "--resume needs the same settings, model and plugin as the interrupted run",
            ));
        }
        recover(out)?
    } else {
        let text =
            serde_json::to_string_pretty(&run.req).map_err(|e| Error::invalid(e.to_string()))?;
        fsutil::write_atomic(&run_path, text.as_bytes(), Overwrite::Never)?;
        BTreeSet::new()
    };
    let manifest_path = out.join(MANIFEST_FILE);
    let mut manifest = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&manifest_path)
        .map_err(|e| Error::io(&manifest_path, e))?;
    let count = run.req.count;
    let owned = (0..count).filter(|&i| shard.owns(i)).count();
    let todo: Vec<usize> = (0..count)
        .filter(|&i| shard.owns(i) && !done.contains(&i))
        .collect();
    let names: Vec<String> = model
        .plugin()
        .map(|p| p.attributes().iter().map(|a| a.name.clone()).collect())
        .unwrap_or_default();
    let (seed, temperature, scale) = (run.req.seed, run.req.temperature, run.req.scale);
    let per_image = run.per_image.clone();
    let mut written = 0;
    draw(model, &mut run, todo, &mut |kept| {
        // PNG encoding and writes run in parallel across the batch; an image with
        // no manifest line is a leftover of an interrupted call: same bytes, replace it.
        kept.indices
            .par_iter()
            .zip(&kept.images)
            .try_for_each(|(&i, image)| {
                imaging::save_png(&out.join(image_name(i)), image, scale, Overwrite::Allow)
            })?;
        let mut lines = String::new();
        for (j, &i) in kept.indices.iter().enumerate() {
            let requested = match model.plugin() {
                Some(_) => per_image[i % per_image.len()].as_slice(),
                None => &[],
            };
            lines.push_str(&manifest_line(&Generated {
                model,
                index: i,
                latent: kept.latents.row(j),
                seed,
                temperature,
                requested,
                readout: &kept.readouts[j],
                judged: kept.judged[j].as_ref(),
            })?);
        }
        manifest
            .write_all(lines.as_bytes())
            .map_err(|e| Error::io(&manifest_path, e))?;
        manifest
            .sync_data()
            .map_err(|e| Error::io(&manifest_path, e))?;
        written += kept.indices.len();
        progress(done.len() + written, owned);
        Ok(())
    })?;
    drop(manifest);
    sort_manifest(&manifest_path)?;
    write_metadata(out, &names)?;
    if run.req.verify == Verify::Off {
        run.cells.clear();
    }
    Ok(SampleSummary {
        written,
        skipped: done.len(),
        cells: run.cells,
    })
}

/// The faces of a run, in memory: what [`sample`] writes into a folder, with
/// the same faces for the same request (images given up on are left out).
#[derive(Debug, Clone)]
pub struct Sampled {
    /// Image indexes in the run, ascending (the folder's file is [`image_name`] of each).
    pub indices: Vec<usize>,
    /// Their latents, one row per image.
    pub latents: Latents,
    /// Requested values per image, user units, one per plugin attribute (`None`: not asked).
    pub requested: Vec<Vec<Option<f32>>>,
    /// The plugin's readout per image, user units (empty rows without a plugin).
    pub readouts: Vec<Vec<f32>>,
    /// What the judges read per image, where they were asked.
    pub judged: Vec<Option<Reading>>,
    /// The faces, unscaled.
    pub images: Vec<image::RgbImage>,
    /// Per kind of image, with a check (empty without one).
    pub cells: Vec<CellTally>,
}

/// One kept face of an in-memory run.
struct Face {
    index: usize,
    latent: Vec<f32>,
    readout: Vec<f32>,
    judged: Option<Reading>,
    image: image::RgbImage,
}

/// Samples `req.count` images into memory: image for image what [`sample`]
/// writes for the same request (`req.scale` is not applied).
pub fn sample_in_memory(
    model: &Model,
    req: &SampleRequest,
    judges: Option<&JudgeSet>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sampled> {
    let mut run = prepare(model, req, judges)?;
    let count = run.req.count;
    let mut rows: Vec<Face> = Vec::with_capacity(count);
    draw(model, &mut run, (0..count).collect(), &mut |kept| {
        let Kept {
            indices,
            latents,
            readouts,
            judged,
            images,
        } = kept;
        for ((((j, index), readout), judged), image) in indices
            .into_iter()
            .enumerate()
            .zip(readouts)
            .zip(judged)
            .zip(images)
        {
            rows.push(Face {
                index,
                latent: latents.row(j).to_vec(),
                readout,
                judged,
                image,
            });
        }
        progress(rows.len(), count);
        Ok(())
    })?;
    rows.sort_by_key(|r| r.index);
    let unit = |values: &[Option<f32>]| -> Vec<Option<f32>> {
        match model.plugin() {
            Some(p) => p
                .attributes()
                .iter()
                .zip(values)
                .map(|(a, v)| v.map(|v| a.from_flow(v)))
                .collect(),
            None => Vec::new(),
        }
    };
    let per_image: Vec<Vec<Option<f32>>> = run.per_image.iter().map(|r| unit(r)).collect();
    let mut out = Sampled {
        indices: Vec::with_capacity(rows.len()),
        latents: Latents::new(
            model.latent_dim(),
            Vec::with_capacity(rows.len() * model.latent_dim()),
        )?,
        requested: Vec::with_capacity(rows.len()),
        readouts: Vec::with_capacity(rows.len()),
        judged: Vec::with_capacity(rows.len()),
        images: Vec::with_capacity(rows.len()),
        cells: Vec::new(),
    };
    for face in rows {
        out.indices.push(face.index);
        out.latents.data.extend(face.latent);
        out.requested.push(match model.plugin() {
            Some(_) => per_image[face.index % per_image.len()].clone(),
            None => Vec::new(),
        });
        out.readouts.push(face.readout);
        out.judged.push(face.judged);
        out.images.push(face.image);
    }
    if run.req.verify != Verify::Off {
        out.cells = run.cells;
    }
    Ok(out)
}

/// Rewrites a manifest in image order (redraws append out of order), atomically.
pub(crate) fn sort_manifest(path: &Path) -> Result<()> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut lines = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        let index = sidecar::parse(path, line)?.index.unwrap_or(u64::MAX);
        lines.push((index, line));
    }
    lines.sort_by_key(|(i, _)| *i);
    let sorted: Vec<u8> = lines.into_iter().flat_map(|(_, l)| l.to_vec()).collect();
    fsutil::write_atomic(path, &sorted, Overwrite::Allow)
}

/// One generated image, as its manifest line records it.
pub(crate) struct Generated<'a> {
    /// The model that made it (generator and plugin hashes, attribute names).
    pub model: &'a Model,
    /// Its index in the run (its file is [`image_name`] of it).
    pub index: usize,
    /// Its latent.
    pub latent: &'a [f32],
    /// The run's seed.
    pub seed: u64,
    /// Scale of the free coordinates.
    pub temperature: f32,
    /// Requested attribute values, flow units, one per plugin attribute (empty without a plugin).
    pub requested: &'a [Option<f32>],
    /// The plugin's readout, user units (empty without a plugin).
    pub readout: &'a [f32],
    /// What the judges read off the image, where they were asked.
    pub judged: Option<&'a Reading>,
}

/// The manifest line of a generated image: its sidecar, newline-terminated.
pub(crate) fn manifest_line(g: &Generated) -> Result<String> {
    let mut s = Sidecar::new(g.latent.to_vec(), g.model.generator_sha256());
    s.image = Some(image_name(g.index));
    s.seed = Some(g.seed);
    s.index = Some(g.index as u64);
    s.temperature = Some(g.temperature);
    if let Some(p) = g.model.plugin() {
        s.plugin_sha256 = Some(p.weights_sha256().to_string());
        for (a, v) in p.attributes().iter().zip(g.requested) {
            if let Some(v) = v {
                s.requested.insert(a.name.clone(), a.from_flow(*v));
            }
        }
        s.readout = p
            .attributes()
            .iter()
            .map(|a| a.name.clone())
            .zip(g.readout.iter().copied())
            .collect();
    }
    if let Some(j) = g.judged {
        s.judged = j.clone();
    }
    let mut line = serde_json::to_string(&s).map_err(|e| Error::invalid(e.to_string()))?;
    line.push('\n');
    Ok(line)
}

/// Flow codes → latents and their readouts, as one batch where the flow sums
/// in a fixed order per output ([`crate::model::plugin::Plugin::batch_invariant`]),
/// each row on its own elsewhere.
///
/// Measured reason: candle's CPU matmul sums in an order that depends on the
/// batch's row count, so a face computed in a batch of 10 differed in the 7th
/// digit from the same face in a batch of 4, enough to flip PNG bytes. Row by
/// row, image `i` depends only on the seed and `i`, whichever batch or shard
/// computes it.
pub(crate) fn decode_rows(
    plugin: &crate::model::plugin::Plugin,
    codes: &Latents,
) -> Result<(Latents, Vec<Vec<f32>>)> {
    if plugin.batch_invariant() {
        let z = plugin.decode(codes)?;
        let r = plugin.readout(&z)?;
        return Ok((z, r));
    }
    let mut data = Vec::with_capacity(codes.data.len());
    let mut readouts = Vec::with_capacity(codes.count());
    for i in 0..codes.count() {
        let z = plugin.decode(&Latents::new(codes.dim, codes.row(i).to_vec())?)?;
        readouts.extend(plugin.readout(&z)?);
        data.extend(z.data);
    }
    Ok((Latents::new(codes.dim, data)?, readouts))
}

/// Renders latents as one batch where the generator sums in a fixed order per
/// output (the CPU engine, [`crate::compute::cpu_gemm`]; wgpu), each on its own
/// elsewhere (candle's CUDA matmul; see [`decode_rows`]).
pub(crate) fn render_rows(model: &Model, latents: &Latents) -> Result<Vec<image::RgbImage>> {
    if model.gpu_generator().is_some() || model.generator().cpu_kernel().is_some() {
        return model.render(latents);
    }
    let mut images = Vec::with_capacity(latents.count());
    for i in 0..latents.count() {
        images.extend(model.render(&Latents::new(latents.dim, latents.row(i).to_vec())?)?);
    }
    Ok(images)
}

/// Writes `metadata.jsonl` from the folder's `manifest.jsonl`: one line per
/// image, sorted by file name, with `file_name` (relative to the folder), one
/// column per attribute holding the requested value in user units (`null`
/// where none was requested) and `readout_NAME` holding the plugin's readout,
/// so `datasets.load_dataset("imagefolder", data_dir=DIR)` and
/// `pandas.read_json(PATH, lines=True)` load it as it is. Replaced atomically.
pub fn write_metadata(out: &Path, names: &[String]) -> Result<()> {
    let path = out.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let mut rows = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let s = sidecar::parse(&path, line)?;
        let Some(image) = s.image else {
            return Err(Error::format(&path, "manifest line without an image"));
        };
        let mut row = serde_json::Map::new();
        row.insert("file_name".into(), image.clone().into());
        for n in names {
            let v = s
                .requested
                .get(n)
                .map_or(serde_json::Value::Null, |&v| v.into());
            row.insert(n.clone(), v);
        }
        for n in names {
            let v = s
                .readout
                .get(n)
                .map_or(serde_json::Value::Null, |&v| v.into());
            row.insert(format!("readout_{n}"), v);
        }
        for (n, &v) in &s.judged {
            row.insert(format!("judge_{n}"), v.into());
        }
        rows.push((image, serde_json::Value::Object(row)));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut lines = String::new();
    for (_, row) in rows {
        lines.push_str(&row.to_string());
        lines.push('\n');
    }
    fsutil::write_atomic(&out.join(METADATA_FILE), lines.as_bytes(), Overwrite::Allow)
}
