//! The editor application: owns the state, the worker and the textures, lays
//! out the panels (menu bar, controls, face, strips, status bar) and applies
//! the [`Action`]s they return.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use eframe::egui_wgpu;
use egui::{Key, KeyboardShortcut, Modifiers, TextureHandle, TextureOptions};
use plugen_core::compute::device::{Compute, DeviceChoice};
use plugen_core::compute::gpu::{self, GpuContext};
use plugen_core::error::Result;
use plugen_core::learn::labelling::AttributeDefinition;
use plugen_core::{Model, PluginChoice};

use super::action::{Action, Dialog};
use super::face_view::FaceTextures;
use super::labelling::{LabelPanel, NewAttributeForm, Training};
use super::settings::Settings;
use super::state::{EditorState, Face, Projection};
use super::strips::{Status, Thumbnails};
use super::sweep_export::{self, SweepForm};
use super::textures::{GpuFaceTexture, filter_of, sync_image, to_color_image};
use super::worker::{self, Job, Reply, Worker};
use super::{controls, face_view, labelling, menu, strips};

/// A file dialog's answer, from its own thread.
pub enum Picked {
    /// A file to open (latent or image).
    Open(PathBuf),
    /// A plugin to load.
    Plugin(PathBuf),
    /// A folder to export into.
    ExportDir(PathBuf),
}

/// The editor.
pub struct EditorApp {
    /// Everything the user sees and changes.
    pub state: EditorState,
    /// Persistent settings.
    pub settings: Settings,
    worker: Worker,
    /// What computes the faces (status bar): an adapter, CUDA or the CPU.
    pub device_name: String,
    /// The face computed straight into a texture of the window's own wgpu device.
    gpu_face: Option<GpuFaceTexture>,
    face_texture: Option<(u64, TextureHandle)>,
    target_texture: Option<TextureHandle>,
    target_rev: Option<u64>,
    before_texture: Option<TextureHandle>,
    before_rev: Option<u64>,
    thumbs: Vec<TextureHandle>,
    tray_thumbs: Vec<TextureHandle>,
    strips_rev: Option<u64>,
    picked_tx: Sender<Picked>,
    picked_rx: Receiver<Picked>,
    title: String,
    /// Duration of the last UI frame, seconds.
    pub frame_dt: f32,
    /// The export folder as typed in the tray row.
    pub export_text: String,
    started: web_time::Instant,
    first_face_logged: bool,
    /// Label mode, when active.
    pub label: Option<LabelPanel>,
    /// The "New attribute" form, when open.
    pub new_attribute: Option<NewAttributeForm>,
    /// A plugin version being trained in the background.
    pub training: Option<Training>,
    /// The "Export sweep" window, when open.
    pub sweep_form: Option<SweepForm>,
}

