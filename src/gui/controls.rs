//! The side panel: identity (new face, seed, temperature) and one slider per
//! attribute, with its readout, reset and lock.

use plugen_core::model::attributes::AttributeKind;

use plugen_core::model::judges::JudgeRule;

use super::action::Action;
use super::state::{EditorState, TEMPERATURE_RANGE};

/// Draws the controls for `state`; what the user changed comes back as actions.
pub fn show(ui: &mut egui::Ui, state: &EditorState) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.spacing_mut().slider_width = 180.0;
    egui::ScrollArea::vertical().show(ui, |ui| {
        identity(ui, state, &mut actions);
        ui.separator();
        attributes(ui, state, &mut actions);
        messages(ui, state, &mut actions);
    });
    actions
}

fn identity(ui: &mut egui::Ui, state: &EditorState, actions: &mut Vec<Action>) {
    ui.heading("Identity");
    ui.horizontal(|ui| {
        if ui
            .button("New face")
            .on_hover_text("Resample the free coordinates (R)")
            .clicked()
        {
            actions.push(Action::NewFace(None));
        }
        let label = ui.label("Seed");
        match state.live.seed {
            Some(mut seed) => {
                let r = ui
                    .add(egui::DragValue::new(&mut seed).speed(0.2))
                    .labelled_by(label.id);
                if r.changed() {
                    actions.push(Action::NewFace(Some(seed)));
                }
            }
            None => {
                ui.weak("(loaded face)");
            }
        }
    });
    let mut t = state.live.temperature;
    let r = ui
        .add(egui::Slider::new(&mut t, TEMPERATURE_RANGE).text("Temperature").clamping(egui::SliderClamping::Edits))
        .on_hover_text("Scale of the free coordinates (PluGeN's style sigma): low = typical faces, high = varied ones");
    if r.changed() || r.drag_stopped() {
        let settle = r.drag_stopped() || !r.dragged();
        actions.push(Action::SetTemperature { value: t, settle });
    }
}

fn attributes(ui: &mut egui::Ui, state: &EditorState, actions: &mut Vec<Action>) {
    ui.heading("Attributes");
    if state.plugin.is_none() {
        ui.label("No plugin loaded: the bundled model has none yet. Open one (File > Open plugin…) or train one with `plugen train`.");
        return;
    }
    let readout = state
        .face
        .as_ref()
        .map(|f| f.readout.as_slice())
        .unwrap_or_default();
    for (k, a) in state.attributes().iter().enumerate() {
        let (lo, hi) = a.value_range();
        let mut v = state.live.values[k];
        ui.horizontal(|ui| {
            let r = ui
                .add(
                    egui::Slider::new(&mut v, lo..=hi)
                        .text(a.label())
                        .fixed_decimals(2)
                        .clamping(egui::SliderClamping::Edits),
                )
                .on_hover_text(tooltip(
                    a,
                    state.plugin.as_ref().and_then(|p| p.judges.rule(&a.name)),
                ));
            if r.changed() || r.drag_stopped() {
                let settle = r.drag_stopped() || !r.dragged();
                actions.push(Action::SetValue {
                    index: k,
                    value: v,
                    settle,
                });
            }
        });
        ui.horizontal(|ui| {
            let calibrated = state
                .plugin
                .as_ref()
                .and_then(|p| p.judges.rule(&a.name))
                .and_then(|r| r.calibrated.as_ref());
            match (&a.ends, calibrated) {
                (Some(ends), Some(c)) => {
                    let at = |on: bool| {
                        let v = c.end(on);
                        if c.reached(on) {
                            format!("{v:+.2}")
                        } else {
                            format!("{v:+.2} (not reached)")
                        }
                    };
                    ui.weak(format!("{} at {}, {} at {}", ends[0], at(false), ends[1], at(true)))
                        .on_hover_text("Calibrated ends: where the judges agree (plugen calibrate)");
                }
                (Some(ends), None) => {
                    ui.weak(format!("-1 = {}, +1 = {}", ends[0], ends[1]));
                }
                _ => {}
            }
            if let Some(r) = readout.get(k) {
                ui.label(format!("readout {r:+.2}"))
                    .on_hover_text("What the plugin reads off the current latent (the forward flow as a classifier)");
            }
            if ui.small_button("Reset").on_hover_text(format!("Reset {}", a.label())).clicked() {
                actions.push(Action::Reset(k));
            }
            let mut locked = state.locked[k];
            if ui
                .checkbox(&mut locked, "lock")
                .on_hover_text(format!("Keep {} when a new face is sampled", a.label()))
                .changed()
            {
                actions.push(Action::SetLock(k, locked));
            }
        });
        ui.add_space(4.0);
    }
}

fn tooltip(a: &plugen_core::model::attributes::Attribute, rule: Option<&JudgeRule>) -> String {
    let mut s = a.description.clone();
    let kind = match a.kind {
        AttributeKind::Binary => "binary: -1 and +1 are the class means, up to 3 pushes further",
        AttributeKind::Continuous => "continuous, in label units",
    };
    if !s.is_empty() {
        s.push_str("\n\n");
    }
    s.push_str(kind);
    if !a.labeller.is_empty() {
        s.push_str("\nLabels: ");
        s.push_str(&a.labeller);
    }
    match rule {
        Some(r) => {
            s.push_str(&format!("\nJudged by the reading '{}'", r.reading));
            if let Some(t) = r.threshold {
                s.push_str(&format!(" (shown from {t})"));
            }
            if let Some(c) = &r.calibrated {
                s.push_str(&format!(
                    "\nCalibrated on {} fresh faces: on = {}; off = {}",
                    c.faces,
                    c.describe(true),
                    c.describe(false)
                ));
            }
        }
        None => s.push_str("\nNo judge checks this attribute"),
    }
    s
}

fn messages(ui: &mut egui::Ui, state: &EditorState, actions: &mut Vec<Action>) {
    if let Some(err) = &state.error {
        ui.separator();
        ui.colored_label(ui.visuals().error_fg_color, format!("Error: {err}"));
        if ui.small_button("Dismiss").clicked() {
            actions.push(Action::DismissError);
        }
    }
    if let Some(p) = &state.projection {
        ui.separator();
        ui.label(format!("Projecting {}…", p.source.display()));
        let frac = p.step as f32 / p.steps.max(1) as f32;
        ui.add(
            egui::ProgressBar::new(frac)
                .text(format!("step {}/{}, MSE {:.4}", p.step, p.steps, p.loss)),
        );
        if ui.button("Cancel projection").clicked() {
            actions.push(Action::CancelProjection);
        }
    }
}
