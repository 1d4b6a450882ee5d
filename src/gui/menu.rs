//! The menu bar: File, Edit, Plugin, View, Help.

use std::path::Path;

use super::action::{Action, Dialog};
use super::settings::Settings;

/// Keyboard shortcuts, listed in Help.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("R", "New face (new seed)"),
    ("T", "Add the face to the tray"),
    (
        "B (hold)",
        "Show a loaded face as it came (before the edits)",
    ),
    ("Ctrl+O", "Open a latent, sidecar or image"),
    ("Ctrl+S", "Export the tray"),
    ("Ctrl+Z", "Undo"),
    ("Ctrl+Shift+Z", "Redo"),
];

/// Draws the menu bar; `plugin` is the loaded plugin's plugin.json (its
/// folder's versions are listed). The View menu changes `settings`.
pub fn show(ui: &mut egui::Ui, plugin: Option<&Path>, settings: &mut Settings) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut act = |ui: &mut egui::Ui, a: Action| {
        actions.push(a);
        ui.close();
    };
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open latent or image…  (Ctrl+O)").clicked() {
                act(ui, Action::Pick(Dialog::Open));
            }
            if ui.button("Open plugin…").clicked() {
                act(ui, Action::Pick(Dialog::Plugin));
            }
            if ui.button("Export tray…  (Ctrl+S)").clicked() {
                act(ui, Action::Pick(Dialog::ExportDir));
            }
            if ui.button("Export sweep…").clicked() {
                act(ui, Action::OpenSweepForm);
            }
            ui.separator();
            if ui.button("Quit").clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.menu_button("Edit", |ui| {
            if ui.button("Undo  (Ctrl+Z)").clicked() {
                act(ui, Action::Undo);
            }
            if ui.button("Redo  (Ctrl+Shift+Z)").clicked() {
                act(ui, Action::Redo);
            }
            if ui.button("New face  (R)").clicked() {
                act(ui, Action::NewFace(None));
            }
            if ui.button("Add to tray  (T)").clicked() {
                act(ui, Action::AddToTray);
            }
        });
        ui.menu_button("Plugin", |ui| {
            if ui.button("New attribute...").clicked() {
                act(ui, Action::OpenNewAttribute);
            }
            if let Some(dir) = plugin.and_then(Path::parent) {
                ui.separator();
                ui.label("Versions (switch back any time):");
                for (n, path) in plugen_core::model::versions::list(dir) {
                    let name = path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let selected = plugin == Some(path.as_path());
                    if ui.radio(selected, format!("v{n}  {name}")).clicked() && !selected {
                        act(ui, Action::OpenPlugin(path));
                    }
                }
            }
        });
        ui.menu_button("View", |ui| {
            ui.checkbox(&mut settings.smooth, "Smooth scaling");
            ui.checkbox(&mut settings.compare, "Compare with the face as loaded");
            ui.horizontal(|ui| {
                ui.label("Export scale");
                ui.add(egui::Slider::new(&mut settings.export_scale, 1..=plugen_core::io::imaging::MAX_SCALE).text("x"));
            });
            ui.checkbox(&mut settings.dark, "Dark theme");
        });
        ui.menu_button("Help", |ui| {
            ui.strong("Keyboard shortcuts");
            egui::Grid::new("shortcuts").show(ui, |ui| {
                for (key, what) in SHORTCUTS {
                    ui.monospace(*key);
                    ui.label(*what);
                    ui.end_row();
                }
            });
            ui.separator();
            ui.label("Drag a slider to set an attribute; drop a latent (.npy, .safetensors, sidecar .json) or an image onto the window to edit it.");
            ui.label(format!("plugen {}", env!("CARGO_PKG_VERSION")));
        });
    });
    actions
}