impl EditorApp {
    /// Loads the model (and its plugin, or `plugin`) and starts the worker;
    /// `wake` is called from the worker when a result is ready (eframe passes a
    /// repaint request). Without a window renderer, `--device wgpu` computes on
    /// a wgpu device of its own and the pixels come back for display.
    pub fn new(
        model_dir: Option<&Path>,
        plugin: Option<&Path>,
        device: DeviceChoice,
        settings: Settings,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self> {
        Self::with_renderer(model_dir, plugin, device, settings, None, wake)
    }

    /// Like [`EditorApp::new`], computing on the window renderer's wgpu device
    /// when `device` allows it (`auto`: a hardware adapter; `wgpu`: any), the
    /// face written into a texture the window draws: no pixels cross to the
    /// CPU per frame.
    pub fn with_renderer(
        model_dir: Option<&Path>,
        plugin: Option<&Path>,
        device: DeviceChoice,
        settings: Settings,
        renderer: Option<&egui_wgpu::RenderState>,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self> {
        let choice = match plugin {
            Some(p) => PluginChoice::Path(p),
            None => PluginChoice::BundleDefault,
        };
        let (compute, note) = editor_compute(device, renderer)?;
        let mut model = Model::load_on(model_dir, choice, compute)?;
        let shares_device = match (renderer, model.gpu()) {
            (Some(r), Some(g)) => r.device == *g.device(),
            _ => false,
        };
        let gpu_face = match renderer {
            Some(r) if shares_device => {
                let view = model.face_texture()?.view().clone();
                let filter = filter_of(settings.smooth);
                let id = r
                    .renderer
                    .write()
                    .register_native_texture(&r.device, &view, filter);
                Some(GpuFaceTexture {
                    id,
                    view,
                    filter,
                    renderer: r.clone(),
                })
            }
            _ => None,
        };
        let mut device_name = model.device_name().to_string();
        if cfg!(target_arch = "wasm32") && model.gpu().is_none() {
            device_name = "CPU in wasm (no WebGPU in this browser)".to_string();
        }
        if let Some(n) = &note {
            eprintln!("plugen: {n}");
        }
        let name = model.bundle().manifest().name.clone();
        let info = worker::plugin_info(&model);
        let dim = model.latent_dim();
        let worker = Worker::start(model, wake);
        let (mut state, first) = EditorState::new(name, dim, info, 0);
        state.notice = note;
        worker.send(first);
        let (picked_tx, picked_rx) = channel();
        let export_text = settings.export_text();
        Ok(Self {
            state,
            settings,
            worker,
            device_name,
            gpu_face,
            face_texture: None,
            target_texture: None,
            target_rev: None,
            before_texture: None,
            before_rev: None,
            thumbs: Vec::new(),
            tray_thumbs: Vec::new(),
            strips_rev: None,
            picked_tx,
            picked_rx,
            title: String::new(),
            frame_dt: 0.0,
            export_text,
            started: web_time::Instant::now(),
            first_face_logged: false,
            label: None,
            new_attribute: None,
            training: None,
            sweep_form: None,
        })
    }

    /// Whether faces are computed straight into a texture of the window's wgpu device.
    pub fn computes_into_texture(&self) -> bool {
        self.gpu_face.is_some()
    }

    /// Sends a job to the worker.
    pub fn send(&self, job: Job) {
        self.worker.send(job);
    }

    /// Sends an optional job.
    pub fn send_opt(&self, job: Option<Job>) {
        if let Some(job) = job {
            self.worker.send(job);
        }
    }

    /// Opens a file: latents and sidecars load, images are projected.
    pub fn open_path(&mut self, path: PathBuf) {
        self.settings.open_dir = path.parent().map(Path::to_path_buf);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        self.state.busy += 1;
        if matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
            let cancel = Arc::new(AtomicBool::new(false));
            self.state.projection = Some(Projection {
                source: path.clone(),
                step: 0,
                steps: 1,
                loss: f32::NAN,
                cancel: cancel.clone(),
            });
            self.send(Job::Project {
                path,
                seed: 0,
                cancel,
            });
        } else {
            self.send(Job::LoadLatent(path));
        }
    }

    /// Loads another plugin.
    pub fn open_plugin(&mut self, path: PathBuf) {
        self.state.busy += 1;
        let current = self.state.face.as_ref().map(|f| f.latent.clone());
        self.send(Job::LoadPlugin { path, current });
    }

    /// Opens the "Export sweep" window on the attribute moved last.
    pub fn open_sweep_form(&mut self) {
        if self.state.plugin.is_none() {
            self.state.notice = Some("A sweep needs a plugin".into());
            return;
        }
        self.sweep_form = Some(SweepForm::new(self.state.last_touched.unwrap_or(0)));
    }

    /// Exports the tray into `dir` (remembered for next time).
    pub fn export_to(&mut self, dir: PathBuf) {
        self.export_text = dir.display().to_string();
        self.settings.export_dir = Some(dir.clone());
        let job = self.state.export(dir, self.settings.export_scale);
        self.send_opt(job);
    }

    /// Shows a native file dialog on its own thread; its answer arrives as [`Picked`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn pick(&self, what: Dialog) {
        let tx = self.picked_tx.clone();
        let open_dir = self.settings.open_dir.clone();
        let export_dir = self.settings.export_dir.clone();
        std::thread::spawn(move || {
            let dialog = rfd::FileDialog::new();
            let picked = match what {
                Dialog::Open => dialog
                    .set_directory(open_dir.unwrap_or_default())
                    .add_filter(
                        "Latents, sidecars and images",
                        &["npy", "safetensors", "json", "png", "jpg", "jpeg"],
                    )
                    .pick_file()
                    .map(Picked::Open),
                Dialog::Plugin => dialog
                    .set_directory(open_dir.unwrap_or_default())
                    .add_filter("plugin.json", &["json"])
                    .pick_file()
                    .map(Picked::Plugin),
                _ => dialog
                    .set_directory(export_dir.unwrap_or_default())
                    .pick_folder()
                    .map(Picked::ExportDir),
            };
            if let Some(p) = picked {
                let _ = tx.send(p);
            }
        });
    }

