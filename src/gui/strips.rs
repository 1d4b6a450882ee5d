//! The bottom panels: recent faces and the export tray, and the status bar.

use egui::TextureHandle;

use super::action::Action;
use super::labelling::Training;
use super::state::EditorState;

const THUMB: f32 = 56.0;

/// What the strips show: thumbnails of the recent faces and of the tray.
pub struct Thumbnails<'a> {
    /// Recent faces, oldest first.
    pub recent: &'a [TextureHandle],
    /// Faces in the tray.
    pub tray: &'a [TextureHandle],
}

/// Draws the recent-faces strip and the tray; `export_text` is the export
/// folder as typed.
pub fn show(ui: &mut egui::Ui, thumbs: Thumbnails, export_text: &mut String) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        ui.label("Recent");
        for (i, tex) in thumbs.recent.iter().enumerate() {
            let r = ui
                .add(egui::Button::image(egui::Image::from_texture((
                    tex.id(),
                    egui::vec2(THUMB, THUMB),
                ))))
                .on_hover_text("Go back to this face");
            if r.clicked() {
                actions.push(Action::Recall(i));
            }
        }
    });
    ui.horizontal(|ui| {
        if ui
            .button("Add to tray")
            .on_hover_text("Mark this face for export (T)")
            .clicked()
        {
            actions.push(Action::AddToTray);
        }
        let n = thumbs.tray.len();
        // In a browser the tray becomes downloads: no folder to choose.
        #[cfg(target_arch = "wasm32")]
        let _ = export_text;
        #[cfg(target_arch = "wasm32")]
        if ui
            .add_enabled(n > 0, egui::Button::new(format!("Download {n}")))
            .on_hover_text("Download PNG + sidecar JSON for each face (Ctrl+S)")
            .clicked()
        {
            let dir = std::path::PathBuf::from(super::worker::DOWNLOADS);
            actions.push(Action::ExportTray(dir));
        }
        #[cfg(not(target_arch = "wasm32"))]
        folder_export(ui, n, export_text, &mut actions);
        for tex in thumbs.tray {
            ui.add(
                egui::Image::from_texture((tex.id(), egui::vec2(THUMB * 0.75, THUMB * 0.75)))
                    .alt_text("Face in tray"),
            );
        }
    });
    actions
}

/// The export folder as typed, **Export** and **Choose folder…**.
#[cfg(not(target_arch = "wasm32"))]
fn folder_export(ui: &mut egui::Ui, n: usize, export_text: &mut String, actions: &mut Vec<Action>) {
    let label = ui.label("to");
    ui.add(
        egui::TextEdit::singleline(export_text)
            .desired_width(220.0)
            .hint_text("folder"),
    )
    .labelled_by(label.id)
    .on_hover_text("Export folder (created if missing)");
    if ui
        .add_enabled(
            n > 0 && !export_text.trim().is_empty(),
            egui::Button::new(format!("Export {n}")),
        )
        .on_hover_text("Write PNG + sidecar JSON for each face into the folder")
        .clicked()
    {
        let dir = std::path::PathBuf::from(export_text.trim());
        actions.push(Action::ExportTray(dir));
    }
    if ui
        .button("Choose folder…")
        .on_hover_text("Pick the export folder and export (Ctrl+S)")
        .clicked()
    {
        actions.push(Action::Pick(super::action::Dialog::ExportDir));
    }
}

/// What the status bar shows beside the editor's state.
pub struct Status<'a> {
    /// What computes the faces.
    pub device_name: &'a str,
    /// Duration of the last UI frame, seconds.
    pub frame_dt: f32,
    /// A plugin version being trained.
    pub training: Option<&'a Training>,
}

/// Draws the status bar.
pub fn status_bar(ui: &mut egui::Ui, state: &EditorState, status: Status) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        ui.label(format!(
            "{} · {:.1} ms per face",
            status.device_name, state.compute_ms
        ))
        .on_hover_text(
            "What computes the faces, and the time from a slider change to the face being ready",
        );
        ui.separator();
        ui.label(format!("frame {:.1} ms", status.frame_dt * 1000.0));
        ui.separator();
        ui.label(&state.model_name);
        if let Some(p) = &state.plugin {
            ui.separator();
            ui.label(format!("plugin {}", p.path.display()));
        }
        if !state.idle() {
            ui.spinner();
        }
        if let Some(t) = status.training {
            ui.separator();
            ui.add(
                egui::ProgressBar::new(t.fraction)
                    .desired_width(120.0)
                    .text(format!("training {:.0} %", t.fraction * 100.0)),
            );
            if ui.small_button("Cancel").clicked() {
                actions.push(Action::CancelTraining);
            }
        }
        if let Some(n) = &state.notice {
            ui.separator();
            ui.weak(n);
        }
    });
    actions
}
