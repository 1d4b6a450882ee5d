//! The editor's state and everything that changes it, apart from drawing.
//! Each change that needs compute returns the [`Job`] to send to the worker.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use image::RgbImage;
use plugen_core::jobs::session::History;
use plugen_core::model::attributes::Attribute;
use plugen_core::model::plugin::sample_code;
use plugen_core::rng::SeededRng;

use super::worker::{ExportItem, Job, PluginInfo};

/// How many recent faces the strip keeps.
pub const RECENT_FACES: usize = 12;
/// Temperature slider range.
pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f32> = 0.05..=1.5;

/// Everything that defines the face on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Attribute values, user units, one per plugin attribute.
    pub values: Vec<f32>,
    /// Free-coordinate draws before temperature scaling.
    pub noise: Vec<f32>,
    /// Scale of the free coordinates.
    pub temperature: f32,
    /// Seed of the identity; None for a loaded or projected face.
    pub seed: Option<u64>,
    /// The loaded latent, decoded verbatim while nothing has been changed.
    pub exact: Option<Vec<f32>>,
}

/// The face last computed.
#[derive(Debug, Clone)]
pub struct Face {
    /// Its latent.
    pub latent: Vec<f32>,
    /// The image; `None` for a drag frame drawn straight from the GPU texture.
    pub image: Option<RgbImage>,
    /// Plugin readout (user units).
    pub readout: Vec<f32>,
    /// Render request it answers.
    pub seq: u64,
}

/// A running image projection.
pub struct Projection {
    /// The image file.
    pub source: PathBuf,
    /// Steps done and in all.
    pub step: usize,
    /// Steps in all.
    pub steps: usize,
    /// Current pixel MSE.
    pub loss: f32,
    /// Set to stop it.
    pub cancel: Arc<AtomicBool>,
}

/// The editor state.
pub struct EditorState {
    /// Model name for the title.
    pub model_name: String,
    /// Latent length.
    pub latent_dim: usize,
    /// The plugin, if one is loaded.
    pub plugin: Option<PluginInfo>,
    /// What is on screen now (may be mid-drag).
    pub live: Snapshot,
    /// Settled steps, for undo/redo.
    pub history: History<Snapshot>,
    /// How the current identity started (per-attribute reset goes back to it).
    pub origin: Snapshot,
    /// Per attribute: keep the value when the identity is resampled.
    pub locked: Vec<bool>,
    /// The face last computed.
    pub face: Option<Face>,
    /// Recent settled faces (newest last).
    pub recent: VecDeque<(Snapshot, RgbImage)>,
    /// Bumped whenever `recent` or `tray` change (for thumbnails).
    pub strips_rev: u64,
    /// Faces marked for export.
    pub tray: Vec<ExportItem>,
    /// The last error, shown until dismissed.
    pub error: Option<String>,
    /// The last informational message.
    pub notice: Option<String>,
    /// Compute time of the last face, ms.
    pub compute_ms: f32,
    /// A projection in progress.
    pub projection: Option<Projection>,
    /// The target of the last projection, shown beside its reconstruction.
    pub target: Option<RgbImage>,
    /// Bumped whenever `target` changes (for its texture).
    pub target_rev: u64,
    /// A loaded or projected face as it first came, for the before/after view.
    pub before: Option<RgbImage>,
    /// Bumped whenever `before` changes (for its texture).
    pub before_rev: u64,
    /// The render whose image becomes `before`.
    before_seq: Option<u64>,
    /// The attribute whose slider moved last (the one a sweep offers first).
    pub last_touched: Option<usize>,
    next_seq: u64,
    settled_seq: u64,
    /// Jobs other than renders still out.
    pub busy: usize,
    /// What the judges read off a settled face: its render request and the readings.
    pub judged: Option<(u64, plugen_core::model::judges::Reading)>,
}

impl EditorState {
    /// A fresh state showing the face of `seed`.
    pub fn new(
        model_name: String,
        latent_dim: usize,
        plugin: Option<PluginInfo>,
        seed: u64,
    ) -> (Self, Job) {
        let k = plugin.as_ref().map_or(0, |p| p.attributes.len());
        let blank = Snapshot {
            values: vec![0.0; k],
            noise: vec![0.0; latent_dim - k],
            temperature: 1.0,
            seed: Some(seed),
            exact: None,
        };
        let mut state = Self {
            model_name,
            latent_dim,
            plugin,
            live: blank.clone(),
            history: History::new(blank.clone()),
            origin: blank,
            locked: vec![false; k],
            face: None,
            recent: VecDeque::new(),
            strips_rev: 0,
            tray: Vec::new(),
            error: None,
            notice: None,
            compute_ms: 0.0,
            projection: None,
            target: None,
            target_rev: 0,
            before: None,
            before_rev: 0,
            before_seq: None,
            last_touched: None,
            next_seq: 0,
            judged: None,
            settled_seq: 0,
            busy: 0,
        };
        state.live = state.sampled(seed, state.live.temperature);
        state.history = History::new(state.live.clone());
        state.origin = state.live.clone();
        let job = state.render(true);
        (state, job)
    }