    /// Shows the browser's file picker; the picked files are handed to the
    /// loaders in memory (`io::preloaded`, under `/picked/`) and their path
    /// arrives as [`Picked`]. The tray is exported as browser downloads.
    #[cfg(target_arch = "wasm32")]
    pub fn pick(&self, what: Dialog) {
        let tx = self.picked_tx.clone();
        if what == Dialog::ExportDir {
            let _ = tx.send(Picked::ExportDir(PathBuf::from(worker::DOWNLOADS)));
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            let dialog = rfd::AsyncFileDialog::new();
            let files = match what {
                Dialog::Plugin => dialog
                    .add_filter("plugin.json and its .safetensors", &["json", "safetensors"])
                    .pick_files()
                    .await
                    .unwrap_or_default(),
                _ => dialog
                    .add_filter("Latents and sidecars", &["npy", "safetensors", "json"])
                    .pick_file()
                    .await
                    .into_iter()
                    .collect(),
            };
            let dir = Path::new("/picked");
            let mut chosen = None;
            for file in files {
                let path = dir.join(file.file_name());
                plugen_core::io::preloaded::insert(&path, file.read().await);
                if chosen.is_none() || path.extension().is_some_and(|e| e == "json") {
                    chosen = Some(path);
                }
            }
            if let Some(path) = chosen {
                let _ = tx.send(match what {
                    Dialog::Plugin => Picked::Plugin(path),
                    _ => Picked::Open(path),
                });
            }
        });
    }

    /// Applies worker replies and dialog answers.
    pub fn poll(&mut self) {
        for reply in self.worker.poll() {
            self.apply(reply);
        }
        while let Ok(picked) = self.picked_rx.try_recv() {
            match picked {
                Picked::Open(p) => self.open_path(p),
                Picked::Plugin(p) => self.open_plugin(p),
                Picked::ExportDir(d) => self.export_to(d),
            }
        }
    }

    fn apply(&mut self, reply: Reply) {
        let s = &mut self.state;
        match reply {
            Reply::Judged { seq, reading } => s.judged = Some((seq, reading)),
            Reply::Rendered {
                seq,
                latent,
                image,
                readout,
                ms,
            } => {
                s.rendered(
                    Face {
                        latent,
                        image,
                        readout,
                        seq,
                    },
                    ms,
                );
            }
            Reply::Loaded {
                source,
                latent,
                code,
                target,
            } => {
                s.busy = s.busy.saturating_sub(1);
                s.projection = None;
                s.error = None;
                s.notice = Some(format!("Loaded {}", source.display()));
                let job = s.loaded(latent, code, target);
                self.send(job);
            }
            Reply::Progress { step, steps, loss } => {
                if let Some(p) = &mut s.projection {
                    p.step = step;
                    p.steps = steps;
                    p.loss = loss;
                }
            }
            Reply::PluginLoaded { info, code } => {
                s.busy = s.busy.saturating_sub(1);
                s.error = None;
                s.notice = Some(format!("Plugin {} loaded", info.path.display()));
                let job = s.plugin_loaded(info, code);
                self.send(job);
            }
            Reply::LabelPage { faces, suggested } => {
                if let Some(panel) = &mut self.label {
                    panel.page_arrived(faces, suggested);
                }
            }
            Reply::TrainProgress { fraction, loss } => {
                if let Some(t) = self.training.as_mut() {
                    t.fraction = fraction;
                    t.loss = loss;
                }
            }
            Reply::Trained { path, summary } => {
                self.training = None;
                if let Some(p) = &mut self.label {
                    p.last_result = Some(format!("Trained {}: {summary}", path.display()));
                }
                self.state.notice =
                    Some(format!("New plugin version {}: {summary}", path.display()));
                self.open_plugin(path);
            }
            Reply::TrainFailed { message } => {
                self.training = None;
                if let Some(p) = &mut self.label {
                    p.last_result = Some(format!("Training stopped: {message}"));
                }
                self.state.error = Some(message);
            }
            Reply::SweptTo { files } => {
                s.busy = s.busy.saturating_sub(1);
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                s.notice = Some(format!("Sweep saved: {}", names.join(", ")));
            }
            Reply::Exported { files } => {
                s.busy = s.busy.saturating_sub(1);
                s.notice = Some(format!(
                    "Exported {} faces to {}",
                    files.len() / 2,
                    self.settings
                        .export_dir
                        .as_deref()
                        .unwrap_or(Path::new("."))
                        .display()
                ));
                s.exported();
            }
            Reply::Failed {
                render_seq,
                message,
            } => {
                if let Some(seq) = render_seq {
                    // Keep the last good face; mark the request as answered.
                    if let Some(f) = &mut s.face {
                        f.seq = f.seq.max(seq);
                    }
                } else {
                    s.busy = s.busy.saturating_sub(1);
                    s.projection = None;
                }
                s.error = Some(message);
            }
        }
    }

    /// What the face view shows: the face (once computed), the target and
    /// the face as loaded.
    fn face_textures(&self) -> FaceTextures {
        let face = match (&self.gpu_face, &self.face_texture) {
            // The GPU texture holds a face once the first render has answered.
            (Some(g), _) if self.state.face.is_some() => Some(g.id),
            (None, Some((_, tex))) => Some(tex.id()),
            _ => None,
        };
        FaceTextures {
            face,
            target: self.target_texture.as_ref().map(TextureHandle::id),
            before: self.before_texture.as_ref().map(TextureHandle::id),
        }
    }

    /// What the judges read off the face shown, once it has settled.
    fn judged_line(&self) -> Option<String> {
        let (seq, reading) = self.state.judged.as_ref()?;
        let face = self.state.face.as_ref()?;
        let plugin = self.state.plugin.as_ref()?;
        (face.seq == *seq)
            .then(|| face_view::judges_line(&plugin.attributes, &plugin.judges, reading))
    }

    /// Applies one panel's request.
    pub fn apply_action(&mut self, action: Action) {
        let s = &mut self.state;
        match action {
            Action::NewFace(seed) => {
                let seed = seed.unwrap_or_else(|| s.next_seed());
                let job = s.new_face(seed);
                self.send(job);
            }
            Action::SetTemperature { value, settle } => {
                let job = s.set_temperature(value, settle);
                self.send(job);
            }
            Action::SetValue {
                index,
                value,
                settle,
            } => {
                let job = s.set_value(index, value, settle);
                self.send(job);
            }
            Action::Reset(k) => {
                let job = s.reset(k);
                self.send(job);
            }
            Action::SetLock(k, on) => {
                if let Some(l) = s.locked.get_mut(k) {
                    *l = on;
                }
            }
            Action::DismissError => s.error = None,
            Action::CancelProjection => {
                if let Some(p) = &s.projection {
                    p.cancel.store(true, Ordering::Relaxed);
                }
            }
            Action::Undo => {
                let job = s.undo();
                self.send_opt(job);
            }
            Action::Redo => {
                let job = s.redo();
                self.send_opt(job);
            }
            Action::AddToTray => s.add_to_tray(),
            Action::Recall(i) => {
                let job = s.recall(i);
                self.send_opt(job);
            }
            Action::Pick(what) => self.pick(what),
            Action::OpenPlugin(path) => self.open_plugin(path),
            Action::ExportTray(dir) => self.export_to(dir),
            Action::OpenSweepForm => self.open_sweep_form(),
            Action::ExportSweep {
                dir,
                attribute,
                steps,
            } => {
                self.settings.export_dir = Some(dir.clone());
                let job = s.export_sweep(dir, attribute, steps, self.settings.export_scale);
                self.send_opt(job);
            }
            Action::OpenNewAttribute => self.new_attribute = Some(Default::default()),
            Action::StartLabelling(def) => match self.start_labelling(def) {
                Ok(()) => self.new_attribute = None,
                Err(e) => {
                    if let Some(f) = &mut self.new_attribute {
                        f.error = Some(e.to_string());
                    }
                }
            },
            Action::LabelSelected(value) => self.label_selected(value),
            Action::SelectFace(i) => {
                if let Some(p) = &mut self.label {
                    p.cursor = i;
                }
            }
            Action::LabelFace(i, value) => {
                if let Some(p) = &mut self.label {
                    p.cursor = i;
                }
                self.label_selected(Some(value));
            }
            Action::UndoLabel => {
                if self.label.as_mut().is_some_and(LabelPanel::undo_label) {
                    self.save_session();
                }
            }
            Action::TrainLabels => self.train_labels(),
            Action::CancelTraining => {
                if let Some(t) = &self.training {
                    t.cancel.store(true, Ordering::Relaxed);
                }
            }
            Action::CloseLabelling => self.close_labelling(),
        }
    }

    /// Starts (or resumes) labelling `def` for the current plugin.
    pub fn start_labelling(&mut self, def: AttributeDefinition) -> Result<()> {
        let base = self.state.plugin.as_ref().map(|p| p.path.as_path());
        let mut panel = LabelPanel::start(def, base, self.state.latent_dim)?;
        let job = panel.page_request();
        self.label = Some(panel);
        self.send(job);
        Ok(())
    }

    /// Labels the selected face (`None` skips it), saves the session and asks
    /// for the next page when this one is done.
    fn label_selected(&mut self, value: Option<f32>) {
        let Some(panel) = &mut self.label else { return };
        if !panel.label_selected(value) {
            return;
        }
        self.save_session();
        if let Some(panel) = self.label.as_mut().filter(|p| p.needs_page()) {
            let job = panel.page_request();
            self.send(job);
        }
    }

    fn save_session(&mut self) {
        if let Some(panel) = &self.label
            && let Err(e) = panel.save()
        {
            self.state.error = Some(e.to_string());
        }
    }

    /// Trains a new plugin version with the session's labels, in the background.
    fn train_labels(&mut self) {
        let Some(panel) = &self.label else { return };
        if self.training.is_some() || !panel.can_train() {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let job = panel.train_job(cancel.clone());
        self.training = Some(Training {
            cancel,
            fraction: 0.0,
            loss: f32::NAN,
        });
        self.send(job);
    }

    /// Leaves label mode (the session stays saved; a training in progress
    /// goes on, shown in the status bar, and loads its plugin when done).
    fn close_labelling(&mut self) {
        self.label = None;
    }

    /// The window title: "plugen — model (plugin)".
    pub fn title(&self) -> String {
        let plugin = self.state.plugin.as_ref().and_then(|p| {
            p.path
                .parent()
                .and_then(|d| d.file_name())
                .map(|f| f.to_string_lossy().into_owned())
        });
        match plugin {
            Some(p) => format!("plugen — {} — plugin {p}", self.state.model_name),
            None => format!("plugen — {}", self.state.model_name),
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        let typing = ctx.memory(|m| m.focused().is_some());
        let (redo, undo, open, export) = ctx.input_mut(|i| {
            (
                i.consume_shortcut(&KeyboardShortcut::new(
                    Modifiers::COMMAND | Modifiers::SHIFT,
                    Key::Z,
                )),
                i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::Z)),
                i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::O)),
                i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::S)),
            )
        });
        let (new_face, tray) = if typing {
            (false, false)
        } else {
            ctx.input_mut(|i| {
                (
                    i.consume_key(Modifiers::NONE, Key::R),
                    i.consume_key(Modifiers::NONE, Key::T),
                )
            })
        };
        let pressed = [
            (redo, Action::Redo),
            (undo, Action::Undo),
            (open, Action::Pick(Dialog::Open)),
            (export, Action::Pick(Dialog::ExportDir)),
            (new_face, Action::NewFace(None)),
            (tray, Action::AddToTray),
        ];
        for (_, action) in pressed.into_iter().filter(|(on, _)| *on) {
            self.apply_action(action);
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let dropped: Vec<PathBuf> = ctx.input(|i| {
                i.raw
                    .dropped_files
                    .iter()
                    .map(|f| f.path().to_path_buf())
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            });
            if let Some(p) = dropped.into_iter().next() {
                self.open_path(p);
            }
        }
        // In a browser a dropped file has no path: its bytes are handed to
        // the loaders in memory, as the file picker's are.
        #[cfg(target_arch = "wasm32")]
        if let Some(file) = ctx.input(|i| i.raw.dropped_files.first().cloned()) {
            let tx = self.picked_tx.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let name = file.path().file_name().map(|n| n.to_os_string());
                if let (Some(name), Ok(bytes)) = (name, file.bytes_async().await) {
                    let path = Path::new("/picked").join(name);
                    plugen_core::io::preloaded::insert(&path, bytes);
                    let _ = tx.send(Picked::Open(path));
                }
            });
        }
    }

    /// Keeps textures in step with the state.
    fn sync_textures(&mut self, ctx: &egui::Context) {
        let options = if self.settings.smooth {
            TextureOptions::LINEAR
        } else {
            TextureOptions::NEAREST
        };
        if let Some(g) = &mut self.gpu_face {
            g.set_filter(filter_of(self.settings.smooth));
        }
        if let Some(face) = &self.state.face {
            let stale = self
                .face_texture
                .as_ref()
                .is_none_or(|(seq, _)| *seq != face.seq);
            // On the GPU path the worker wrote the texture already.
            let image = face.image.as_ref().filter(|_| self.gpu_face.is_none());
            if stale && let Some(image) = image {
                let img = to_color_image(image);
                match &mut self.face_texture {
                    Some((seq, tex)) => {
                        tex.set(img, options);
                        *seq = face.seq;
                    }
                    None => {
                        self.face_texture = Some((face.seq, ctx.load_texture("face", img, options)))
                    }
                }
            }
            // The smoke tests wait for this line (in a browser: on the console).
            let log =
                cfg!(target_arch = "wasm32") || std::env::var_os("PLUGEN_SMOKE_LOG").is_some();
            if !self.first_face_logged && log {
                self.first_face_logged = true;
                let line = format!(
                    "plugen: first face shown after {} ms on {}",
                    self.started.elapsed().as_millis(),
                    self.device_name
                );
                #[cfg(target_arch = "wasm32")]
                web_sys::console::log_1(&line.into());
                #[cfg(not(target_arch = "wasm32"))]
                eprintln!("{line}");
            }
        }
        sync_image(
            ctx,
            "target",
            self.state.target.as_ref(),
            (self.state.target_rev, &mut self.target_rev),
            &mut self.target_texture,
            options,
        );
        sync_image(
            ctx,
            "before",
            self.state.before.as_ref(),
            (self.state.before_rev, &mut self.before_rev),
            &mut self.before_texture,
            options,
        );
        if self.strips_rev != Some(self.state.strips_rev) {
            self.strips_rev = Some(self.state.strips_rev);
            let tex = |name: String, img: &image::RgbImage| {
                ctx.load_texture(name, to_color_image(img), options)
            };
            self.thumbs = self
                .state
                .recent
                .iter()
                .enumerate()
                .map(|(i, (_, img))| tex(format!("recent-{i}"), img))
                .collect();
            self.tray_thumbs = self
                .state
                .tray
                .iter()
                .enumerate()
                .map(|(i, item)| tex(format!("tray-{i}"), &item.image))
                .collect();
        }
    }

    /// Draws the whole window: used by eframe and by the tests.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.frame_dt = ctx.input(|i| i.unstable_dt);
        let theme = if self.settings.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        };
        if ctx.theme() != theme {
            ctx.set_theme(theme);
        }
        self.poll();
        match &mut self.label {
            Some(panel) => {
                if let Some(action) = labelling::keys(&ctx, panel) {
                    self.apply_action(action);
                }
            }
            None => self.shortcuts(&ctx),
        }
        self.sync_textures(&ctx);
        let title = self.title();
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        let mut actions = Vec::new();
        let plugin = self.state.plugin.as_ref().map(|p| p.path.clone());
        egui::Panel::top("menu").show(ui, |ui| {
            actions.extend(menu::show(ui, plugin.as_deref(), &mut self.settings));
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            let status = Status {
                device_name: &self.device_name,
                frame_dt: self.frame_dt,
                training: self.training.as_ref(),
            };
            actions.extend(strips::status_bar(ui, &self.state, status));
        });
        egui::Panel::bottom("strips")
            .resizable(false)
            .show(ui, |ui| {
                let thumbs = Thumbnails {
                    recent: &self.thumbs,
                    tray: &self.tray_thumbs,
                };
                actions.extend(strips::show(ui, thumbs, &mut self.export_text));
            });
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(360.0)
            .show(ui, |ui| actions.extend(controls::show(ui, &self.state)));
        let textures = self.face_textures();
        let judged = self.judged_line();
        egui::CentralPanel::default_margins().show(ui, |ui| match &mut self.label {
            Some(panel) => actions.extend(labelling::show(ui, panel, self.training.as_ref())),
            None => face_view::show(ui, textures, judged.as_deref(), &mut self.settings),
        });
        actions.extend(labelling::show_form(&ctx, &mut self.new_attribute));
        match self.state.plugin.as_ref() {
            Some(plugin) => actions.extend(sweep_export::show(
                &ctx,
                &mut self.sweep_form,
                &plugin.attributes,
                &mut self.export_text,
            )),
            None => self.sweep_form = None,
        }
        for action in actions {
            self.apply_action(action);
        }
        if !self.state.idle() {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        }
    }
}

