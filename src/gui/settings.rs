//! The editor's settings, kept between runs (eframe storage).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings kept between runs (eframe storage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Folder of the last export.
    pub export_dir: Option<PathBuf>,
    /// Folder of the last opened file.
    pub open_dir: Option<PathBuf>,
    /// PNG upscaling on export.
    pub export_scale: u32,
    /// Smooth (linear) instead of crisp (nearest) display scaling.
    pub smooth: bool,
    /// Show a loaded or projected face as it came beside the edited one.
    pub compare: bool,
    /// Dark theme.
    pub dark: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            export_dir: None,
            open_dir: None,
            export_scale: 4,
            smooth: true,
            compare: false,
            dark: true,
        }
    }
}

impl Settings {
    /// The export folder to offer: the last one used, else ~/Pictures/plugen.
    pub fn export_text(&self) -> String {
        match &self.export_dir {
            Some(d) => d.display().to_string(),
            None => std::env::var_os("HOME")
                .map(|h| {
                    PathBuf::from(h)
                        .join("Pictures")
                        .join("plugen")
                        .display()
                        .to_string()
                })
                .unwrap_or_default(),
        }
    }
}
