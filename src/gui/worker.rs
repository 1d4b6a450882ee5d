//! The compute worker: owns the model on its own thread so the UI never waits
//! for the generator, the flow, file reading or image projection.
//!
//! The UI sends [`Job`]s and polls [`Reply`]s once per frame. Render requests
//! are coalesced: of several waiting renders only the newest is computed, so a
//! dragged slider never builds a backlog.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use web_time::Instant;

use image::RgbImage;
use plugen_core::Model;
use plugen_core::compute::gpu::FaceInput;
use plugen_core::error::{Error, Result};
use plugen_core::io::fsutil::Overwrite;
use plugen_core::io::imaging;
use plugen_core::io::latents::{self, Latents};
use plugen_core::io::sidecar::{self, Sidecar};
use plugen_core::jobs::projection;
use plugen_core::jobs::sweep;
use plugen_core::learn::labelling::{LabelSession, Suggest};
use plugen_core::learn::train;
use plugen_core::model::attributes::Attribute;
use plugen_core::model::judges::{JudgeMap, JudgeSet, Reading};
use plugen_core::model::plugin::Plugin;

/// What the UI needs to know about a loaded plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Where its plugin.json is.
    pub path: PathBuf,
    /// Its attributes, in flow order.
    pub attributes: Vec<Attribute>,
    /// SHA-256 of its weights.
    pub weights_sha256: String,
    /// Class σ at the end of training.
    pub prior_sigma: f32,
    /// Which judge reading decides each attribute, and the calibrated ends.
    pub judges: JudgeMap,
}

impl PluginInfo {
    fn of(model: &Model) -> Option<Self> {
        model.plugin().map(|p| Self {
            path: p.path().to_path_buf(),
            attributes: p.attributes().to_vec(),
            weights_sha256: p.weights_sha256().to_string(),
            prior_sigma: p.manifest().prior_sigma,
            judges: p.judges().clone(),
        })
    }
}

/// A face to export: everything its sidecar records.
#[derive(Debug, Clone)]
pub struct ExportItem {
    /// The generator latent.
    pub latent: Vec<f32>,
    /// The rendered face.
    pub image: RgbImage,
    /// Seed of the identity (None for loaded or projected faces).
    pub seed: Option<u64>,
    /// Temperature of the free coordinates.
    pub temperature: f32,
    /// Attribute values set on the sliders (user units).
    pub requested: Vec<(String, f32)>,
    /// Plugin readout of the latent.
    pub readout: Vec<(String, f32)>,
}

/// Work for the worker.
pub enum Job {
    /// Decode a face. With a plugin, `code` is a flow code; without, a latent.
    /// `exact` (a latent) is decoded as-is instead, when the face is one loaded unchanged.
    Render {
        /// Request number; replies carry it back.
        seq: u64,
        /// Flow code (or latent without a plugin).
        code: Vec<f32>,
        /// A latent to decode verbatim.
        exact: Option<Vec<f32>>,
        /// A settled step (not a drag frame): its pixels also come back to the
        /// CPU for the recent strip when the face is drawn from the GPU texture.
        settle: bool,
    },
    /// Read a latent file (.npy, .safetensors, sidecar .json).
    LoadLatent(PathBuf),
    /// Project an image file into the latent space.
    Project {
        /// The PNG/JPEG.
        path: PathBuf,
        /// Seed of the starting latent.
        seed: u64,
        /// Set to stop early.
        cancel: Arc<AtomicBool>,
    },
    /// Load another plugin; `current` is re-encoded with it.
    LoadPlugin {
        /// plugin.json or its folder.
        path: PathBuf,
        /// The face shown now.
        current: Option<Vec<f32>>,
    },
    /// Choose and render the next faces of a label session (the most uncertain
    /// ones once the plugin reads the attribute, else fresh ones).
    LabelPage {
        /// The session as it is now.
        session: Box<LabelSession>,
        /// Faces wanted.
        count: usize,
    },
    /// Train a new plugin version from `base` plus the session's labels, on a
    /// thread of its own so the editor stays usable; saved next to `base`.
    TrainLabels {
        /// The session's labels.
        session: Box<LabelSession>,
        /// plugin.json of the plugin to extend.
        base: PathBuf,
        /// Set to stop.
        cancel: Arc<AtomicBool>,
    },
    /// Write a sweep of one attribute of a face into a folder as
    /// `sweep-NAME-NNN.png` (grid) and `.gif` (animation), never overwriting.
    Sweep {
        /// Target folder.
        dir: PathBuf,
        /// The face's latent.
        latent: Vec<f32>,
        /// Attribute index.
        attribute: usize,
        /// Values from one end of the attribute's sweep range to the other.
        steps: usize,
        /// Upscaling of each face.
        scale: u32,
    },
    /// Write faces as PNG + sidecar into a folder, never overwriting.
    Export {
        /// Target folder.
        dir: PathBuf,
        /// The faces.
        items: Vec<ExportItem>,
        /// PNG upscaling.
        scale: u32,
    },
}