/// Where the editor computes, given the window's renderer, and one line
/// saying why a GPU was passed over (shown in the status line).
///
/// `auto`: CUDA/Metal where built and present, else the renderer's adapter if
/// it is hardware with compute, else the CPU (a software renderer such as
/// llvmpipe is slower than the CPU path). `wgpu`: the renderer's adapter,
/// whatever it is, or the CPU with a message if it cannot compute. Without a
/// renderer, as on the command line.
fn editor_compute(
    device: DeviceChoice,
    renderer: Option<&egui_wgpu::RenderState>,
) -> Result<(Compute, Option<String>)> {
    let Some(r) = renderer.filter(|_| matches!(device, DeviceChoice::Auto | DeviceChoice::Wgpu))
    else {
        let compute = device.open_compute()?;
        let note = compute.note.clone();
        return Ok((compute, note));
    };
    if device == DeviceChoice::Auto {
        let candle = device.open()?;
        if !candle.is_cpu() {
            return Ok((
                Compute {
                    candle,
                    gpu: None,
                    note: None,
                },
                None,
            ));
        }
    }
    let info = r.adapter.get_info();
    if device == DeviceChoice::Auto && gpu::is_software(&info) {
        return Ok((
            Compute::cpu(),
            Some(format!(
                "{} is a software renderer: faces are computed on the CPU (--device wgpu uses it anyway)",
                info.name
            )),
        ));
    }
    match GpuContext::from_device(&r.adapter, r.device.clone(), r.queue.clone()) {
        Ok(ctx) => Ok((
            Compute {
                candle: plugen_core::Device::Cpu,
                gpu: Some(ctx),
                note: None,
            },
            None,
        )),
        Err(e) => Ok((
            Compute::cpu(),
            Some(format!("{e}: faces are computed on the CPU")),
        )),
    }
}

impl eframe::App for EditorApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        EditorApp::ui(self, ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}