    /// The plugin's attributes (empty without a plugin).
    pub fn attributes(&self) -> &[Attribute] {
        self.plugin
            .as_ref()
            .map_or(&[], |p| p.attributes.as_slice())
    }

    /// The flow code (or latent, without a plugin) of a snapshot.
    pub fn code_of(&self, s: &Snapshot) -> Vec<f32> {
        let mut code: Vec<f32> = self
            .attributes()
            .iter()
            .zip(&s.values)
            .map(|(a, &v)| a.to_flow(v))
            .collect();
        code.extend(s.noise.iter().map(|n| n * s.temperature));
        code
    }

    fn sampled(&self, seed: u64, temperature: f32) -> Snapshot {
        let attrs = self.attributes();
        let k = attrs.len();
        let requested: Vec<Option<f32>> = attrs
            .iter()
            .zip(&self.live.values)
            .zip(&self.locked)
            .map(|((a, &v), &lock)| lock.then(|| a.to_flow(v)))
            .collect();
        let sigma = self.plugin.as_ref().map_or(1.0, |p| p.prior_sigma);
        let code = sample_code(
            attrs,
            sigma,
            self.latent_dim,
            &requested,
            1.0,
            &mut SeededRng::new(seed, 0),
        );
        Snapshot {
            values: attrs
                .iter()
                .zip(&code)
                .map(|(a, &y)| a.from_flow(y))
                .collect(),
            noise: code[k..].to_vec(),
            temperature,
            seed: Some(seed),
            exact: None,
        }
    }

    /// A render job for the live snapshot; `settle` also records it as a history step.
    fn render(&mut self, settle: bool) -> Job {
        self.next_seq += 1;
        if settle {
            self.history.push(self.live.clone());
            self.settled_seq = self.next_seq;
        }
        Job::Render {
            seq: self.next_seq,
            code: self.code_of(&self.live),
            exact: self.live.exact.clone(),
            settle,
        }
    }

    /// Whether a render is still outstanding.
    pub fn rendering(&self) -> bool {
        self.face.as_ref().is_none_or(|f| f.seq < self.next_seq)
    }

    /// Whether nothing is being computed.
    pub fn idle(&self) -> bool {
        !self.rendering() && self.busy == 0
    }

    /// A new identity from `seed`; locked attributes keep their values.
    pub fn new_face(&mut self, seed: u64) -> Job {
        self.live = self.sampled(seed, self.live.temperature);
        self.origin = self.live.clone();
        self.set_target(None);
        self.set_before(None);
        self.render(true)
    }

    fn set_target(&mut self, target: Option<RgbImage>) {
        self.target = target;
        self.target_rev += 1;
    }

    fn set_before(&mut self, before: Option<RgbImage>) {
        self.before = before;
        self.before_rev += 1;
        self.before_seq = None;
    }

    /// The next seed after the current one (or 0 for a loaded face).
    pub fn next_seed(&self) -> u64 {
        self.live.seed.map_or(0, |s| s.wrapping_add(1))
    }

    /// Moves attribute `k` to `value`; `settle` records a history step (slider released).
    pub fn set_value(&mut self, k: usize, value: f32, settle: bool) -> Job {
        if let Some(v) = self.live.values.get_mut(k) {
            *v = value;
            self.last_touched = Some(k);
        }
        self.live.exact = None;
        self.render(settle)
    }

    /// Changes the temperature of the free coordinates.
    pub fn set_temperature(&mut self, t: f32, settle: bool) -> Job {
        self.live.temperature = t.clamp(*TEMPERATURE_RANGE.start(), *TEMPERATURE_RANGE.end());
        self.live.exact = None;
        self.render(settle)
    }

    /// Puts attribute `k` back where the identity started.
    pub fn reset(&mut self, k: usize) -> Job {
        let v = self.origin.values.get(k).copied().unwrap_or(0.0);
        self.set_value(k, v, true)
    }

    /// Steps back in history; None if there is nothing to undo.
    pub fn undo(&mut self) -> Option<Job> {
        self.history.undo().then(|| self.show_history())
    }

    /// Steps forward; None if there is nothing to redo.
    pub fn redo(&mut self) -> Option<Job> {
        self.history.redo().then(|| self.show_history())
    }

    fn show_history(&mut self) -> Job {
        self.live = self.history.current().clone();
        self.render(false)
    }