/// Results for the UI.
pub enum Reply {
    /// What the judges read off a settled face (after its `Rendered`).
    Judged {
        /// The render request it belongs to.
        seq: u64,
        /// The readings.
        reading: Reading,
    },
    /// A decoded face.
    Rendered {
        /// The request it answers.
        seq: u64,
        /// Its latent.
        latent: Vec<f32>,
        /// The image; `None` for a drag frame computed straight into the
        /// GPU face texture (its pixels never come back).
        image: Option<RgbImage>,
        /// Plugin readout of the latent (user units).
        readout: Vec<f32>,
        /// Compute time in milliseconds (slider value → pixels ready).
        ms: f32,
    },
    /// A latent read from a file or found by projection.
    Loaded {
        /// Where it came from.
        source: PathBuf,
        /// The latent.
        latent: Vec<f32>,
        /// Its flow code (equal to the latent without a plugin).
        code: Vec<f32>,
        /// For a projection: the target image.
        target: Option<RgbImage>,
    },
    /// Projection progress.
    Progress {
        /// Steps done.
        step: usize,
        /// Steps in all.
        steps: usize,
        /// Current pixel MSE.
        loss: f32,
    },
    /// A new plugin is active.
    PluginLoaded {
        /// Its description.
        info: PluginInfo,
        /// The current face's code under it.
        code: Option<Vec<f32>>,
    },
    /// Faces to label.
    LabelPage {
        /// (face index, image).
        faces: Vec<(u64, RgbImage)>,
        /// Whether they were chosen by uncertainty.
        suggested: bool,
    },
    /// Training progress, 0..1.
    TrainProgress {
        /// Fraction done.
        fraction: f32,
        /// Current loss.
        loss: f32,
    },
    /// A new plugin version was trained and saved.
    Trained {
        /// Its plugin-vN.json.
        path: PathBuf,
        /// Pseudo-labels and held-out metric of the new attribute, for the status line.
        summary: String,
    },
    /// Training stopped (cancelled or failed).
    TrainFailed {
        /// Why.
        message: String,
    },
    /// A sweep was written.
    SweptTo {
        /// The PNG grid and the GIF.
        files: Vec<PathBuf>,
    },
    /// Export finished.
    Exported {
        /// Files written.
        files: Vec<PathBuf>,
    },
    /// Something failed; the UI keeps its state.
    Failed {
        /// The render request that failed, if it was a render.
        render_seq: Option<u64>,
        /// What went wrong.
        message: String,
    },
}

/// Handle to the worker: on the desktop a thread of its own; in a browser
/// (no threads) the jobs run on the page's thread, one batch per frame, in
/// [`Worker::poll`].
pub struct Worker {
    jobs: Sender<Job>,
    replies: Receiver<Reply>,
    /// The jobs and the engine, run in `poll` where there are no threads.
    #[cfg(target_arch = "wasm32")]
    inline: std::cell::RefCell<(Receiver<Job>, Engine, Sender<Reply>)>,
    /// Asks for the frame that will run a job just sent.
    #[cfg(target_arch = "wasm32")]
    wake: Wake,
}

