//! Label mode: define a new attribute, label a grid of seeded faces with the
//! keyboard (1 = has it, 0 = does not, space = skip, arrows = move, backspace =
//! undo; a continuous attribute gets a slider per face), and train a new plugin
//! version in the background that adds it as a slider.
//!
//! The session is saved after every label as `labelling-NAME.json` next to the
//! plugin, so closing the editor loses nothing and a session can be resumed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use egui::{Color32, Key, TextureHandle};
use image::RgbImage;
use plugen_core::error::{Error, Result};
use plugen_core::learn::labelling::{AttributeDefinition, LabelSession};
use plugen_core::model::attributes::AttributeKind;

use super::action::Action;
use super::textures::to_color_image;
use super::worker::Job;

/// Faces per page.
pub const PAGE: usize = 12;
/// Faces per row of the page.
const COLUMNS: usize = 4;
/// Seed of the faces of a new session.
pub const SESSION_SEED: u64 = 2026;
/// Fewest labels of each class (binary) or in all (continuous) before training.
pub const MIN_PER_CLASS: usize = 5;

/// The "New attribute" form.
#[derive(Debug, Clone, Default)]
pub struct NewAttributeForm {
    /// Identifier typed so far.
    pub name: String,
    /// Continuous instead of binary.
    pub continuous: bool,
    /// One-line description.
    pub description: String,
    /// Why the last start failed.
    pub error: Option<String>,
}

/// One face on the page.
pub struct PageFace {
    /// Its index in the session's seed.
    pub index: u64,
    image: RgbImage,
    texture: Option<TextureHandle>,
}

/// Background training in progress.
pub struct Training {
    /// Set to stop.
    pub cancel: Arc<AtomicBool>,
    /// 0..1.
    pub fraction: f32,
    /// Current loss.
    pub loss: f32,
}

/// The label-mode panel's state.
pub struct LabelPanel {
    /// The session (saved after every change).
    pub session: LabelSession,
    /// Where it is saved.
    pub path: PathBuf,
    /// Faces shown now.
    pub page: Vec<PageFace>,
    /// Selected face on the page.
    pub cursor: usize,
    /// A page was asked for and has not arrived.
    pub waiting: bool,
    /// The page was chosen by uncertainty (active learning).
    pub suggested: bool,
    /// The last training's result.
    pub last_result: Option<String>,
}

impl LabelPanel {
    /// Whether every face on the page has been labelled or skipped.
    fn page_done(&self) -> bool {
        self.page
            .iter()
            .all(|f| self.session.shown.contains(&f.index))
    }

    /// Moves the cursor to the next face not yet seen, if any.
    fn advance(&mut self) {
        let n = self.page.len();
        for step in 1..=n {
            let i = (self.cursor + step) % n.max(1);
            if !self.session.shown.contains(&self.page[i].index) {
                self.cursor = i;
                return;
            }
        }
    }

    /// plugin.json of the plugin being extended (named in the session, next to it).
    pub fn base_plugin(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        dir.join(&self.session.base_plugin)
    }

    /// Whether there are enough labels to train.
    pub fn can_train(&self) -> bool {
        let (n, pos) = self.session.counts();
        match self.session.attribute.kind {
            AttributeKind::Binary => pos >= MIN_PER_CLASS && n - pos >= MIN_PER_CLASS,
            AttributeKind::Continuous => n >= 2 * MIN_PER_CLASS,
        }
    }
}

