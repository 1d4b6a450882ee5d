//! The `plugen` command line: argument definitions and one function per
//! subcommand, each a thin layer over the library.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use plugen_core::DeviceChoice;
use plugen_core::error::{Error, Result};
use plugen_core::io::fsutil::{self, Overwrite};
use plugen_core::io::imaging;
use plugen_core::io::latents::{self, Latents};
use plugen_core::io::sidecar::{self, Sidecar};
use plugen_core::jobs::calibrate;
use plugen_core::jobs::dataset::{self, SampleRequest};
use plugen_core::jobs::edit::{self, EditMode};
use plugen_core::jobs::evaluate;
use plugen_core::jobs::fill;
use plugen_core::jobs::judge;
use plugen_core::jobs::projection;
use plugen_core::jobs::sweep;
use plugen_core::learn::labelling::{self, LabelSet};
use plugen_core::learn::train::{self, AttributeMeta, TrainConfig};
use plugen_core::learn::train_encoder;
use plugen_core::model::bundle;
use plugen_core::model::judges::JudgeSet;
use plugen_core::model::plugin::{LatentSource, Plugin};
use plugen_core::{Model, PluginChoice};

/// Attribute-conditioned face generation with PluGeN plugins.
///
/// Without a subcommand, opens the editor.
#[derive(Parser, Debug)]
#[command(name = "plugen", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Editor: model folder (default: $PLUGEN_MODEL or the bundled models/dcgan-digiface64).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Editor: plugin to open (plugin.json or its folder; default: the model's own).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Editor: a latent, sidecar or image to open at start.
    #[arg(long, value_name = "FILE")]
    open: Option<PathBuf>,
    /// Editor: compute device: auto, cpu, cuda, cuda:N, metal or wgpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Editor: open label mode for this new attribute (or resume its session).
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// Editor: with --label, a continuous attribute instead of a binary one.
    #[arg(long, requires = "label")]
    continuous: bool,
    /// Editor: with --label, a one-line description of the attribute.
    #[arg(long, requires = "label", default_value = "")]
    description: String,
}

#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// Model folder (default: $PLUGEN_MODEL or the bundled models/dcgan-digiface64).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Compute device: auto, cpu, cuda, cuda:N, metal or wgpu (any GPU through Vulkan, Metal, DX12 or GL).
    #[arg(long, default_value = "auto")]
    device: String,
}

/// Loads a model; where a requested GPU cannot be used, says why on one line
/// and goes on on the CPU.
fn load_model(dir: Option<&Path>, choice: PluginChoice, device: DeviceChoice) -> Result<Model> {
    let model = Model::load(dir, choice, device)?;
    if let Some(note) = model.device_note() {
        eprintln!("plugen: {note}");
    }
    Ok(model)
}

