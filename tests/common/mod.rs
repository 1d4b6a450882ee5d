//! Helpers shared by the editor's kittest suites.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use plugen::gui::{EditorApp, Settings};
use plugen_core::io::fsutil::Overwrite;
use plugen_core::io::labels::LabelTable;
use plugen_core::io::latents::{self, Latents};
use plugen_core::learn::train::{self, AttributeMeta, TrainConfig};
use plugen_core::model::bundle::{Bundle, default_model_dir};
use plugen_core::rng::SeededRng;

/// Trains a small plugin whose attribute `lefty` is known: latent[10] > 0.
pub fn plugin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("plugen-editor-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let n = 3000;
        let mut rng = SeededRng::new(31, 0);
        let z = Latents::new(100, rng.normal_vec(n * 100)).expect("rows");
        let rows = (0..n)
            .map(|i| {
                vec![
                    Some((z.row(i)[10] > 0.0) as u8 as f32),
                    Some(z.row(i)[70] * 10.0 + 50.0),
                ]
            })
            .collect();
        let labels = LabelTable {
            names: vec!["lefty".into(), "tone".into()],
            rows,
        };
        let mut meta = HashMap::new();
        meta.insert(
            "lefty".to_string(),
            AttributeMeta {
                display_name: "Lefty".into(),
                description: "latent[10] > 0 (a test attribute)".into(),
                ends: Some(["right".into(), "left".into()]),
                ..Default::default()
            },
        );
        let mut config = TrainConfig::default_for(100);
        config.epochs = 12;
        config.flow.hidden = 64;
        let sha = Bundle::open(&default_model_dir())
            .expect("bundle")
            .manifest()
            .sha256
            .clone();
        let (trained, _) = train::train(
            &z,
            &labels,
            &meta,
            &config,
            &sha,
            &plugen_core::Device::Cpu,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .expect("training");
        trained.save(&dir).expect("save");
        dir
    })
    .clone()
}

/// Writes `z` as a .npy and renders it with `plugen edit`; returns (npy, png).
pub fn cli_render(dir: &Path, z: &Latents, name: &str) -> (PathBuf, PathBuf) {
    let file = dir.join(format!("{name}.npy"));
    latents::write_npy(&file, z, Overwrite::Never).expect("npy");
    let png = dir.join(format!("{name}.png"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_plugen"))
        .args(["edit", "--latent"])
        .arg(&file)
        .arg("--out")
        .arg(&png)
        .status()
        .expect("plugen edit");
    assert!(status.success());
    (file, png)
}

pub fn harness(plugin: Option<&Path>) -> Harness<'static, EditorApp> {
    let settings = Settings {
        export_scale: 1,
        // Fixed, so the snapshot does not depend on $HOME.
        export_dir: Some(PathBuf::from("/tmp/plugen-exports")),
        ..Default::default()
    };
    let app = EditorApp::new(
        None,
        plugin,
        plugen_core::compute::device::DeviceChoice::Cpu,
        settings,
        || {},
    )
    .expect("editor starts");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .wgpu()
        .build_ui_state(|ui, app: &mut EditorApp| app.ui(ui), app);
    settle(&mut h);
    h
}

/// Steps frames until the worker has answered everything.
pub fn settle(h: &mut Harness<'static, EditorApp>) {
    let start = Instant::now();
    loop {
        h.step();
        if h.state().state.idle() {
            h.step();
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "editor did not settle"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn face_pixels(h: &Harness<'static, EditorApp>) -> Vec<u8> {
    h.state()
        .state
        .face
        .as_ref()
        .expect("a face")
        .image
        .as_ref()
        .expect("a settled face has its pixels on the CPU")
        .as_raw()
        .clone()
}

pub fn drag_slider(h: &mut Harness<'static, EditorApp>, label: &str, to_fraction: f32) {
    let rect = h
        .get_by_role_and_label(egui::accesskit::Role::Slider, label)
        .rect();
    let from = rect.center();
    let to = egui::pos2(rect.left() + rect.width() * to_fraction, from.y);
    h.hover_at(from);
    h.step();
    h.drag_at(from);
    h.step();
    for i in 1..=5 {
        h.hover_at(from + (to - from) * (i as f32 / 5.0));
        h.step();
    }
    h.drop_at(to);
    h.step();
}