impl Worker {
    /// Starts the worker with `model`; `wake` is called after every reply
    /// (the GUI passes a repaint request).
    pub fn start(model: Model, wake: impl Fn() + Send + Sync + 'static) -> Self {
        let wake: Wake = Arc::new(wake);
        let (jobs, job_rx) = channel::<Job>();
        let (reply_tx, replies) = channel::<Reply>();
        let engine = Engine::new(model, wake.clone());
        #[cfg(not(target_arch = "wasm32"))]
        {
            std::thread::Builder::new()
                .name("plugen-worker".into())
                .spawn(move || {
                    let mut engine = engine;
                    while let Ok(first) = job_rx.recv() {
                        let mut batch = vec![first];
                        batch.extend(job_rx.try_iter());
                        if !engine.run(batch, &reply_tx) {
                            return;
                        }
                    }
                })
                .map(|_| ())
                .unwrap_or_else(|e| eprintln!("plugen: cannot start the compute thread: {e}"));
            Self { jobs, replies }
        }
        #[cfg(target_arch = "wasm32")]
        {
            Self {
                jobs,
                replies,
                inline: std::cell::RefCell::new((job_rx, engine, reply_tx)),
                wake,
            }
        }
    }

    /// Queues a job.
    pub fn send(&self, job: Job) {
        // The worker only stops when this handle is dropped.
        let _ = self.jobs.send(job);
        #[cfg(target_arch = "wasm32")]
        (self.wake)();
    }

    /// Replies ready now (in a browser: after running the jobs waiting).
    pub fn poll(&self) -> Vec<Reply> {
        #[cfg(target_arch = "wasm32")]
        if let Ok(mut inline) = self.inline.try_borrow_mut() {
            let (jobs, engine, replies) = &mut *inline;
            let batch: Vec<Job> = jobs.try_iter().collect();
            if !batch.is_empty() {
                engine.run(batch, replies);
            }
        }
        self.replies.try_iter().collect()
    }
}

/// Initial description of a model's plugin, for building the UI before the worker starts.
pub fn plugin_info(model: &Model) -> Option<PluginInfo> {
    PluginInfo::of(model)
}

/// Called when a reply is ready.
type Wake = Arc<dyn Fn() + Send + Sync>;

/// The model and the judges, and how a batch of waiting jobs is run.
struct Engine {
    model: Model,
    /// The judges read settled faces; without them (a model folder with no
    /// judges beside it) the editor says nothing.
    judges: Option<JudgeSet>,
    wake: Wake,
}

impl Engine {
    fn new(model: Model, wake: Wake) -> Self {
        let judges = JudgeSet::load(&JudgeSet::dir_beside(model.bundle().dir())).ok();
        Self {
            model,
            judges,
            wake,
        }
    }

    /// Runs jobs that were waiting together: of their renders only the
    /// newest. Returns false once the UI is gone.
    fn run(&mut self, batch: Vec<Job>, replies: &Sender<Reply>) -> bool {
        let wake = &self.wake;
        let last_render = batch.iter().rposition(|j| matches!(j, Job::Render { .. }));
        for (i, job) in batch.into_iter().enumerate() {
            if matches!(job, Job::Render { .. }) && Some(i) != last_render {
                continue; // stale: a newer render is waiting
            }
            let render_seq = match &job {
                Job::Render { seq, .. } => Some(*seq),
                _ => None,
            };
            let settled = matches!(&job, Job::Render { settle: true, .. });
            let reply =
                handle(&mut self.model, job, replies, wake).unwrap_or_else(|e| Reply::Failed {
                    render_seq,
                    message: e.to_string(),
                });
            let to_judge = match (&reply, &self.judges) {
                (
                    Reply::Rendered {
                        seq,
                        image: Some(image),
                        ..
                    },
                    Some(_),
                ) if settled => Some((*seq, image.clone())),
                _ => None,
            };
            if replies.send(reply).is_err() {
                return false;
            }
            wake();
            if let (Some((seq, image)), Some(j)) = (to_judge, &self.judges)
                && let Ok(mut r) = j.read(&[&image])
                && let Some(reading) = r.pop()
            {
                if replies.send(Reply::Judged { seq, reading }).is_err() {
                    return false;
                }
                wake();
            }
        }
        true
    }
}

