//! The central panel: the face, large; beside it the projection target when
//! the face came from an image.

use super::app::EditorApp;

/// Draws the face (and target).
pub fn show(ui: &mut egui::Ui, app: &mut EditorApp) {
    let avail = ui.available_size();
    let id = match (&app.gpu_face, &app.face_texture) {
        // The GPU texture holds a face once the first render has answered.
        (Some(g), _) if app.state.face.is_some() => g.id,
        (None, Some((_, tex))) => tex.id(),
        _ => {
            ui.centered_and_justified(|ui| ui.spinner());
            return;
        }
    };
    match &app.target_texture {
        Some(target) => {
            let side = (avail.x / 2.0 - 12.0).min(avail.y - 24.0).max(64.0);
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    ui.label("Target image");
                    ui.add(
                        egui::Image::from_texture((target.id(), egui::vec2(side, side)))
                            .alt_text("Target image"),
                    );
                });
                ui.vertical(|ui| {
                    ui.label("Reconstruction (editable)");
                    ui.add(
                        egui::Image::from_texture((id, egui::vec2(side, side)))
                            .alt_text("Generated face"),
                    );
                });
            });
        }
        None => {
            let side = avail.x.min(avail.y).max(64.0);
            ui.centered_and_justified(|ui| {
                ui.add(
                    egui::Image::from_texture((id, egui::vec2(side, side)))
                        .alt_text("Generated face"),
                );
            });
        }
    }
}
