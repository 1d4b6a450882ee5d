//! The central panel: the face, large, smooth by default (crisp pixels one
//! toggle away). Beside it the projection target when the face came from an
//! image, and, for a loaded or projected face, a before/after comparison: a
//! split view, or the face as loaded while B is held.

use egui::{Key, TextureId};

use plugen_core::model::attributes::Attribute;
use plugen_core::model::judges::{JudgeMap, Reading, Verdict};

use super::settings::Settings;

/// The textures the face view shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaceTextures {
    /// The face, once one has been computed.
    pub face: Option<TextureId>,
    /// The image a projected face came from.
    pub target: Option<TextureId>,
    /// A loaded or projected face as it came, before the edits.
    pub before: Option<TextureId>,
}

/// What the judges read, in one line: each judged attribute's reading and
/// what it says ("happy 0.93 (smiling) · male 0.12 (female) · yaw +23° ·
/// background 54.2"), and which readings the judges could not take.
pub fn judges_line(attributes: &[Attribute], map: &JudgeMap, reading: &Reading) -> String {
    let mut parts = Vec::new();
    for a in attributes {
        let Some(rule) = map.rule(&a.name) else {
            continue;
        };
        let Some(v) = reading.get(&rule.reading) else {
            // A judge that could not read this face says so.
            if reading.contains_key("face_score") {
                parts.push(format!("{} not read", rule.reading));
            }
            continue;
        };
        let part = match (map.verdict(&a.name, reading), &a.ends) {
            (Verdict::Class(shown), Some(ends)) => {
                format!("{} {v:.2} ({})", rule.reading, ends[usize::from(shown)])
            }
            (Verdict::Uncertain, _) => format!("{} {v:.2} (unsure)", rule.reading),
            // Continuous: the reading in its own units, compactly.
            _ if rule.threshold.is_none() => match rule.reading.as_str() {
                "yaw" | "pitch" => format!("{} {v:+.0}°", rule.reading),
                _ if v.abs() < 10.0 => format!("{} {v:.2}", rule.reading),
                _ => format!("{} {v:.1}", rule.reading),
            },
            _ => format!("{} {v:.2}", rule.reading),
        };
        parts.push(part);
    }
    if parts.is_empty() {
        // No attribute of this plugin has a judge: the judges' own readings.
        let raw =
            |name: &str, digits: usize| reading.get(name).map(|v| format!("{name} {v:.digits$}"));
        parts.extend(
            [raw("happy", 2), raw("male", 2), raw("background", 1)]
                .into_iter()
                .flatten(),
        );
    }
    format!("Judges: {}", parts.join(" · "))
}

/// Draws the toolbar (its toggles are `settings`) and the face, with target
/// and comparison; under it `judged`, what the judges read off it.
pub fn show(
    ui: &mut egui::Ui,
    textures: FaceTextures,
    judged: Option<&str>,
    settings: &mut Settings,
) {
    let Some(id) = textures.face else {
        ui.centered_and_justified(|ui| ui.spinner());
        return;
    };
    let before = textures.before;
    toolbar(ui, settings, before.is_some());
    let judged_label = |ui: &mut egui::Ui| {
        if let Some(line) = judged {
            ui.label(line).on_hover_text(
                "What the judges (independent face-analysis models) read off this face once it settled",
            );
        }
    };
    let typing = ui.ctx().memory(|m| m.focused().is_some());
    let hold = !typing && ui.input(|i| i.key_down(Key::B));
    let mut panels: Vec<(&str, TextureId)> = Vec::new();
    if let Some(t) = textures.target {
        panels.push(("Target image", t));
    }
    match before {
        Some(b) if settings.compare => {
            panels.push(("Before (as loaded)", b));
            panels.push(("After (edited)", id));
        }
        Some(b) if hold => panels.push(("Before (B held)", b)),
        _ if textures.target.is_some() => panels.push(("Reconstruction (editable)", id)),
        _ => panels.push(("Generated face", id)),
    }
    let mut avail = ui.available_size();
    if judged.is_some() {
        // Room for the judges' line under the face (two rows when it wraps:
        // the face mesh adds mouth, pose and eyes).
        avail.y -=
            2.0 * ui.text_style_height(&egui::TextStyle::Body) + 2.0 * ui.spacing().item_spacing.y;
    }
    if let [(label, id)] = panels[..] {
        let side = avail.x.min(avail.y).max(64.0);
        ui.vertical_centered(|ui| {
            ui.add(egui::Image::from_texture((id, egui::vec2(side, side))).alt_text(label));
            judged_label(ui);
        });
        return;
    }
    let n = panels.len() as f32;
    let side = (avail.x / n - 12.0).min(avail.y - 24.0).max(64.0);
    ui.horizontal(|ui| {
        for (label, id) in panels {
            ui.vertical(|ui| {
                ui.label(label);
                ui.add(egui::Image::from_texture((id, egui::vec2(side, side))).alt_text(label));
            });
        }
    });
    judged_label(ui);
}

/// Smooth/crisp scaling and, for a loaded face, the comparison switch.
fn toolbar(ui: &mut egui::Ui, settings: &mut Settings, has_before: bool) {
    ui.horizontal(|ui| {
        ui.checkbox(&mut settings.smooth, "Smooth")
            .on_hover_text("Smooth (bilinear) scaling; off: crisp pixels");
        if has_before {
            ui.checkbox(&mut settings.compare, "Compare")
                .on_hover_text("Show the face as it was loaded beside the edited one");
            if !settings.compare {
                ui.weak("hold B: before");
            }
        }
    });
}