fn handle(model: &mut Model, job: Job, replies: &Sender<Reply>, wake: &Wake) -> Result<Reply> {
    match job {
        Job::Render {
            seq,
            code,
            exact,
            settle,
        } if model.has_face_texture() => {
            let t = Instant::now();
            let input = match (&exact, model.plugin()) {
                (Some(z), _) => FaceInput::Latent(z),
                (None, Some(_)) => FaceInput::Code(&code),
                (None, None) => FaceInput::Latent(&code),
            };
            let frame = model.render_face(input)?;
            let ms = t.elapsed().as_secs_f32() * 1000.0;
            let readout = model
                .plugin()
                .map(|p| p.codes_to_values(&frame.code))
                .unwrap_or_default();
            let image = if settle {
                let z = Latents::new(model.latent_dim(), frame.latent.clone())?;
                model.render(&z)?.into_iter().next()
            } else {
                None
            };
            Ok(Reply::Rendered {
                seq,
                latent: frame.latent,
                image,
                readout,
                ms,
            })
        }
        Job::Render {
            seq, code, exact, ..
        } => {
            let t = Instant::now();
            let dim = model.latent_dim();
            let latent = match (exact, model.plugin()) {
                (Some(z), _) => Latents::new(dim, z)?,
                (None, Some(p)) => p.decode(&Latents::new(dim, code)?)?,
                (None, None) => Latents::new(dim, code)?,
            };
            let image = model.render(&latent)?.remove(0);
            let readout = match model.plugin() {
                Some(p) => p.readout(&latent)?.remove(0),
                None => Vec::new(),
            };
            Ok(Reply::Rendered {
                seq,
                latent: latent.data,
                image: Some(image),
                readout,
                ms: t.elapsed().as_secs_f32() * 1000.0,
            })
        }
        Job::LoadLatent(path) => {
            let z = latents::read(&path, model.latent_dim())?;
            let latent = z.row(0).to_vec();
            Ok(Reply::Loaded {
                code: encode(model, &latent)?,
                source: path,
                latent,
                target: None,
            })
        }
        Job::Project { .. } if cfg!(target_arch = "wasm32") => Err(Error::invalid(
            "projecting a photo needs the desktop editor (too slow without threads); open a latent or a sidecar here",
        )),
        Job::Project { path, seed, cancel } => {
            let size = model.generator().config().image_size() as u32;
            let target = projection::load_target(&path, size)?;
            let projected =
                model.project(&target, true, seed, None, &mut |step, steps, loss| {
                    if step % 5 == 0 || step == steps || steps <= 20 {
                        let _ = replies.send(Reply::Progress { step, steps, loss });
                        wake();
                    }
                    !cancel.load(Ordering::Relaxed)
                })?;
            let latent = projected.latent;
            Ok(Reply::Loaded {
                code: encode(model, &latent)?,
                source: path,
                latent,
                target: Some(target),
            })
        }
        Job::LoadPlugin { path, current } => {
            model.set_plugin(&path)?;
            let code = current.map(|z| encode(model, &z)).transpose()?;
            let info =
                PluginInfo::of(model).ok_or_else(|| Error::invalid("plugin did not load"))?;
            Ok(Reply::PluginLoaded { info, code })
        }
        Job::LabelPage { session, count } => {
            // Uncertainty needs a plugin that reads the attribute; next_faces
            // falls back to fresh faces until one is trained.
            let indices = session.next_faces(count, Suggest::Uncertain, model.plugin())?;
            let suggested = model
                .plugin()
                .is_some_and(|p| p.index_of(&session.attribute.name).is_ok());
            let mut data = Vec::with_capacity(indices.len() * session.dim);
            for &i in &indices {
                data.extend(session.latent(i));
            }
            let images = model.render(&Latents::new(session.dim, data)?)?;
            Ok(Reply::LabelPage {
                faces: indices.into_iter().zip(images).collect(),
                suggested,
            })
        }
        Job::TrainLabels {
            session,
            base,
            cancel,
        } => {
            if cfg!(target_arch = "wasm32") {
                return Err(Error::invalid(
                    "training a plugin needs the desktop editor (a browser page has no threads)",
                ));
            }
            let base = Plugin::load(&base, model.generator_sha256(), model.device())?;
            let device = model.device().clone();
            let replies = replies.clone();
            let wake = wake.clone();
            std::thread::Builder::new()
                .name("plugen-train".into())
                .spawn(move || {
                    let reply = train_labels(&base, &session, &device, &cancel, &replies, &wake)
                        .unwrap_or_else(|e| Reply::TrainFailed {
                            message: e.to_string(),
                        });
                    let _ = replies.send(reply);
                    wake();
                })
                .map_err(|e| Error::invalid(format!("cannot start training: {e}")))?;
            Ok(Reply::TrainProgress {
                fraction: 0.0,
                loss: f32::NAN,
            })
        }
        Job::Sweep { .. } if cfg!(target_arch = "wasm32") => Err(Error::invalid(
            "sweeps are written to a folder: use the desktop editor or `plugen sweep`",
        )),
        Job::Sweep {
            dir,
            latent,
            attribute,
            steps,
            scale,
        } => {
            let spec = sweep::SweepSpec {
                attributes: vec![attribute],
                from: None,
                to: None,
                steps,
            };
            let rows = sweep::render(model, &latent, &spec)?;
            let name = model.require_plugin()?.attributes()[attribute].name.clone();
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let stem = (1..10_000)
                .map(|n| format!("sweep-{name}-{n:03}"))
                .find(|stem| {
                    !dir.join(format!("{stem}.png")).exists()
                        && !dir.join(format!("{stem}.gif")).exists()
                })
                .ok_or_else(|| Error::format(&dir, "no free sweep file name left"))?;
            let mut files = Vec::new();
            for ext in ["png", "gif"] {
                let path = dir.join(format!("{stem}.{ext}"));
                if let Err(e) = sweep::save(&path, &rows, scale, Overwrite::Never) {
                    // Both or neither: no lone grid left behind.
                    for f in &files {
                        let _ = std::fs::remove_file(f);
                    }
                    return Err(e);
                }
                files.push(path);
            }
            Ok(Reply::SweptTo { files })
        }
        #[cfg(target_arch = "wasm32")]
        Job::Export { items, scale, .. } => Ok(Reply::Exported {
            files: download_all(model, &items, scale)?,
        }),
        #[cfg(not(target_arch = "wasm32"))]
        Job::Export { dir, items, scale } => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let mut files = Vec::new();
            for item in items {
                let (png, json) = export_one(model, &dir, &item, scale)?;
                files.push(png);
                files.push(json);
            }
            Ok(Reply::Exported { files })
        }
    }
}

