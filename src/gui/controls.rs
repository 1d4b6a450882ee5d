//! The side panel: identity (new face, seed, temperature) and one slider per
//! attribute, with its readout, reset and lock.

use plugen_core::attributes::AttributeKind;

use super::app::EditorApp;
use super::state::TEMPERATURE_RANGE;

/// Draws the controls.
pub fn show(ui: &mut egui::Ui, app: &mut EditorApp) {
    ui.spacing_mut().slider_width = 180.0;
    egui::ScrollArea::vertical().show(ui, |ui| {
        identity(ui, app);
        ui.separator();
        attributes(ui, app);
        messages(ui, app);
    });
}

fn identity(ui: &mut egui::Ui, app: &mut EditorApp) {
    ui.heading("Identity");
    ui.horizontal(|ui| {
        if ui
            .button("New face")
            .on_hover_text("Resample the free coordinates (R)")
            .clicked()
        {
            let job = app.state.new_face(app.state.next_seed());
            app.send(job);
        }
        let label = ui.label("Seed");
        match app.state.live.seed {
            Some(mut seed) => {
                let r = ui
                    .add(egui::DragValue::new(&mut seed).speed(0.2))
                    .labelled_by(label.id);
                if r.changed() {
                    let job = app.state.new_face(seed);
                    app.send(job);
                }
            }
            None => {
                ui.weak("(loaded face)");
            }
        }
    });
    let mut t = app.state.live.temperature;
    let r = ui
        .add(egui::Slider::new(&mut t, TEMPERATURE_RANGE).text("Temperature").clamping(egui::SliderClamping::Edits))
        .on_hover_text("Scale of the free coordinates (PluGeN's style sigma): low = typical faces, high = varied ones");
    if r.changed() || r.drag_stopped() {
        let settle = r.drag_stopped() || !r.dragged();
        let job = app.state.set_temperature(t, settle);
        app.send(job);
    }
}

fn attributes(ui: &mut egui::Ui, app: &mut EditorApp) {
    ui.heading("Attributes");
    if app.state.plugin.is_none() {
        ui.label("No plugin loaded: the bundled model has none yet. Open one (File > Open plugin…) or train one with `plugen train`.");
        return;
    }
    let attrs = app.state.attributes().to_vec();
    let readout = app
        .state
        .face
        .as_ref()
        .map(|f| f.readout.clone())
        .unwrap_or_default();
    for (k, a) in attrs.iter().enumerate() {
        let (lo, hi) = a.value_range();
        let mut v = app.state.live.values[k];
        ui.horizontal(|ui| {
            let r = ui
                .add(
                    egui::Slider::new(&mut v, lo..=hi)
                        .text(a.label())
                        .fixed_decimals(2)
                        .clamping(egui::SliderClamping::Edits),
                )
                .on_hover_text(tooltip(a));
            if r.changed() || r.drag_stopped() {
                let settle = r.drag_stopped() || !r.dragged();
                let job = app.state.set_value(k, v, settle);
                app.send(job);
            }
        });
        ui.horizontal(|ui| {
            if let Some(ends) = &a.ends {
                ui.weak(format!("-1 = {}, +1 = {}", ends[0], ends[1]));
            }
            if let Some(r) = readout.get(k) {
                ui.label(format!("readout {r:+.2}"))
                    .on_hover_text("What the plugin reads off the current latent (the forward flow as a classifier)");
            }
            if ui.small_button("Reset").on_hover_text(format!("Reset {}", a.label())).clicked() {
                let job = app.state.reset(k);
                app.send(job);
            }
            ui.checkbox(&mut app.state.locked[k], "lock")
                .on_hover_text(format!("Keep {} when a new face is sampled", a.label()));
        });
        ui.add_space(4.0);
    }
}

fn tooltip(a: &plugen_core::attributes::Attribute) -> String {
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
    s
}

fn messages(ui: &mut egui::Ui, app: &mut EditorApp) {
    if let Some(err) = app.state.error.clone() {
        ui.separator();
        ui.colored_label(ui.visuals().error_fg_color, format!("Error: {err}"));
        if ui.small_button("Dismiss").clicked() {
            app.state.error = None;
        }
    }
    if let Some(p) = &app.state.projection {
        ui.separator();
        ui.label(format!("Projecting {}…", p.source.display()));
        let frac = p.step as f32 / p.steps.max(1) as f32;
        ui.add(
            egui::ProgressBar::new(frac)
                .text(format!("step {}/{}, MSE {:.4}", p.step, p.steps, p.loss)),
        );
        if ui.button("Cancel projection").clicked() {
            p.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