impl ModelArgs {
    fn load(&self, plugin: &Option<PathBuf>) -> Result<Model> {
        let device: DeviceChoice = self.device.parse()?;
        let choice = match plugin {
            Some(p) => PluginChoice::Path(p),
            None => PluginChoice::BundleDefault,
        };
        load_model(self.model.as_deref(), choice, device)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sample faces (optionally with chosen attributes) into a folder of PNGs + manifest.jsonl.
    Sample {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to use (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Number of images.
        #[arg(short = 'n', long = "count", default_value_t = 16)]
        count: usize,
        /// Run seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Fix an attribute for every image, NAME=VALUE (repeatable); VALUE
        /// `on`/`off` takes a judged attribute's calibrated ends (plugen calibrate).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// Split the images evenly across these attributes' joint values (NAME,NAME,…).
        #[arg(long, value_name = "NAME")]
        balance: Option<String>,
        /// Bins for --balance on a continuous attribute.
        #[arg(long, default_value_t = 5)]
        bins: usize,
        /// Scale of the free coordinates (style σ).
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        /// Upscale PNGs by this integer factor.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Continue an interrupted run in --out.
        #[arg(long)]
        resume: bool,
        /// Sample the generator alone (latents from N(0, T²)), without any plugin.
        #[arg(long, conflicts_with = "plugin")]
        no_plugin: bool,
        /// Redraw an image (up to 16 draws with the judges, 8 else) whose asked
        /// binary attributes fail the check: `judge`, the judges (models/judges)
        /// read them; `plugin`, the plugin's own readout does; `off`. With
        /// `judge`, a judged continuous value asked (yaw, pitch) is steered:
        /// set again by what the face mesh reads it missing by, up to 4 rounds
        /// a draw, until read within 5 % of its label range; else redrawn.
        /// Default `auto`: judge where the plugin has a judge map and the
        /// judges load, else plugin.
        #[arg(long, default_value = "auto", value_parser = ["auto", "on", "judge", "plugin", "off"])]
        verify: String,
        /// Judges folder (default: judges/ beside the model folder).
        #[arg(long, value_name = "DIR")]
        judges: Option<PathBuf>,
        /// Compute only shard I of N of this run (I from 0): image i belongs to
        /// shard i mod N; join the shards' folders with `plugen merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Join the folders of a sharded sample or fill run into one new folder.
    Merge {
        /// The new folder.
        out: PathBuf,
        /// The shards' folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
    /// Fill the rare joint cells of your dataset: count them in its attribute
    /// table, generate the faces that bring each cell up to the target.
    Fill {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to use (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Your dataset's attribute table: CSV, a header of column names, 0/1
        /// for binary attributes, label units for continuous ones, empty =
        /// unknown; other columns (file_name, …) are ignored.
        #[arg(long, value_name = "DATASET.csv")]
        have: PathBuf,
        /// The attributes whose joint cells to fill: ATTR[:BINS],… (BINS for
        /// continuous attributes, default 3, equal width over the label range).
        #[arg(long, value_name = "ATTR[:BINS],...")]
        by: String,
        /// Bring every cell up to at least N (default: the largest cell's count).
        #[arg(long, value_name = "N", conflicts_with = "total")]
        per_cell: Option<usize>,
        /// Generate N faces in all, spent so the final cells are as even as possible.
        #[arg(long, value_name = "N")]
        total: Option<usize>,
        /// Run seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Redraw a face (up to 16 draws with the judges, 8 else) that fails the check: `judge`, the
        /// judges (independent face-analysis models in models/judges) read it
        /// inside its cell; `plugin`, the plugin's own readout does; `off`.
        /// Default `auto` (also `on`): judge where the plugin has a judge map, else plugin.
        #[arg(long, default_value = "auto", value_parser = ["auto", "on", "judge", "plugin", "off"])]
        verify: String,
        /// Judges folder (default: judges/ beside the model folder).
        #[arg(long, value_name = "DIR")]
        judges: Option<PathBuf>,
        /// Scale of the free coordinates (style σ).
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        /// Upscale PNGs by this integer factor.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Output folder (new or empty).
        #[arg(long)]
        out: PathBuf,
        /// Compute only shard I of N (I from 0); join with `plugen merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Edit an existing latent's attributes and write the image + sidecar.
    Edit {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to use (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Latent file: .npy, .safetensors, a sidecar .json or a run's manifest.jsonl.
        #[arg(long)]
        latent: PathBuf,
        /// Which latent of a multi-latent file.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Edit every latent of the file; --out is then a folder (NNNNNN.png + .json, manifest.jsonl).
        #[arg(long)]
        all: bool,
        /// Set an attribute, NAME=VALUE (repeatable); VALUE `on`/`off` takes a
        /// judged attribute's calibrated ends (plugen calibrate).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// How the latent moves: flow (PluGeN: forward, set, inverse) or minimal
        /// (the nearest latent with the requested readout, other attributes kept).
        #[arg(long, default_value = "flow", value_parser = parse_edit_mode)]
        mode: EditMode,
        /// Stop each judged binary attribute's flow edit at the weakest of
        /// ±1, ±1.5, … up to the value asked at which the judges (models/judges)
        /// read the asked side, pushing the judged attributes not asked back to
        /// the side read on the original where the edit would carry them over;
        /// judged continuous attributes (yaw, pitch, eyes_open, …) are set again by
        /// what the judges read them missing by, up to 4 rounds, until they read
        /// within 5 % of the label range of the value asked (about 5° of yaw);
        /// the sidecar's `requested` says where it stopped, what it set and what
        /// it pushed.
        #[arg(long)]
        until_judged: bool,
        /// Judges folder for --until-judged (default: judges/ beside the model folder).
        #[arg(long, requires = "until_judged")]
        judges: Option<PathBuf>,
        /// Upscale the PNG by this integer factor.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Output PNG (the sidecar goes next to it as .json), or a folder with --all.
        #[arg(long)]
        out: PathBuf,
        /// Replace existing output files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Train a plugin on latents and labels.
    Train {
        #[command(flatten)]
        model: ModelArgs,
        /// Latents, (N, D) .npy or .safetensors.
        #[arg(long, required_unless_present = "latents_seed")]
        latents: Option<PathBuf>,
        /// Instead of --latents: the first N latents of `plugen sample --no-plugin
        /// --seed SEED` (N = label rows); the plugin records the seed, not the latents.
        #[arg(long, value_name = "SEED", conflicts_with = "latents")]
        latents_seed: Option<u64>,
        /// Labels CSV: header of attribute names, one row per latent, empty = missing.
        #[arg(long)]
        labels: PathBuf,
        /// Optional JSON {name: {display_name, description, ends, labeller, kind}}.
        #[arg(long)]
        meta: Option<PathBuf>,
        /// Output folder for plugin.json + plugin.safetensors (training from scratch),
        /// or the manifest's own path (e.g. `models/x/plugin-v3.json`).
        #[arg(long, required_unless_present = "extend", conflicts_with = "extend")]
        out: Option<PathBuf>,
        /// Add the labels' attributes to this plugin: the new version is saved next to
        /// it as plugin-vN.json, starting from its weights and keeping its training data.
        #[arg(long, value_name = "PLUGIN", conflicts_with_all = ["couplings", "hidden"])]
        extend: Option<PathBuf>,
        /// Training epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Seed (default: 0, or the extended plugin's).
        #[arg(long)]
        seed: Option<u64>,
        /// Learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Coupling layers.
        #[arg(long)]
        couplings: Option<usize>,
        /// Hidden width of the coupling MLPs.
        #[arg(long)]
        hidden: Option<usize>,
        /// Weight of the edit-distance term: training also edits codes and
        /// penalises how far the latent moves (0 = PluGeN's likelihood alone;
        /// default 0, or the extended plugin's).
        #[arg(long, value_name = "WEIGHT")]
        edit_distance: Option<f32>,
    },
    /// Make or extend a label set (latents .npy + labels CSV) from the images of a
    /// `plugen sample` run: sorted into folders by value, or listed in a table.
    Label {
        /// The sample run folder (with manifest.jsonl).
        run: PathBuf,
        /// Labels from folders: SORTED/VALUE/IMAGE.png label IMAGE with VALUE for this attribute.
        #[arg(
            long,
            value_name = "NAME",
            required_unless_present = "table",
            conflicts_with = "table"
        )]
        attribute: Option<String>,
        /// Where the sorted folders are (default: the run folder).
        #[arg(long, value_name = "DIR", requires = "attribute")]
        sorted: Option<PathBuf>,
        /// Labels from a CSV whose first column is `image` and the others attributes.
        #[arg(long, value_name = "FILE")]
        table: Option<PathBuf>,
        /// Latents file to write or extend (.npy).
        #[arg(long)]
        latents: PathBuf,
        /// Labels CSV to write or extend.
        #[arg(long)]
        labels: PathBuf,
        /// Latent size (default: the model's).
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Print the plugin's attribute estimates for latents (the forward flow as a classifier).
    Readout {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to use (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Latent file: .npy, .safetensors or a sidecar .json.
        #[arg(long)]
        latent: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What the judges (independent face-analysis models, shipped in models/judges)
    /// read off images: one CSV row per image with judge_NAME columns. A run folder
    /// (with metadata.jsonl) also gets the judge_NAME columns added to its
    /// metadata.jsonl; other folders are read for their PNG and JPEG files.
    Judge {
        /// Images or folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Write the CSV here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing --out file.
        #[arg(long)]
        overwrite: bool,
        /// Judges folder (default: judges/ beside the bundled model folder).
        #[arg(long, value_name = "DIR")]
        judges: Option<PathBuf>,
    },
    /// Measure where each judged binary attribute's slider must sit for the
    /// judges to agree with its ends (>= 95 % of fresh faces judged positive at
    /// "on", <= 3 % not clearly negative at "off"); stores them in the plugin,
    /// for `--set NAME=on|off`, fills and the editor.
    Calibrate {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to calibrate (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Fresh faces per value tried.
        #[arg(long, default_value_t = 200)]
        faces: usize,
        /// Only this attribute (repeatable; default: every judged binary one).
        #[arg(long = "attribute", value_name = "NAME")]
        only: Vec<String>,
        /// Seed of the faces.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Judges folder (default: judges/ beside the model folder).
        #[arg(long, value_name = "DIR")]
        judges: Option<PathBuf>,
        /// Measure and print only; leave plugin.json as it is.
        #[arg(long)]
        dry_run: bool,
    },
    /// The plugin's report card by the judges: how often fresh faces asked for
    /// −2, −1, +1, +2 and the calibrated ends show each judged binary attribute,
    /// Spearman's ρ for judged continuous ones, mean |z| against N(0, I).
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to evaluate (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Fresh faces per value asked.
        #[arg(long, default_value_t = 200)]
        faces: usize,
        /// Seed of the faces.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Judges folder (default: judges/ beside the model folder).
        #[arg(long, value_name = "DIR")]
        judges: Option<PathBuf>,
        /// Also write eval.md and eval.png into this folder (created if needed).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Measure speed and memory, next to onnxruntime running the same generator.
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to use (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Timed runs per figure.
        #[arg(long, default_value_t = 30)]
        repeats: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Do not run the onnxruntime peer.
        #[arg(long)]
        no_peer: bool,
        /// Also time training the default plugin on the committed 20 000 pairs (minutes).
        #[arg(long)]
        train: bool,
        /// Also measure projection (minutes): the encoder's guess plus refinement,
        /// against 150 steps from a random start as the peer, on held-out generated
        /// faces and the photos in assets/photos.
        #[arg(long)]
        projection: bool,
    },
    /// Project photos into the latent space: per image, the reconstruction
    /// (OUT/NAME.png) and an editable sidecar (OUT/NAME.json).
    Project {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin for the readouts (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// Images (PNG or JPEG), each centre-cropped to a square.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Ignore the model's encoder: 150 optimisation steps from a random start.
        #[arg(long)]
        no_encoder: bool,
        /// Seed of the random start (without an encoder).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Optimisation steps (default: 25 after the encoder's guess, 150 without).
        #[arg(long)]
        steps: Option<usize>,
        /// Upscale the reconstruction PNGs by this integer factor.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Replace existing output files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Sweep attributes of one face from one value to another: a PNG grid (one row
    /// per attribute) or an animated GIF.
    Sweep {
        #[command(flatten)]
        model: ModelArgs,
        /// Plugin to use (plugin.json or its folder; default: the model's own).
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The face: latent file (.npy, .safetensors, a sidecar .json or a run's manifest.jsonl).
        #[arg(long)]
        latent: PathBuf,
        /// Row of the latent file to use.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Attribute to sweep.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        attribute: Option<String>,
        /// Sweep every attribute, one row each.
        #[arg(long)]
        all: bool,
        /// First value (default: −2 for a binary attribute, the smallest label for a continuous one).
        #[arg(long, allow_negative_numbers = true)]
        from: Option<f32>,
        /// Last value (default: +2 for a binary attribute, the largest label for a continuous one).
        #[arg(long, allow_negative_numbers = true)]
        to: Option<f32>,
        /// Number of values, both ends included.
        #[arg(long, default_value_t = 9)]
        steps: usize,
        /// Upscale each face by this integer factor (crisp pixels).
        #[arg(long, default_value_t = 2)]
        scale: u32,
        /// Output file: .png (grid) or .gif (animation).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        overwrite: bool,
    },
    /// Train the model's image encoder (photo → latent, the start of projection) on
    /// the generator's own samples; writes encoder.json + encoder.safetensors.
    TrainEncoder {
        #[command(flatten)]
        model: ModelArgs,
        /// Optimisation steps (each decodes --batch fresh faces).
        #[arg(long, default_value_t = 3000)]
        steps: usize,
        /// Faces per step.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Peak learning rate (cosine decay to a tenth).
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Seed of the weights and the sampled faces.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder (default: the model folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing encoder there.
        #[arg(long)]
        overwrite: bool,
    },
    /// Convert a DCGAN-style PyTorch checkpoint into a plugen model folder.
    ImportTorch {
        /// The .pth / .tar checkpoint.
        checkpoint: PathBuf,
        /// Key of the state dict inside the checkpoint (e.g. netG_state_dict).
        #[arg(long)]
        key: Option<String>,
        /// Output model folder.
        #[arg(long)]
        out: PathBuf,
        /// Human name for the model (default: the folder name).
        #[arg(long)]
        name: Option<String>,
        /// Replace existing files in --out.
        #[arg(long)]
        overwrite: bool,
    },
}

/// Edits one latent (no flow round trip when nothing is set), writes its PNG at
/// `png` and its sidecar next to it, and returns the sidecar.
/// Parses `--mode` (clap needs a `Send + Sync` error type).
fn parse_edit_mode(s: &str) -> std::result::Result<EditMode, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Latent `index` of `rows` (read from `file`), or an error naming both.
fn row_at<'a>(rows: &'a Latents, index: usize, file: &Path) -> Result<&'a [f32]> {
    if index >= rows.count() {
        return Err(Error::invalid(format!(
            "--index {index}: {} holds {} latents",
            file.display(),
            rows.count()
        )));
    }
    Ok(rows.row(index))
}

/// Projects one image and writes OUT/STEM.png and OUT/STEM.json; returns the line to print.
#[allow(clippy::too_many_arguments)]
fn project_one(
    model: &mut Model,
    path: &Path,
    out: &Path,
    use_encoder: bool,
    seed: u64,
    steps: Option<usize>,
    scale: u32,
    overwrite: Overwrite,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::format(path, "not a usable image file name"))?;
    let png = out.join(format!("{stem}.png"));
    let json = out.join(format!("{stem}.json"));
    for p in [&png, &json] {
        if overwrite == Overwrite::Never && p.exists() {
            return Err(Error::format(p, "exists (pass --overwrite to replace it)"));
        }
    }
    let size = model.generator().config().image_size() as u32;
    let target = projection::load_target(path, size)?;
    let t = std::time::Instant::now();
    let projected = model.project(&target, use_encoder, seed, steps, &mut |step, steps, _| {
        progress(step, steps);
        true
    })?;
    let seconds = t.elapsed().as_secs_f32();
    let z = Latents::new(projected.latent.len(), projected.latent.clone())?;
    let image = model.render(&z)?.remove(0);
    let mut side = Sidecar::new(projected.latent.clone(), model.generator_sha256());
    side.image = Some(format!("{stem}.png"));
    side.projected_from = Some(path.display().to_string());
    side.projection_mse = Some(projected.mse);
    let mut readouts = String::new();
    if let Some(p) = model.plugin() {
        let values = p.readout(&z)?.remove(0);
        for (a, v) in p.attributes().iter().zip(&values) {
            side.readout.insert(a.name.clone(), *v);
            readouts.push_str(&format!(", {} {v:+.2}", a.name));
        }
        side.plugin_sha256 = Some(p.weights_sha256().to_string());
    }
    imaging::save_png(&png, &image, scale, overwrite)?;
    if let Err(e) = sidecar::write(&json, &side, overwrite) {
        let _ = std::fs::remove_file(&png);
        return Err(e);
    }
    Ok(format!(
        "{} -> {}: MSE {:.4} in {seconds:.1} s{readouts}",
        path.display(),
        png.display(),
        projected.mse
    ))
}

/// How `plugen edit` moves a latent: the mode, and the judges that stop it.
#[derive(Clone, Copy)]
struct EditHow<'a> {
    mode: EditMode,
    judges: Option<&'a JudgeSet>,
}

fn edit_and_write(
    model: &Model,
    start: &[f32],
    sets: &[(String, f32)],
    how: EditHow,
    png: &Path,
    scale: u32,
    overwrite: Overwrite,
) -> Result<Sidecar> {
    let edit::NamedEdit {
        latent: z,
        used: requested,
    } = edit::edit_named(model, start, sets, how.mode, how.judges)?;
    let mut s = Sidecar::new(Vec::new(), model.generator_sha256());
    if let Some(p) = model.plugin() {
        let names = p.attributes().iter().map(|a| a.name.clone());
        s.readout = names
            .zip(p.readout(&Latents::new(z.len(), z.clone())?)?.remove(0))
            .collect();
        s.requested = requested.into_iter().collect();
        s.plugin_sha256 = Some(p.weights_sha256().to_string());
    }
    let json = png.with_extension("json");
    if overwrite == Overwrite::Never && json.exists() {
        return Err(Error::io(
            &json,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "file exists, not overwriting it (pass --overwrite)",
            ),
        ));
    }
    let image = model.render(&Latents::new(z.len(), z.clone())?)?.remove(0);
    imaging::save_png(png, &image, scale, overwrite)?;
    s.latent = z;
    s.image = png.file_name().map(|f| f.to_string_lossy().into_owned());
    sidecar::write(&json, &s, overwrite)?;
    Ok(s)
}

fn parse_sets(plugin: Option<&Plugin>, sets: &[String]) -> Result<Vec<(String, f32)>> {
    sets.iter()
        .map(|s| calibrate::parse_set(plugin, s))
        .collect()
}

fn parse_shard(s: Option<&str>) -> Result<dataset::Shard> {
    s.map_or(Ok(dataset::Shard::WHOLE), str::parse)
}

/// The check of `--verify` and the judges it needs (see
/// [`dataset::choose_verify`]); a fallback is said on one line.
fn verification(
    model: &Model,
    verify: &str,
    judges: Option<&Path>,
) -> Result<(fill::Verify, Option<JudgeSet>)> {
    let chosen = dataset::choose_verify(model, verify, judges)?;
    if let Some(note) = &chosen.note {
        eprintln!("plugen: {note}");
    }
    Ok((chosen.verify, chosen.judges))
}

/// One line saying how the `asked` attributes of a run were checked: the
/// judge rule of each judged one, and which fell back to the plugin's readout.
fn verify_line(model: &Model, verify: fill::Verify, asked: &[&str]) -> String {
    match (verify, model.plugin()) {
        (fill::Verify::Judge, Some(p)) => {
            let (mut rules, mut unjudged) = (Vec::new(), Vec::new());
            for &n in asked {
                match p.judges().rule(n) {
                    Some(r) => rules.push(match r.threshold {
                        Some(t) => format!("{n} ← {} ≥ {t}", r.reading),
                        None => format!("{n} ← {}", r.reading),
                    }),
                    None => unjudged.push(n),
                }
            }
            let readout = format!(
                "by the plugin's own readout (no judge): {}",
                unjudged.join(", ")
            );
            match (rules.is_empty(), unjudged.is_empty()) {
                (false, true) => format!("checked by the judges: {}", rules.join(", ")),
                (false, false) => format!("checked by the judges: {}; {readout}", rules.join(", ")),
                (true, false) => format!("checked {readout}"),
                (true, true) => "nothing asked to check".into(),
            }
        }
        (fill::Verify::Plugin, _) => {
            "checked by the plugin's own readout (it cannot see its own mistakes)".into()
        }
        _ => "not checked (--verify off)".into(),
    }
}

/// The attribute names a sample run asks for (`--set` and `--balance`), once
/// each, in the order given.
fn asked_names(req: &SampleRequest) -> Vec<&str> {
    let mut names: Vec<&str> = req.sets.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(req.balance.iter().flat_map(|b| b.split(',').map(str::trim)));
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(*n));
    names
}

/// The per-kind table of a checked sample run.
fn tally_table(cells: &[dataset::CellTally]) -> String {
    let width = cells
        .iter()
        .map(|c| c.cell.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut t = format!(
        "{:<width$}  {:>7}  {:>7}  {:>8}  {:>10}\n",
        "asked", "written", "redraws", "given up", "acceptance"
    );
    for c in cells {
        let rate = if c.draws == 0 {
            100.0
        } else {
            100.0 * (c.written as f32) / c.draws as f32
        };
        t.push_str(&format!(
            "{:<width$}  {:>7}  {:>7}  {:>8}  {:>9.1}%\n",
            c.cell,
            c.written,
            c.draws.saturating_sub(c.written + c.given_up),
            c.given_up,
            rate
        ));
    }
    t.trim_end().to_string()
}

/// The before/after table of a fill.
fn fill_table(reports: &[fill::CellReport], unknown: usize) -> String {
    let width = reports
        .iter()
        .map(|r| r.cell.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:>3} {:<width$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}\n",
        "#", "cell", "before", "planned", "written", "after", "redraws", "acceptance"
    );
    for (k, r) in reports.iter().enumerate() {
        s += &format!(
            "{:>3} {:<width$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9.0}%{}\n",
            k + 1,
            r.cell,
            r.before,
            r.planned,
            r.written,
            r.before + r.written,
            r.draws - r.written,
            r.acceptance * 100.0,
            if r.unreachable {
                "  unreachable: given up"
            } else if r.written < r.planned {
                "  short: few draws landed in this cell"
            } else {
                ""
            }
        );
    }
    if unknown > 0 {
        s += &format!("{unknown} rows with a --by attribute missing were counted apart\n");
    }
    s += &format!(
        "bar chart (grey: your dataset, blue: added; bars numbered as #): {}\n",
        fill::REPORT_FILE
    );
    s
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        let label = cli
            .label
            .map(|name| plugen_core::learn::labelling::AttributeDefinition {
                name,
                kind: if cli.continuous {
                    plugen_core::model::attributes::AttributeKind::Continuous
                } else {
                    plugen_core::model::attributes::AttributeKind::Binary
                },
                description: cli.description,
            });
        if let Some(def) = &label {
            def.validate()?;
        }
        return crate::gui::run(cli.model, cli.plugin, cli.open, label, cli.device.parse()?);
    };
    match command {
        Command::Sample {
            model,
            plugin,
            count,
            seed,
            sets,
            balance,
            bins,
            temperature,
            scale,
            out,
            resume,
            no_plugin,
            verify,
            judges,
            shard,
        } => {
            let shard = parse_shard(shard.as_deref())?;
            let model = if no_plugin {
                load_model(
                    model.model.as_deref(),
                    PluginChoice::None,
                    model.device.parse()?,
                )?
            } else {
                model.load(&plugin)?
            };
            // Nothing asked, nothing to check.
            let asks = !sets.is_empty() || balance.is_some();
            let verify = if asks || verify != "auto" {
                verify
            } else {
                "off".into()
            };
            let (verify, judges) = verification(&model, &verify, judges.as_deref())?;
            let req = SampleRequest {
                count,
                seed,
                sets: parse_sets(model.plugin(), &sets)?,
                balance,
                bins,
                temperature,
                scale,
                verify,
                max_tries: verify.max_draws(),
                generator_sha256: String::new(),
                plugin_sha256: None,
            };
            let pb = bar(count as u64, "{bar:40} {pos}/{len} images {elapsed}");
            let summary = dataset::sample(
                &model,
                &req,
                judges.as_ref(),
                &out,
                resume,
                shard,
                &mut |done, _| pb.set_position(done as u64),
            )?;
            pb.finish_and_clear();
            if !summary.cells.is_empty() {
                println!("{}", verify_line(&model, verify, &asked_names(&req)));
                println!("{}", tally_table(&summary.cells));
            }
            let given_up: usize = summary.cells.iter().map(|c| c.given_up).sum();
            println!(
                "wrote {} images to {} ({} already there{})",
                summary.written,
                out.display(),
                summary.skipped,
                if given_up > 0 {
                    format!("; {given_up} given up: no draw passed the check")
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Command::Fill {
            model,
            plugin,
            have,
            by,
            per_cell,
            total,
            seed,
            verify,
            judges,
            temperature,
            scale,
            out,
            shard,
        } => {
            let shard = parse_shard(shard.as_deref())?;
            let model = model.load(&plugin)?;
            let (verify, judges) = verification(&model, &verify, judges.as_deref())?;
            let target = match (per_cell, total) {
                (Some(n), _) => fill::Target::PerCell(n),
                (_, Some(n)) => fill::Target::Total(n),
                _ => fill::Target::Largest,
            };
            let fill_plan = fill::FillPlan::for_table(model.require_plugin()?, &have, &by, target)?;
            let req = fill::FillRequest::new(seed, temperature, scale, verify);
            let todo: usize = fill_plan.planned.iter().sum();
            let pb = bar(todo as u64, "{bar:40} {pos}/{len} faces {elapsed}");
            let unknown = fill_plan.census.unknown;
            let reports = fill::fill(
                &model,
                &fill_plan,
                &req,
                judges.as_ref(),
                &out,
                shard,
                &mut |d, _| pb.set_position(d as u64),
            )?;
            pb.finish_and_clear();
            let axes: Vec<&str> = fill_plan
                .spec
                .axes
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            println!("{}", verify_line(&model, verify, &axes));
            print!("{}", fill_table(&reports, unknown));
            Ok(())
        }
        Command::Merge { out, shards } => {
            let m = plugen_core::jobs::merge::merge(&out, &shards)?;
            println!(
                "merged {} images from {} shards into {}",
                m.images,
                m.shards,
                out.display()
            );
            Ok(())
        }
        Command::Edit {
            model,
            plugin,
            latent,
            index,
            all,
            sets,
            mode,
            until_judged,
            judges,
            scale,
            out,
            overwrite,
        } => {
            let model = model.load(&plugin)?;
            let rows = latents::read(&latent, model.latent_dim())?;
            let sets = parse_sets(model.plugin(), &sets)?;
            let overwrite = Overwrite::when(overwrite);
            let judges = if until_judged {
                Some(edit::judges_for_until(&model, judges.as_deref())?)
            } else {
                None
            };
            let how = EditHow {
                mode,
                judges: judges.as_ref(),
            };
            if all {
                std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
                let mut manifest = String::new();
                for i in 0..rows.count() {
                    let png = out.join(format!("{i:06}.png"));
                    let mut s =
                        edit_and_write(&model, rows.row(i), &sets, how, &png, scale, overwrite)?;
                    s.index = Some(i as u64);
                    manifest.push_str(
                        &serde_json::to_string(&s).map_err(|e| Error::invalid(e.to_string()))?,
                    );
                    manifest.push('\n');
                }
                fsutil::write_atomic(
                    &out.join(dataset::MANIFEST_FILE),
                    manifest.as_bytes(),
                    overwrite,
                )?;
                println!("wrote {} edited faces to {}", rows.count(), out.display());
                return Ok(());
            }
            let start = row_at(&rows, index, &latent)?;
            edit_and_write(&model, start, &sets, how, &out, scale, overwrite)?;
            println!(
                "wrote {} and {}",
                out.display(),
                out.with_extension("json").display()
            );
            Ok(())
        }
        Command::Train {
            model,
            latents: latents_path,
            latents_seed,
            labels: labels_path,
            meta,
            out,
            extend,
            epochs,
            seed,
            lr,
            batch_size,
            couplings,
            hidden,
            edit_distance,
        } => {
            let choice = match &extend {
                Some(p) => PluginChoice::Path(p),
                None => PluginChoice::None,
            };
            let model = load_model(model.model.as_deref(), choice, model.device.parse()?)?;
            let source = match (latents_path, latents_seed) {
                (_, Some(seed)) => LatentSource::Seed(seed),
                (Some(p), None) => LatentSource::File(p),
                (None, None) => {
                    return Err(Error::invalid("pass --latents FILE or --latents-seed SEED"));
                }
            };
            let (data, table) =
                plugen_core::model::plugin::read_pair(&source, &labels_path, model.latent_dim())?;
            let meta: HashMap<String, AttributeMeta> = match meta {
                Some(p) => {
                    serde_json::from_slice(&fsutil::read_limited(&p, 1 << 20)?).map_err(|e| {
                        Error::format(&p, format!("not an attribute description file: {e}"))
                    })?
                }
                None => HashMap::new(),
            };
            let base = model.plugin();
            let mut config = match base {
                Some(b) => train::extension_config(b),
                None => TrainConfig::default_for(model.latent_dim()),
            };
            if let Some(s) = seed {
                config.seed = s;
            }
            if let Some(e) = epochs {
                config.epochs = e;
            }
            if let Some(l) = lr {
                config.learning_rate = l;
            }
            if let Some(b) = batch_size {
                config.batch_size = b;
            }
            if let Some(c) = couplings {
                config.flow.couplings = c;
            }
            if let Some(h) = hidden {
                config.flow.hidden = h;
            }
            if let Some(w) = edit_distance {
                config.edit_distance_weight = w;
            }
            let out = out.map(|o| {
                if o.extension().is_some_and(|e| e == "json") {
                    o
                } else {
                    o.join(plugen_core::model::plugin::MANIFEST_FILE)
                }
            });
            if let Some(out) = &out
                && out.exists()
            {
                return Err(Error::format(
                    out,
                    "a plugin is already here; choose another --out",
                ));
            }
            let pb = bar(
                config.epochs as u64,
                "{bar:40} epoch {pos}/{len} {msg} {elapsed}",
            );
            let cancel = AtomicBool::new(false);
            let mut on_progress = |p: &train::Progress| {
                pb.set_position(p.epoch as u64);
                pb.set_message(format!("loss {:.4} σ {:.3}", p.loss, p.sigma));
            };
            let (trained, report) = match base {
                Some(b) => train::extend(
                    b,
                    &data,
                    &table,
                    &meta,
                    &config,
                    model.device(),
                    &mut on_progress,
                    &cancel,
                )?,
                None => train::train(
                    &data,
                    &table,
                    &meta,
                    &config,
                    model.generator_sha256(),
                    model.device(),
                    &mut on_progress,
                    &cancel,
                )?,
            };
            pb.finish_and_clear();
            let trained = match latents_seed {
                Some(seed) => trained.with_latents_seed(seed)?,
                None => trained,
            };
            let path = match (base, &out) {
                (Some(b), _) => trained.save_next_version(b.dir())?,
                (None, Some(out)) => {
                    if let Some(dir) = out.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                    }
                    trained.save_as(out)?
                }
                (None, None) => return Err(Error::invalid("pass --out DIR or --extend PLUGIN")),
            };
            println!(
                "trained on {} rows ({} held out); final loss {:.4}",
                report.rows[0],
                report.rows[1],
                report.epoch_losses.last().copied().unwrap_or(f32::NAN)
            );
            for m in &report.metrics {
                println!(
                    "  {:<14} held-out {} {:.3} (n = {})",
                    m.name, m.metric, m.value, m.count
                );
            }
            if let Some(d) = report.holdout_edit_distance {
                println!(
                    "  an edit of one attribute to ±{} moves a held-out latent {d:.2} on average",
                    train::EDIT_STRENGTH
                );
            }
            for p in &report.pseudo_labels {
                println!(
                    "  {:<14} {} rows pseudo-labelled by a logistic regression on its labels",
                    p.name, p.added
                );
            }
            println!("wrote {}", path.display());
            Ok(())
        }
        Command::Label {
            run,
            attribute,
            sorted,
            table,
            latents: latents_path,
            labels: labels_path,
            model,
        } => {
            let dim = load_model(
                model.model.as_deref(),
                PluginChoice::None,
                model.device.parse()?,
            )?
            .latent_dim();
            let new = match (&attribute, &table) {
                (Some(name), _) => labelling::from_sorted_folders(
                    &run,
                    sorted.as_deref().unwrap_or(&run),
                    name,
                    dim,
                )?,
                (None, Some(t)) => labelling::from_table(&run, t, dim)?,
                (None, None) => {
                    return Err(Error::invalid("pass --attribute NAME or --table FILE"));
                }
            };
            let mut set = match (latents_path.exists(), labels_path.exists()) {
                (true, true) => LabelSet::read(&latents_path, &labels_path, dim)?,
                (false, false) => LabelSet::empty(dim),
                (true, false) => {
                    return Err(Error::format(
                        &labels_path,
                        "missing, but the latents file exists; pass both of an existing pair or two new paths",
                    ));
                }
                (false, true) => {
                    return Err(Error::format(
                        &latents_path,
                        "missing, but the labels file exists; pass both of an existing pair or two new paths",
                    ));
                }
            };
            let before = set.len();
            set.merge(&new)?;
            set.write(&latents_path, &labels_path)?;
            println!(
                "{} labelled faces read; {} now has {} rows ({} new), columns {}",
                new.len(),
                labels_path.display(),
                set.len(),
                set.len() - before,
                set.labels.names.join(", ")
            );
            Ok(())
        }
        Command::Readout {
            model,
            plugin,
            latent,
            json,
        } => {
            let model = model.load(&plugin)?;
            let p = model.require_plugin()?;
            let data = latents::read(&latent, model.latent_dim())?;
            let values = p.readout(&data)?;
            let names: Vec<&str> = p.attributes().iter().map(|a| a.name.as_str()).collect();
            if json {
                for row in values {
                    let obj: serde_json::Map<String, serde_json::Value> = names
                        .iter()
                        .zip(row)
                        .map(|(n, v)| (n.to_string(), serde_json::json!(v)))
                        .collect();
                    println!("{}", serde_json::Value::Object(obj));
                }
            } else {
                println!(
                    "{}",
                    names.iter().map(|n| format!("{n:>12}")).collect::<String>()
                );
                for row in values {
                    println!(
                        "{}",
                        row.iter().map(|v| format!("{v:>12.4}")).collect::<String>()
                    );
                }
            }
            Ok(())
        }
        Command::Judge {
            inputs,
            out,
            overwrite,
            judges,
        } => {
            let dir = judges.unwrap_or_else(|| JudgeSet::dir_beside(&bundle::default_model_dir()));
            let set = JudgeSet::load(&dir)?;
            let mut files = Vec::new();
            for input in &inputs {
                if input.join(dataset::METADATA_FILE).is_file() {
                    let n = judge::judge_run_folder(&set, input)?;
                    eprintln!(
                        "plugen: {}: {n} faces judged, judge_ columns added to {}",
                        input.display(),
                        dataset::METADATA_FILE
                    );
                }
                if input.is_dir() {
                    let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                        .map_err(|e| Error::io(input, e))?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                                matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                            })
                        })
                        .collect();
                    found.sort();
                    files.extend(found);
                } else {
                    files.push(input.clone());
                }
            }
            let readings = judge::judge_files(&set, &files);
            let mut text = format!("file,{}\n", judge::columns().join(","));
            let mut failed = 0usize;
            for (path, reading) in files.iter().zip(&readings) {
                match reading {
                    Ok(r) => {
                        text.push_str(&judge::csv_row(&path.display().to_string(), r));
                        text.push('\n');
                    }
                    Err(e) => {
                        failed += 1;
                        let msg = e.to_string();
                        let name = path.display().to_string();
                        if msg.contains(&name) {
                            eprintln!("plugen: error: {msg}");
                        } else {
                            eprintln!("plugen: error: {name}: {msg}");
                        }
                    }
                }
            }
            match out {
                Some(path) => {
                    fsutil::write_atomic(&path, text.as_bytes(), Overwrite::when(overwrite))?
                }
                None => print!("{text}"),
            }
            if failed > 0 {
                return Err(Error::invalid(format!(
                    "{failed} of {} images could not be judged",
                    files.len()
                )));
            }
            Ok(())
        }
        Command::Calibrate {
            model,
            plugin,
            faces,
            only,
            seed,
            judges,
            dry_run,
        } => {
            let model = model.load(&plugin)?;
            let set = JudgeSet::load(&model.judges_dir(judges.as_deref()))?;
            let req = calibrate::CalibrateRequest {
                faces,
                seed,
                temperature: 1.0,
                only,
            };
            let results = calibrate::calibrate(&model, &set, &req, &mut |name, p| {
                eprintln!(
                    "plugen: {name} at {:+.2}: {:.1} % judged positive, {:.1} % clearly negative",
                    p.value,
                    p.positive * 100.0,
                    p.negative * 100.0
                );
            })?;
            for r in &results {
                match &r.calibration {
                    Some(c) => println!(
                        "{}: on = {}, off = {}, {} faces each",
                        r.name,
                        c.describe(true),
                        c.describe(false),
                        c.faces
                    ),
                    None => {
                        let best = r.points.iter().map(|p| p.positive).fold(0f32, f32::max);
                        println!(
                            "{}: not calibrated: no value within ±3 reached either rate with 90 % confidence (best {:.1} % judged positive)",
                            r.name,
                            best * 100.0
                        )
                    }
                }
            }
            if !dry_run {
                let path = model.require_plugin()?.path().to_path_buf();
                calibrate::store(&path, &results)?;
                println!("stored in {}", path.display());
            }
            Ok(())
        }
        Command::Eval {
            model,
            plugin,
            faces,
            seed,
            judges,
            out,
        } => {
            let model = model.load(&plugin)?;
            let set = JudgeSet::load(&model.judges_dir(judges.as_deref()))?;
            let req = evaluate::EvalRequest {
                faces,
                seed,
                temperature: 1.0,
            };
            let report = evaluate::evaluate(&model, &set, &req, &mut |name| {
                eprintln!("plugen: measuring {name}");
            })?;
            let command = format!(
                "plugen eval --plugin {} --faces {faces} --seed {seed}",
                model.require_plugin()?.path().display()
            );
            let md = evaluate::markdown(&report, &command);
            print!("{md}");
            if let Some(out) = out {
                std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
                fsutil::write_atomic(&out.join("eval.md"), md.as_bytes(), Overwrite::Allow)?;
                imaging::save_png(
                    &out.join("eval.png"),
                    &evaluate::chart(&report),
                    1,
                    Overwrite::Allow,
                )?;
                println!("\nwrote eval.md and eval.png to {}", out.display());
            }
            Ok(())
        }
        Command::Bench {
            model,
            plugin,
            repeats,
            json,
            no_peer,
            train,
            projection,
        } => {
            let mut model = model.load(&plugin)?;
            let mut report = crate::bench::run(&mut model, repeats.max(3), !no_peer, train)?;
            if projection {
                let photos = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/photos");
                report
                    .figures
                    .extend(crate::bench::projection_figures(&mut model, 6, &photos)?);
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| Error::invalid(e.to_string()))?
                );
            } else {
                print!("{}", crate::bench::table(&report));
            }
            Ok(())
        }
        Command::Project {
            model,
            plugin,
            images,
            out,
            no_encoder,
            seed,
            steps,
            scale,
            overwrite,
        } => {
            if steps == Some(0) || steps.is_some_and(|s| s > 10_000) {
                return Err(Error::invalid("--steps must be 1..=10000"));
            }
            let mut model = model.load(&plugin)?;
            let overwrite = Overwrite::when(overwrite);
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            if !no_encoder && model.encoder()?.is_none() {
                eprintln!(
                    "plugen: {} has no encoder (plugen train-encoder makes one): 150 steps per image",
                    model.bundle().dir().display()
                );
            }
            let pb = bar(
                images.len() as u64,
                "{bar:40} {pos}/{len} images {elapsed} {msg}",
            );
            let mut failed = 0usize;
            for path in &images {
                let name = path.display().to_string();
                let result = project_one(
                    &mut model,
                    path,
                    &out,
                    !no_encoder,
                    seed,
                    steps,
                    scale,
                    overwrite,
                    &mut |step, steps| {
                        pb.set_message(format!("{name}: step {step}/{steps}"));
                    },
                );
                pb.inc(1);
                match result {
                    Ok(line) => pb.suspend(|| println!("{line}")),
                    Err(e) => {
                        failed += 1;
                        let msg = e.to_string();
                        let line = if msg.contains(&name) {
                            msg
                        } else {
                            format!("{name}: {msg}")
                        };
                        pb.suspend(|| eprintln!("plugen: error: {line}"));
                    }
                }
            }
            pb.finish_and_clear();
            if failed > 0 {
                return Err(Error::invalid(format!(
                    "{failed} of {} images could not be projected",
                    images.len()
                )));
            }
            Ok(())
        }
        Command::Sweep {
            model,
            plugin,
            latent,
            index,
            attribute,
            all: _,
            from,
            to,
            steps,
            scale,
            out,
            overwrite,
        } => {
            sweep::SweepFormat::of(&out)?;
            let model = model.load(&plugin)?;
            let p = model.require_plugin()?;
            let rows = latents::read(&latent, model.latent_dim())?;
            let face = row_at(&rows, index, &latent)?;
            let attributes = match &attribute {
                Some(name) => vec![p.index_of(name)?],
                None => (0..p.attributes().len()).collect(),
            };
            let spec = sweep::SweepSpec {
                attributes,
                from,
                to,
                steps,
            };
            let faces = sweep::render(&model, face, &spec)?;
            let overwrite = Overwrite::when(overwrite);
            sweep::save(&out, &faces, scale, overwrite)?;
            println!("wrote {}", out.display());
            for &k in &spec.attributes {
                let a = &p.attributes()[k];
                let v = spec.values(a);
                println!(
                    "  {}: {:.3} to {:.3} in {} steps",
                    a.name,
                    v[0],
                    v[v.len() - 1],
                    v.len()
                );
            }
            Ok(())
        }
        Command::TrainEncoder {
            model,
            steps,
            batch,
            lr,
            seed,
            out,
            overwrite,
        } => {
            let model = load_model(
                model.model.as_deref(),
                PluginChoice::None,
                model.device.parse()?,
            )?;
            let config = train_encoder::TrainEncoderConfig {
                steps,
                batch,
                learning_rate: lr,
                seed,
                ..Default::default()
            };
            let pb = bar(
                steps as u64,
                "{bar:40} {pos}/{len} steps {elapsed} loss {msg}",
            );
            let trained = train_encoder::train(
                model.generator(),
                model.generator_sha256(),
                &config,
                &mut |step, loss| {
                    pb.set_position(step as u64);
                    pb.set_message(format!("{loss:.4}"));
                },
                &AtomicBool::new(false),
            )?;
            pb.finish_and_clear();
            let dir = out.unwrap_or_else(|| model.bundle().dir().to_path_buf());
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let overwrite = Overwrite::when(overwrite);
            let json = trained.save(&dir, overwrite)?;
            let t = &trained.manifest.training;
            println!(
                "wrote {}: held-out latent MSE {:.4}, pixel MSE {:.4}",
                json.display(),
                t.heldout_latent_mse,
                t.heldout_pixel_mse
            );
            Ok(())
        }
        Command::ImportTorch {
            checkpoint,
            key,
            out,
            name,
            overwrite,
        } => {
            let name = name.unwrap_or_else(|| default_name(&out));
            let overwrite = Overwrite::when(overwrite);
            let m = plugen_core::model::import::import_torch(
                &checkpoint,
                key.as_deref(),
                &out,
                &name,
                overwrite,
            )?;
            println!(
                "imported {:?}: channels {:?}, {}×{} images, sha256 {}",
                m.name,
                m.generator.channels,
                m.generator.image_size(),
                m.generator.image_size(),
                m.sha256
            );
            Ok(())
        }
    }
}

fn default_name(out: &Path) -> String {
    out.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}