/// Extends `base` with the session's labels and saves the new version next to it.
fn train_labels(
    base: &Plugin,
    session: &LabelSession,
    device: &plugen_core::Device,
    cancel: &AtomicBool,
    replies: &Sender<Reply>,
    wake: &Wake,
) -> Result<Reply> {
    let set = session.label_set();
    let meta = HashMap::from([(session.attribute.name.clone(), session.attribute.meta())]);
    let config = train::extension_config(base);
    let mut last = Instant::now();
    let (trained, report) = train::extend(
        base,
        &set.latents,
        &set.labels,
        &meta,
        &config,
        device,
        &mut |p| {
            if last.elapsed().as_millis() >= 100 {
                last = Instant::now();
                let fraction = (p.epoch as f32 + p.step as f32 / p.steps.max(1) as f32)
                    / p.epochs.max(1) as f32;
                let _ = replies.send(Reply::TrainProgress {
                    fraction,
                    loss: p.loss,
                });
                wake();
            }
        },
        cancel,
    )?;
    let path = trained.save_next_version(base.dir())?;
    let name = &session.attribute.name;
    let metric = report
        .metrics
        .iter()
        .find(|m| &m.name == name)
        .map(|m| format!(", held-out {} {:.2} on {}", m.metric, m.value, m.count))
        .unwrap_or_default();
    let pseudo = report
        .pseudo_labels
        .iter()
        .find(|p| &p.name == name)
        .map(|p| format!(", {} pseudo-labels", p.added))
        .unwrap_or_default();
    Ok(Reply::Trained {
        summary: format!("{} labels{pseudo}{metric}", set.len()),
        path,
    })
}

