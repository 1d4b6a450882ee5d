//! The editor: an eframe/egui window over [`plugen_core`]. The face is computed
//! on a worker thread ([`worker`]); the state and its changes ([`state`]) are
//! kept apart from drawing. Each panel (`controls`, `face_view`, `labelling`,
//! `menu`, `strips`, [`sweep_export`]) draws from a read-only view and its own
//! state and returns [`action::Action`]s, which [`app`] applies: no panel
//! imports the app.

pub mod action;
pub mod app;
mod controls;
mod face_view;
pub mod labelling;
mod menu;
pub mod settings;
pub mod state;
mod strips;
pub mod sweep_export;
pub mod textures;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod worker;

pub use app::EditorApp;
pub use settings::Settings;

/// Opens the editor window on the model in `model_dir` (default: the bundled one);
/// `open` (a latent, sidecar or image) is opened once the window is up, and
/// `label` starts label mode for a new attribute.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(
    model_dir: Option<std::path::PathBuf>,
    plugin: Option<std::path::PathBuf>,
    open: Option<std::path::PathBuf>,
    label: Option<plugen_core::learn::labelling::AttributeDefinition>,
    device: plugen_core::DeviceChoice,
) -> plugen_core::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("plugen")
            .with_inner_size([1100.0, 760.0])
            .with_min_inner_size([640.0, 480.0])
            .with_drag_and_drop(true),
        wgpu_options: wgpu_options(),
        ..Default::default()
    };
    let mut failure = None;
    let result = eframe::run_native(
        "plugen",
        options,
        Box::new(|cc| {
            let settings: Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                .unwrap_or_default();
            let ctx = cc.egui_ctx.clone();
            match EditorApp::with_renderer(
                model_dir.as_deref(),
                plugin.as_deref(),
                device,
                settings,
                cc.wgpu_render_state.as_ref(),
                move || ctx.request_repaint(),
            ) {
                Ok(mut app) => {
                    if let Some(path) = open {
                        app.open_path(path);
                    }
                    if let Some(def) = label
                        && let Err(e) = app.start_labelling(def)
                    {
                        app.state.error = Some(e.to_string());
                    }
                    Ok(Box::new(app) as Box<dyn eframe::App>)
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    Err(Box::<dyn std::error::Error + Send + Sync>::from(
                        e.to_string(),
                    ))
                }
            }
        }),
    );
    if let Some(msg) = failure {
        return Err(plugen_core::Error::invalid(msg));
    }
    result.map_err(|e| plugen_core::Error::invalid(format!("cannot open the editor window: {e}")))
}

/// eframe's wgpu set-up, asking for compute limits: on a GL adapter egui would
/// request WebGL2 limits, where every compute limit is 0.
pub fn wgpu_options() -> eframe::egui_wgpu::WgpuConfiguration {
    use eframe::egui_wgpu::{WgpuConfiguration, WgpuSetup, WgpuSetupCreateNew, wgpu};
    let setup = WgpuSetupCreateNew {
        device_descriptor: std::sync::Arc::new(|adapter| wgpu::DeviceDescriptor {
            label: Some("plugen editor device"),
            required_limits: plugen_core::compute::gpu::renderer_limits(adapter),
            ..Default::default()
        }),
        ..WgpuSetupCreateNew::without_display_handle()
    };
    WgpuConfiguration {
        wgpu_setup: WgpuSetup::CreateNew(setup),
        ..Default::default()
    }
}