    /// Goes back to a face of the recent strip (as a new step).
    pub fn recall(&mut self, i: usize) -> Option<Job> {
        let (snap, _) = self.recent.get(i)?.clone();
        self.live = snap;
        Some(self.render(true))
    }

    /// A latent arrived from a file or a projection.
    pub fn loaded(&mut self, latent: Vec<f32>, code: Vec<f32>, target: Option<RgbImage>) -> Job {
        let k = self.attributes().len();
        self.live = Snapshot {
            values: self
                .attributes()
                .iter()
                .zip(&code)
                .map(|(a, &y)| a.from_flow(y))
                .collect(),
            noise: code[k..].to_vec(),
            temperature: 1.0,
            seed: None,
            exact: Some(latent),
        };
        self.origin = self.live.clone();
        self.set_target(target);
        self.set_before(None);
        let job = self.render(true);
        self.before_seq = Some(self.next_seq);
        job
    }

    /// Another plugin is active: sliders are rebuilt around the current face.
    pub fn plugin_loaded(&mut self, info: PluginInfo, code: Option<Vec<f32>>) -> Job {
        let latent = self.face.as_ref().map(|f| f.latent.clone());
        let k = info.attributes.len();
        self.locked = vec![false; k];
        self.plugin = Some(info);
        self.recent.clear();
        self.strips_rev += 1;
        match (code, latent) {
            (Some(code), Some(latent)) => {
                let target = self.target.take();
                self.history = History::new(self.live.clone());
                self.loaded(latent, code, target)
            }
            _ => {
                let seed = self.live.seed.unwrap_or(0);
                self.live.values = vec![0.0; k];
                self.live = self.sampled(seed, self.live.temperature);
                self.history = History::new(self.live.clone());
                self.origin = self.live.clone();
                self.render(true)
            }
        }
    }

    /// A face was computed.
    pub fn rendered(&mut self, face: Face, ms: f32) {
        if self.face.as_ref().is_some_and(|f| f.seq > face.seq) {
            return;
        }
        self.compute_ms = ms;
        if self.before_seq == Some(face.seq)
            && let Some(image) = &face.image
        {
            self.before = Some(image.clone());
            self.before_rev += 1;
            self.before_seq = None;
        }
        if face.seq == self.settled_seq
            && let Some(image) = &face.image
        {
            let snap = self.history.current().clone();
            if self.recent.back().is_none_or(|(s, _)| *s != snap) {
                self.recent.push_back((snap, image.clone()));
                if self.recent.len() > RECENT_FACES {
                    self.recent.pop_front();
                }
                self.strips_rev += 1;
            }
        }
        self.face = Some(face);
    }

    /// Marks the current face for export.
    pub fn add_to_tray(&mut self) {
        let Some(face) = &self.face else { return };
        let Some(image) = &face.image else {
            // A drag frame on the GPU has no pixels on the CPU; the settled face will.
            self.notice = Some("Release the slider first, then add the face to the tray".into());
            return;
        };
        let names = self.attributes().iter().map(|a| a.name.clone());
        self.tray.push(ExportItem {
            latent: face.latent.clone(),
            image: image.clone(),
            seed: self.live.seed,
            temperature: self.live.temperature,
            requested: names
                .clone()
                .zip(self.live.values.iter().copied())
                .collect(),
            readout: names.zip(face.readout.iter().copied()).collect(),
        });
        self.strips_rev += 1;
        self.notice = Some(format!("{} face(s) in the tray", self.tray.len()));
    }

    /// The tray was written out.
    pub fn exported(&mut self) {
        self.tray.clear();
        self.strips_rev += 1;
    }

    /// A job that exports the tray into `dir`.
    pub fn export(&mut self, dir: PathBuf, scale: u32) -> Option<Job> {
        if self.tray.is_empty() {
            self.notice = Some("The tray is empty: add faces with T or 'Add to tray'".into());
            return None;
        }
        self.busy += 1;
        Some(Job::Export {
            dir,
            items: self.tray.clone(),
            scale,
        })
    }

    /// A job that writes a sweep of attribute `attribute` of the current face
    /// (`steps` values over the attribute's sweep range) into `dir` as a PNG grid and a GIF.
    pub fn export_sweep(
        &mut self,
        dir: PathBuf,
        attribute: usize,
        steps: usize,
        scale: u32,
    ) -> Option<Job> {
        let Some(face) = &self.face else {
            self.notice = Some("No face yet".into());
            return None;
        };
        if self.plugin.is_none() {
            self.notice = Some("A sweep needs a plugin".into());
            return None;
        }
        let latent = face.latent.clone();
        self.busy += 1;
        Some(Job::Sweep {
            dir,
            latent,
            attribute,
            steps,
            scale,
        })
    }
}