fn encode(model: &Model, latent: &[f32]) -> Result<Vec<f32>> {
    match model.plugin() {
        Some(p) => Ok(p
            .encode(&Latents::new(latent.len(), latent.to_vec())?)?
            .data),
        None => Ok(latent.to_vec()),
    }
}

/// Writes `face-NNNN.png` + `face-NNNN.json` with the first free number.
#[cfg(not(target_arch = "wasm32"))]
fn export_one(
    model: &Model,
    dir: &std::path::Path,
    item: &ExportItem,
    scale: u32,
) -> Result<(PathBuf, PathBuf)> {
    for n in 1..100_000 {
        let png = dir.join(format!("face-{n:04}.png"));
        let json = png.with_extension("json");
        if png.exists() || json.exists() {
            continue;
        }
        let name = png.file_name().map(|f| f.to_string_lossy().into_owned());
        let s = sidecar_of(model, item, name.unwrap_or_default());
        // Sidecar first: a PNG never appears without the data to reload it.
        sidecar::write(&json, &s, Overwrite::Never)?;
        if let Err(e) = imaging::save_png(&png, &item.image, scale, Overwrite::Never) {
            let _ = std::fs::remove_file(&json);
            return Err(e);
        }
        return Ok((png, json));
    }
    Err(Error::format(dir, "no free face-NNNN file name left"))
}

/// The sidecar of an exported face whose PNG is called `png_name`.
fn sidecar_of(model: &Model, item: &ExportItem, png_name: String) -> Sidecar {
    let mut s = Sidecar::new(item.latent.clone(), model.generator_sha256());
    s.image = Some(png_name);
    s.seed = item.seed;
    s.temperature = Some(item.temperature);
    s.requested = item.requested.iter().cloned().collect();
    s.readout = item.readout.iter().cloned().collect();
    s.plugin_sha256 = model.plugin().map(|p| p.weights_sha256().to_string());
    s
}

/// Where the browser build "exports": the faces become downloads.
pub const DOWNLOADS: &str = "/downloads";

/// Hands each face to the browser as two downloads, `face-NNNN.png` and its
/// `.json` sidecar, numbered on from the last export of this page.
#[cfg(target_arch = "wasm32")]
fn download_all(model: &Model, items: &[ExportItem], scale: u32) -> Result<Vec<PathBuf>> {
    use std::sync::atomic::AtomicUsize;
    static EXPORTED: AtomicUsize = AtomicUsize::new(0);
    let mut files = Vec::new();
    for item in items {
        let n = EXPORTED.fetch_add(1, Ordering::Relaxed) + 1;
        let png_name = format!("face-{n:04}.png");
        let json_name = format!("face-{n:04}.json");
        let json = sidecar::to_json(&sidecar_of(model, item, png_name.clone()))?;
        let png = imaging::encode_png(&imaging::upscale(&item.image, scale))?;
        super::web::download(&json_name, json.as_bytes(), "application/json")?;
        super::web::download(&png_name, &png, "image/png")?;
        files.push(PathBuf::from(DOWNLOADS).join(png_name));
        files.push(PathBuf::from(DOWNLOADS).join(json_name));
    }
    Ok(files)
}
