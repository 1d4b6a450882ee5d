//! The menu bar: File, Edit, Plugin, View, Help.

use super::app::{Dialog, EditorApp, SHORTCUTS};

/// Draws the menu bar.
pub fn show(ui: &mut egui::Ui, app: &mut EditorApp) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open latent or image…  (Ctrl+O)").clicked() {
                app.pick(Dialog::Open);
                ui.close();
            }
            if ui.button("Open plugin…").clicked() {
                app.pick(Dialog::Plugin);
                ui.close();
            }
            if ui.button("Export tray…  (Ctrl+S)").clicked() {
                app.pick(Dialog::ExportDir);
                ui.close();
            }
            if ui.button("Export sweep…").clicked() {
                app.open_sweep_form();
                ui.close();
            }
            ui.separator();
            if ui.button("Quit").clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.menu_button("Edit", |ui| {
            if ui.button("Undo  (Ctrl+Z)").clicked() {
                let job = app.state.undo();
                app.send_opt(job);
                ui.close();
            }
            if ui.button("Redo  (Ctrl+Shift+Z)").clicked() {
                let job = app.state.redo();
                app.send_opt(job);
                ui.close();
            }
            if ui.button("New face  (R)").clicked() {
                let job = app.state.new_face(app.state.next_seed());
                app.send(job);
                ui.close();
            }
            if ui.button("Add to tray  (T)").clicked() {
                app.state.add_to_tray();
                ui.close();
            }
        });
        ui.menu_button("Plugin", |ui| {
            if ui.button("New attribute...").clicked() {
                app.new_attribute = Some(Default::default());
                ui.close();
            }
            let current = app.state.plugin.as_ref().map(|p| p.path.clone());
            let dir = current.as_ref().and_then(|p| p.parent().map(|d| d.to_path_buf()));
            if let Some(dir) = dir {
                ui.separator();
                ui.label("Versions (switch back any time):");
                for (n, path) in plugen_core::versions::list(&dir) {
                    let name = path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let selected = current.as_deref() == Some(path.as_path());
                    if ui.radio(selected, format!("v{n}  {name}")).clicked() && !selected {
                        app.open_plugin(path);
                        ui.close();
                    }
                }
            }
        });
        ui.menu_button("View", |ui| {
            ui.checkbox(&mut app.settings.smooth, "Smooth scaling");
            ui.checkbox(&mut app.settings.compare, "Compare with the face as loaded");
            ui.horizontal(|ui| {
                ui.label("Export scale");
                ui.add(egui::Slider::new(&mut app.settings.export_scale, 1..=plugen_core::imaging::MAX_SCALE).text("x"));
            });
            ui.checkbox(&mut app.settings.dark, "Dark theme");
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
}