impl LabelPanel {
    /// Starts (or resumes) labelling `def` as an extension of the plugin at
    /// `base` (its plugin.json), for latents of `latent_dim` numbers.
    pub fn start(def: AttributeDefinition, base: Option<&Path>, latent_dim: usize) -> Result<Self> {
        def.validate()?;
        let base = base
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| Error::invalid("open a plugin first: a new attribute extends one"))?;
        let dir = base.parent().map(PathBuf::from).unwrap_or_default();
        let path = LabelSession::path_for(&dir, &def.name);
        let session = if path.exists() {
            let s = LabelSession::read(&path)?;
            if s.dim != latent_dim {
                return Err(Error::format(&path, "made for latents of another size"));
            }
            s
        } else {
            let base_name = base
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let s = LabelSession::new(def, SESSION_SEED, latent_dim, base_name)?;
            s.write(&path)?;
            s
        };
        Ok(Self {
            session,
            path,
            page: Vec::new(),
            cursor: 0,
            waiting: false,
            suggested: false,
            last_result: None,
        })
    }

    /// The job that asks the worker for the next page of faces.
    pub fn page_request(&mut self) -> Job {
        self.waiting = true;
        Job::LabelPage {
            session: Box::new(self.session.clone()),
            count: PAGE,
        }
    }

    /// A page of faces arrived.
    pub fn page_arrived(&mut self, faces: Vec<(u64, RgbImage)>, suggested: bool) {
        self.page = faces
            .into_iter()
            .map(|(index, image)| PageFace {
                index,
                image,
                texture: None,
            })
            .collect();
        self.cursor = 0;
        self.waiting = false;
        self.suggested = suggested;
    }

    /// Whether the page is done and no other has been asked for.
    pub fn needs_page(&self) -> bool {
        self.page_done() && !self.waiting
    }

    /// Labels the selected face (`None` skips it) and moves on; `false` when
    /// no face is selected.
    pub fn label_selected(&mut self, value: Option<f32>) -> bool {
        let Some(face) = self.page.get(self.cursor) else {
            return false;
        };
        let index = face.index;
        match value {
            Some(v) => self.session.set_label(index, v),
            None => self.session.skip(index),
        }
        self.advance();
        true
    }

    /// Removes the last label and selects its face when it is on this page;
    /// `false` when there was none.
    pub fn undo_label(&mut self) -> bool {
        let Some(index) = self.session.undo() else {
            return false;
        };
        self.session.shown.remove(&index);
        if let Some(i) = self.page.iter().position(|f| f.index == index) {
            self.cursor = i;
        }
        true
    }

    /// Saves the session where it belongs.
    pub fn save(&self) -> Result<()> {
        self.session.write(&self.path)
    }

    /// The job that trains a new plugin version with the session's labels.
    pub fn train_job(&self, cancel: Arc<AtomicBool>) -> Job {
        Job::TrainLabels {
            session: Box::new(self.session.clone()),
            base: self.base_plugin(),
            cancel,
        }
    }
}

/// Label-mode keys: labels and undo come back as an action, arrows move the
/// cursor of `panel`.
pub fn keys(ctx: &egui::Context, panel: &mut LabelPanel) -> Option<Action> {
    if ctx.egui_wants_keyboard_input() {
        return None;
    }
    let binary = panel.session.attribute.kind == AttributeKind::Binary;
    let pressed = |k: Key| ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, k));
    if binary && pressed(Key::Num1) {
        return Some(Action::LabelSelected(Some(1.0)));
    } else if binary && pressed(Key::Num0) {
        return Some(Action::LabelSelected(Some(0.0)));
    } else if pressed(Key::Space) {
        return Some(Action::LabelSelected(None));
    } else if pressed(Key::Backspace) {
        return Some(Action::UndoLabel);
    }
    let n = panel.page.len().max(1);
    if pressed(Key::ArrowRight) {
        panel.cursor = (panel.cursor + 1) % n;
    } else if pressed(Key::ArrowLeft) {
        panel.cursor = (panel.cursor + n - 1) % n;
    } else if pressed(Key::ArrowDown) {
        panel.cursor = (panel.cursor + COLUMNS).min(n - 1);
    } else if pressed(Key::ArrowUp) {
        panel.cursor = panel.cursor.saturating_sub(COLUMNS);
    }
    None
}

/// Draws the "New attribute" window while the form is open (closing it
/// empties `slot`); "Start labelling" comes back as an action.
pub fn show_form(ctx: &egui::Context, slot: &mut Option<NewAttributeForm>) -> Option<Action> {
    let form = slot.as_mut()?;
    let mut open = true;
    let mut start = false;
    egui::Window::new("New attribute")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                ui.label("Name");
                ui.add(egui::TextEdit::singleline(&mut form.name).hint_text("glasses"))
                    .on_hover_text("lowercase letters, digits and _");
            });
            ui.horizontal(|ui| {
                ui.radio_value(&mut form.continuous, false, "Binary");
                ui.radio_value(&mut form.continuous, true, "Continuous");
            });
            ui.horizontal(|ui| {
                ui.label("Description");
                ui.text_edit_singleline(&mut form.description);
            });
            if let Some(e) = &form.error {
                ui.colored_label(Color32::RED, e);
            }
            start = ui.button("Start labelling").clicked();
        });
    if start {
        return Some(Action::StartLabelling(AttributeDefinition {
            name: form.name.trim().to_string(),
            kind: if form.continuous {
                AttributeKind::Continuous
            } else {
                AttributeKind::Binary
            },
            description: form.description.trim().to_string(),
        }));
    }
    if !open {
        *slot = None;
    }
    None
}

