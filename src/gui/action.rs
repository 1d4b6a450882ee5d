//! What a panel asks the editor to do. Panels draw from a read-only view and
//! their own state, and return [`Action`]s; [`super::app`] applies them (the
//! state changes, worker jobs and dialogs), so no panel needs the app.

use std::path::PathBuf;

use plugen_core::learn::labelling::AttributeDefinition;

/// Which native file dialog to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialog {
    /// A latent, sidecar or image to open.
    Open,
    /// A plugin.json to load.
    Plugin,
    /// A folder to export the tray into.
    ExportDir,
}

/// One request from a panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A new face: this seed, or the next one.
    NewFace(Option<u64>),
    /// Temperature of the free coordinates (`settle`: the drag ended).
    SetTemperature { value: f32, settle: bool },
    /// Attribute `index` to `value` (`settle`: the drag ended).
    SetValue {
        index: usize,
        value: f32,
        settle: bool,
    },
    /// Attribute `index` back to the face's own value.
    Reset(usize),
    /// Keep (or not) attribute `index` when a new face is sampled.
    SetLock(usize, bool),
    /// Hide the error line.
    DismissError,
    /// Stop the projection in progress.
    CancelProjection,
    /// Undo the last change.
    Undo,
    /// Redo what was undone.
    Redo,
    /// Add the face to the tray.
    AddToTray,
    /// Go back to recent face `i`.
    Recall(usize),
    /// Show a file dialog.
    Pick(Dialog),
    /// Load another plugin.
    OpenPlugin(PathBuf),
    /// Export the tray into a folder.
    ExportTray(PathBuf),
    /// Open the "Export sweep" window.
    OpenSweepForm,
    /// Write a sweep of `attribute` in `steps` values into `dir`.
    ExportSweep {
        dir: PathBuf,
        attribute: usize,
        steps: usize,
    },
    /// Open the "New attribute" form.
    OpenNewAttribute,
    /// Start (or resume) labelling a new attribute.
    StartLabelling(AttributeDefinition),
    /// Label the selected face (`None` skips it).
    LabelSelected(Option<f32>),
    /// Select face `i` of the label page.
    SelectFace(usize),
    /// Select face `i` of the label page and give it `value`.
    LabelFace(usize, f32),
    /// Remove the last label.
    UndoLabel,
    /// Train a plugin version with the labels.
    TrainLabels,
    /// Stop the training in progress.
    CancelTraining,
    /// Leave label mode.
    CloseLabelling,
}
