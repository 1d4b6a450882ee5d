//! The "Export sweep" window: one attribute of the current face from one end
//! of its range to the other, written as a PNG grid and a looping GIF.

use std::path::PathBuf;

use plugen_core::model::attributes::Attribute;

use super::action::Action;

/// Fewest and most values in a sweep from the editor.
const STEPS: std::ops::RangeInclusive<usize> = 3..=17;

/// The form's choices while it is open.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepForm {
    /// Attribute index.
    pub attribute: usize,
    /// Number of values.
    pub steps: usize,
}

impl SweepForm {
    /// A form offering attribute `attribute` (the slider moved last) in 9 steps.
    pub fn new(attribute: usize) -> Self {
        Self {
            attribute,
            steps: 9,
        }
    }
}

/// Draws the window while `form` is open (`attributes`: the plugin's);
/// "Save sweep" asks for the sweep and closes it, as do Cancel and the
/// window's close button. `export_text` is the export folder as typed.
pub fn show(
    ctx: &egui::Context,
    form_slot: &mut Option<SweepForm>,
    attributes: &[Attribute],
    export_text: &mut String,
) -> Option<Action> {
    let mut form = form_slot.take()?;
    form.attribute = form.attribute.min(attributes.len().saturating_sub(1));
    let mut open = true;
    let mut export = false;
    let mut cancel = false;
    egui::Window::new("Export sweep")
        .collapsible(false)
        .resizable(false)
        .open(&mut open)
        .show(ctx, |ui| {
            let label = |i: usize| attributes.get(i).map(|a| a.label().to_string());
            egui::ComboBox::from_label("Attribute")
                .selected_text(label(form.attribute).unwrap_or_default())
                .show_ui(ui, |ui| {
                    for (i, a) in attributes.iter().enumerate() {
                        ui.selectable_value(&mut form.attribute, i, a.label());
                    }
                });
            if let Some(a) = attributes.get(form.attribute) {
                let (from, to) = plugen_core::jobs::sweep::sweep_range(a);
                ui.label(format!("From {from:.2} to {to:.2}"));
            }
            ui.add(egui::Slider::new(&mut form.steps, STEPS).text("Steps"));
            ui.horizontal(|ui| {
                ui.label("Folder");
                ui.text_edit_singleline(export_text);
            });
            ui.label("Writes sweep-NAME-NNN.png (a grid) and .gif (an animation).");
            ui.horizontal(|ui| {
                export = ui.button("Save sweep").clicked();
                cancel = ui.button("Cancel").clicked();
            });
        });
    if export {
        return Some(Action::ExportSweep {
            dir: PathBuf::from(export_text.trim()),
            attribute: form.attribute,
            steps: form.steps,
        });
    }
    if open && !cancel {
        *form_slot = Some(form);
    }
    None
}