/// Draws label mode in the central panel; `training` is the training in
/// progress, if any.
pub fn show(
    ui: &mut egui::Ui,
    panel: &mut LabelPanel,
    training: Option<&Training>,
) -> Option<Action> {
    let mut action: Option<Action> = None;
    let mut select = None;
    let a = &panel.session.attribute;
    let (n, pos) = panel.session.counts();
    ui.horizontal(|ui| {
        ui.heading(format!("Label: {}", a.name));
        if !a.description.is_empty() {
            ui.label(format!("({})", a.description));
        }
    });
    ui.horizontal(|ui| match a.kind {
        AttributeKind::Binary => {
            ui.label(format!("{n} labels: {pos} yes, {} no", n - pos));
            ui.label(
                "   keys: 1 = has it, 0 = does not, space = skip, arrows = move, backspace = undo",
            );
        }
        AttributeKind::Continuous => {
            ui.label(format!("{n} labels"));
            ui.label("   drag a face's slider to label it; space = skip, backspace = undo");
        }
    });
    ui.label(if panel.suggested {
        "Suggested faces: the ones the current plugin is least sure about."
    } else {
        "Fresh random faces (suggestions start once a plugin with this attribute is trained)."
    });
    ui.horizontal(|ui| {
        match training {
            Some(t) => {
                ui.add(
                    egui::ProgressBar::new(t.fraction)
                        .desired_width(220.0)
                        .text(format!("training {:.0} %", t.fraction * 100.0)),
                );
                if ui.button("Cancel training").clicked() {
                    action = Some(Action::CancelTraining);
                }
            }
            None => {
                let train = ui
                    .add_enabled(panel.can_train(), egui::Button::new("Train"))
                    .on_hover_text(
                        "Train a new plugin version with these labels (saved next to the old one)",
                    );
                if train.clicked() {
                    action = Some(Action::TrainLabels);
                }
            }
        }
        if ui.button("Done").clicked() {
            action = Some(Action::CloseLabelling);
        }
        if let Some(r) = &panel.last_result {
            ui.label(r);
        }
    });
    ui.separator();
    if panel.waiting && panel.page.is_empty() {
        ui.spinner();
    }
    let ctx = ui.ctx().clone();
    // Rows of COLUMNS faces, each with a caption (and a slider for continuous).
    let rows = PAGE.div_ceil(COLUMNS) as f32;
    let caption = if a.kind == AttributeKind::Continuous {
        52.0
    } else {
        30.0
    };
    let side = ((ui.available_width() / COLUMNS as f32) - 14.0)
        .min(ui.available_height() / rows - caption)
        .clamp(48.0, 160.0);
    let continuous = a.kind == AttributeKind::Continuous;
    egui::Grid::new("label-grid")
        .spacing([8.0, 8.0])
        .show(ui, |ui| {
            for (i, face) in panel.page.iter_mut().enumerate() {
                let tex = face.texture.get_or_insert_with(|| {
                    ctx.load_texture(
                        format!("label-{}", face.index),
                        to_color_image(&face.image),
                        egui::TextureOptions::NEAREST,
                    )
                });
                let label = panel.session.label_of(face.index);
                let seen = panel.session.shown.contains(&face.index);
                let stroke = match (label, seen) {
                    (Some(v), _) if !continuous && v >= 0.5 => Color32::from_rgb(40, 170, 60),
                    (Some(_), _) if !continuous => Color32::from_rgb(200, 50, 50),
                    (Some(_), _) => Color32::from_rgb(40, 120, 200),
                    (None, true) => Color32::GRAY,
                    (None, false) => Color32::TRANSPARENT,
                };
                ui.vertical(|ui| {
                    let frame = egui::Frame::new()
                        .stroke(egui::Stroke::new(
                            if i == panel.cursor { 4.0 } else { 3.0 },
                            if i == panel.cursor {
                                Color32::YELLOW
                            } else {
                                stroke
                            },
                        ))
                        .inner_margin(2.0);
                    let r = frame
                        .show(ui, |ui| {
                            ui.add(
                                egui::Image::new((tex.id(), egui::vec2(side, side)))
                                    .sense(egui::Sense::click()),
                            )
                        })
                        .inner;
                    if r.clicked() {
                        select = Some(i);
                    }
                    let caption = match label {
                        Some(v) => format!("face {}: {v}", face.index),
                        None if seen => format!("face {}: skipped", face.index),
                        None => format!("face {}", face.index),
                    };
                    ui.label(caption);
                    if continuous {
                        let mut v = label.unwrap_or(0.5);
                        let r = ui.add(
                            egui::Slider::new(&mut v, 0.0..=1.0)
                                .text(format!("face {}", face.index)),
                        );
                        if r.drag_stopped() || (r.changed() && !r.dragged()) {
                            action = Some(Action::LabelFace(i, v));
                        }
                    }
                });
                if (i + 1) % COLUMNS == 0 {
                    ui.end_row();
                }
            }
        });
    if let Some(i) = select {
        panel.cursor = i;
    }
    action
}
