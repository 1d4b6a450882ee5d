//! The bottom panels: recent faces and the export tray, and the status bar.

use super::app::{Dialog, EditorApp};

const THUMB: f32 = 56.0;

/// Draws the recent-faces strip and the tray.
pub fn show(ui: &mut egui::Ui, app: &mut EditorApp) {
    ui.horizontal(|ui| {
        ui.label("Recent");
        let mut recall = None;
        for (i, tex) in app.thumbs.iter().enumerate() {
            let r = ui
                .add(egui::Button::image(egui::Image::from_texture((
                    tex.id(),
                    egui::vec2(THUMB, THUMB),
                ))))
                .on_hover_text("Go back to this face");
            if r.clicked() {
                recall = Some(i);
            }
        }
        if let Some(i) = recall {
            let job = app.state.recall(i);
            app.send_opt(job);
        }
    });
    ui.horizontal(|ui| {
        if ui
            .button("Add to tray")
            .on_hover_text("Mark this face for export (T)")
            .clicked()
        {
            app.state.add_to_tray();
        }
        let n = app.state.tray.len();
        let label = ui.label("to");
        ui.add(
            egui::TextEdit::singleline(&mut app.export_text)
                .desired_width(220.0)
                .hint_text("folder"),
        )
        .labelled_by(label.id)
        .on_hover_text("Export folder (created if missing)");
        if ui
            .add_enabled(
                n > 0 && !app.export_text.trim().is_empty(),
                egui::Button::new(format!("Export {n}")),
            )
            .on_hover_text("Write PNG + sidecar JSON for each face into the folder")
            .clicked()
        {
            let dir = std::path::PathBuf::from(app.export_text.trim());
            app.export_to(dir);
        }
        if ui
            .button("Choose folder…")
            .on_hover_text("Pick the export folder and export (Ctrl+S)")
            .clicked()
        {
            app.pick(Dialog::ExportDir);
        }
        for tex in &app.tray_thumbs {
            ui.add(
                egui::Image::from_texture((tex.id(), egui::vec2(THUMB * 0.75, THUMB * 0.75)))
                    .alt_text("Face in tray"),
            );
        }
    });
}

/// Draws the status bar.
pub fn status_bar(ui: &mut egui::Ui, app: &mut EditorApp) {
    ui.horizontal(|ui| {
        ui.label(format!(
            "{} · {:.1} ms per face",
            app.device_name, app.state.compute_ms
        ))
        .on_hover_text(
            "What computes the faces, and the time from a slider change to the face being ready",
        );
        ui.separator();
        ui.label(format!("frame {:.1} ms", app.frame_dt * 1000.0));
        ui.separator();
        ui.label(&app.state.model_name);
        if let Some(p) = &app.state.plugin {
            ui.separator();
            ui.label(format!("plugin {}", p.path.display()));
        }
        if !app.state.idle() {
            ui.spinner();
        }
        if let Some(t) = &app.training {
            ui.separator();
            ui.add(
                egui::ProgressBar::new(t.fraction)
                    .desired_width(120.0)
                    .text(format!("training {:.0} %", t.fraction * 100.0)),
            );
            if ui.small_button("Cancel").clicked() {
                t.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if let Some(n) = &app.state.notice {
            ui.separator();
            ui.weak(n);
        }
    });
}
