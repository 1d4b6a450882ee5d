//! The editor computing on its window's own wgpu device (lavapipe in CI): a
//! dragged slider changes the face drawn from the GPU texture.
//!
//! Without an adapter with compute this says so and passes, unless
//! `PLUGEN_REQUIRE_GPU` is set (as `.ci/run` does).

mod common;

use common::{drag_slider, face_pixels, plugin_dir, settle};
use egui_kittest::Harness;
use plugen::gui::{EditorApp, Settings};
use plugen_core::compute::device::DeviceChoice;

/// The face's place in the window: the middle of the central panel.
fn face_region(img: &image::RgbaImage) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let (cx, cy) = (w * 2 / 3, h * 2 / 5);
    let mut out = Vec::new();
    for y in cy - 100..cy + 100 {
        for x in cx - 100..cx + 100 {
            out.extend_from_slice(&img.get_pixel(x, y).0);
        }
    }
    out
}

#[test]
fn slider_drives_the_face_on_the_gpu() {
    let dir = plugin_dir();
    let settings = Settings {
        export_scale: 1,
        export_dir: Some(std::path::PathBuf::from("/tmp/plugen-exports")),
        ..Default::default()
    };
    let mut h: Harness<'static, EditorApp> = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .wgpu()
        .build_eframe(|cc| {
            EditorApp::with_renderer(
                None,
                Some(&dir),
                DeviceChoice::Wgpu,
                settings,
                cc.wgpu_render_state.as_ref(),
                || {},
            )
            .expect("editor starts")
        });
    settle(&mut h);
    if !h.state().computes_into_texture() {
        let why = h.state().state.notice.clone().unwrap_or_default();
        assert!(
            std::env::var_os("PLUGEN_REQUIRE_GPU").is_none(),
            "PLUGEN_REQUIRE_GPU is set but the editor computes on the CPU: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    assert!(h.state().device_name.starts_with("wgpu: "));
    let before = face_pixels(&h);
    let shown_before = face_region(&h.render().expect("render"));
    let readout_before = h.state().state.face.as_ref().expect("face").readout[0];
    drag_slider(&mut h, "Lefty", 0.95);
    settle(&mut h);
    let face = h.state().state.face.as_ref().expect("face");
    assert!(face.readout[0] > readout_before + 0.5 && face.readout[0] > 1.5);
    assert!(face.latent[10] > 0.0, "the latent has the attribute");
    assert_ne!(face_pixels(&h), before, "the settled face's pixels changed");
    let shown_after = face_region(&h.render().expect("render"));
    assert_ne!(shown_before, shown_after, "the window shows another face");
    assert!(h.state().state.error.is_none());
    assert!(h.state().computes_into_texture());
}
