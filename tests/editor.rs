//! The editor, driven as a user drives it (egui_kittest): drag sliders, press
//! keys, click buttons, open files; then check what the window shows.

mod common;

use std::time::{Duration, Instant};

use common::{cli_render, drag_slider, face_pixels, harness, plugin_dir, settle};
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use plugen_core::io::latents::Latents;
use plugen_core::model::bundle::{Bundle, default_model_dir};
use plugen_core::rng::SeededRng;

#[test]
fn dragging_a_slider_changes_the_face_and_its_readout() {
    let dir = plugin_dir();
    let mut h = harness(Some(&dir));
    let before = face_pixels(&h);
    let k = 0; // lefty
    let readout_before = h.state().state.face.as_ref().expect("face").readout[k];
    drag_slider(&mut h, "Lefty", 0.95);
    settle(&mut h);
    let after = face_pixels(&h);
    let readout_after = h.state().state.face.as_ref().expect("face").readout[k];
    assert_ne!(before, after, "the face should change");
    assert!(
        readout_after > readout_before + 0.5,
        "readout {readout_before} -> {readout_after}"
    );
    assert!(readout_after > 1.5);
    // The latent really has the attribute now (ground truth of the test plugin).
    assert!(h.state().state.face.as_ref().expect("face").latent[10] > 0.0);
    // Dragging the other way moves it back down.
    drag_slider(&mut h, "Lefty", 0.05);
    settle(&mut h);
    assert!(h.state().state.face.as_ref().expect("face").readout[k] < -1.5);
    // The released drags are history steps: undo walks back through them.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    settle(&mut h);
    let undone = h.state().state.face.as_ref().expect("face").readout[k];
    assert!(
        (undone - readout_after).abs() < 0.05,
        "undo should return to {readout_after}, got {undone}"
    );
}

#[test]
fn new_face_then_undo_returns_the_previous_face() {
    let mut h = harness(None);
    let first = face_pixels(&h);
    h.get_by_label("New face").click();
    settle(&mut h);
    let second = face_pixels(&h);
    assert_ne!(first, second);
    h.key_press(Key::R);
    settle(&mut h);
    assert_ne!(face_pixels(&h), second);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    settle(&mut h);
    assert_eq!(face_pixels(&h), second);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    settle(&mut h);
    assert_eq!(face_pixels(&h), first);
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    settle(&mut h);
    assert_eq!(face_pixels(&h), second);
    // The recent strip holds the settled faces to click back to.
    assert!(h.state().state.recent.len() >= 3);
}

#[test]
fn loaded_latent_matches_the_cli_render_and_corrupt_files_change_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let z = Latents::new(100, SeededRng::new(77, 0).normal_vec(100)).expect("latent");
    let (file, png) = cli_render(tmp.path(), &z, "cli");
    let cli = image::open(&png).expect("png").to_rgb8();

    let dir = plugin_dir();
    let mut h = harness(Some(&dir));
    h.state_mut().open_path(file.clone());
    settle(&mut h);
    let shown = face_pixels(&h);
    let differing = shown
        .iter()
        .zip(cli.as_raw())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing, 0,
        "editor and CLI render the same latent differently in {differing} bytes"
    );
    assert!(
        h.state().state.live.seed.is_none(),
        "a loaded face has no seed"
    );

    // A corrupt file: an error is shown, the face stays.
    let junk = tmp.path().join("junk.npy");
    std::fs::write(&junk, b"\x93NUMPY garbage").expect("write");
    h.state_mut().open_path(junk);
    settle(&mut h);
    let err = h.state().state.error.clone().expect("an error is shown");
    assert!(err.contains("junk.npy"), "{err}");
    assert!(
        h.query_by_label_contains("junk.npy").is_some(),
        "the error is visible in the window"
    );
    assert!(face_pixels(&h) == shown, "the face must not change");

    // A plugin for another generator is refused, and the current one stays.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    let json = std::fs::read_to_string(dir.join("plugin.json")).expect("json");
    let sha = Bundle::open(&default_model_dir())
        .expect("bundle")
        .manifest()
        .sha256
        .clone();
    std::fs::write(
        other.join("plugin.json"),
        json.replace(&sha, &"1".repeat(64)),
    )
    .expect("write");
    std::fs::copy(
        dir.join("plugin.safetensors"),
        other.join("plugin.safetensors"),
    )
    .expect("copy");
    h.state_mut().open_plugin(other);
    settle(&mut h);
    assert!(
        h.state()
            .state
            .error
            .as_deref()
            .is_some_and(|e| e.contains("another generator"))
    );
    assert_eq!(h.state().state.attributes().len(), 2);
}

#[test]
fn export_writes_files_that_reload_to_the_same_pixels() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = plugin_dir();
    let mut h = harness(Some(&dir));
    drag_slider(&mut h, "Lefty", 0.8);
    settle(&mut h);
    h.key_press(Key::T);
    h.step();
    h.key_press(Key::R);
    settle(&mut h);
    h.get_by_label("Add to tray").click();
    h.step();
    assert_eq!(h.state().state.tray.len(), 2);
    let shown = face_pixels(&h);
    // Type a folder that does not exist yet, then click Export.
    let folder = tmp.path().join("new folder");
    h.state_mut().export_text = folder.display().to_string();
    h.step();
    h.get_by_label("Export 2").click();
    settle(&mut h);
    assert!(
        h.state().state.error.is_none(),
        "{:?}",
        h.state().state.error
    );
    let png = folder.join("face-0002.png");
    let json = folder.join("face-0002.json");
    assert!(folder.join("face-0001.png").exists() && png.exists() && json.exists());
    assert_eq!(image::open(&png).expect("png").to_rgb8().as_raw(), &shown);
    assert!(h.state().state.tray.is_empty());
    // Exporting again never overwrites: new numbers.
    h.key_press(Key::T);
    h.step();
    h.state_mut().export_to(folder.clone());
    settle(&mut h);
    assert!(folder.join("face-0003.png").exists());
    // The sidecar loads back to the same face, byte for byte.
    h.key_press(Key::R);
    settle(&mut h);
    h.state_mut().open_path(json);
    settle(&mut h);
    assert_eq!(face_pixels(&h), shown);
}

#[test]
fn main_window_snapshot() {
    let dir = plugin_dir();
    let mut h = harness(Some(&dir));
    // Let every animation finish: how many frames `settle` took depends on load.
    h.run_ok();
    // The judges read the face on the worker after it is shown: wait for their line.
    let start = Instant::now();
    while h.query_by_label_contains("Judges:").is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "no judges' line");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_ok();
    // Timings differ from run to run: hide the status bar from the comparison.
    let status = h.get_by_label_contains("ms per face").rect();
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, status.top() - 4.0),
        egui::pos2(1100.0, 760.0),
    ));
    h.snapshot("main_window");
}

#[test]
fn opening_an_image_projects_it_and_shows_target_beside_reconstruction() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A face from the generator itself, saved as a PNG a user could drop in.
    let z = Latents::new(100, SeededRng::new(12, 0).normal_vec(100)).expect("latent");
    let (_, png) = cli_render(tmp.path(), &z, "photo");
    let target = image::open(&png).expect("png").to_rgb8();
    let mut h = harness(Some(&plugin_dir()));
    let before = face_pixels(&h);
    h.state_mut().open_path(png);
    // Progress is reported while it runs.
    let mut saw_progress = false;
    let start = Instant::now();
    while !h.state().state.idle() {
        h.step();
        if h.state()
            .state
            .projection
            .as_ref()
            .is_some_and(|p| p.step > 0)
        {
            saw_progress = true;
        }
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(20));
    }
    settle(&mut h);
    assert!(saw_progress, "no projection progress was shown");
    assert!(
        h.query_all_by_label("Target image").next().is_some(),
        "the target is shown"
    );
    let mse = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64
    };
    let now = face_pixels(&h);
    assert!(
        mse(&now, target.as_raw()) < mse(&before, target.as_raw()) / 4.0,
        "the reconstruction should resemble the image"
    );
    // The projected face is editable like any other.
    drag_slider(&mut h, "Lefty", 0.9);
    settle(&mut h);
    assert_ne!(face_pixels(&h), now);
}

#[test]
fn a_loaded_face_compares_before_and_after_its_edits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let z = Latents::new(100, SeededRng::new(21, 0).normal_vec(100)).expect("latent");
    let (file, _) = cli_render(tmp.path(), &z, "loaded");
    let mut h = harness(Some(&plugin_dir()));
    // A seeded face has nothing to compare with.
    assert!(h.query_by_label("Compare").is_none());
    h.state_mut().open_path(file);
    settle(&mut h);
    let loaded = face_pixels(&h);
    assert_eq!(
        h.state().state.before.as_ref().expect("before").as_raw(),
        &loaded
    );
    drag_slider(&mut h, "Lefty", 0.95);
    settle(&mut h);
    assert_ne!(face_pixels(&h), loaded, "the edit changes the face");
    assert_eq!(
        h.state()
            .state
            .before
            .as_ref()
            .expect("before kept")
            .as_raw(),
        &loaded,
        "the before face stays the face as loaded"
    );
    // Hold B: the face as loaded replaces the edited one while the key is down.
    assert!(h.query_by_label("Generated face").is_some());
    h.key_down(Key::B);
    h.step();
    h.step();
    assert!(h.query_by_label("Before (B held)").is_some());
    assert!(h.query_by_label("Generated face").is_none());
    h.key_up(Key::B);
    h.step();
    h.step();
    assert!(h.query_by_label("Generated face").is_some());
    // Split view: both side by side.
    h.get_by_label("Compare").click();
    h.step();
    h.step();
    assert!(h.query_all_by_label("Before (as loaded)").next().is_some());
    assert!(h.query_all_by_label("After (edited)").next().is_some());
    assert!(h.state().settings.compare);
    // A new identity has no "before".
    h.get_by_label("Compare").click();
    h.step();
    h.key_press(Key::R);
    settle(&mut h);
    assert!(h.state().state.before.is_none());
    assert!(h.query_by_label("Compare").is_none());
}

#[test]
fn export_sweep_writes_a_grid_and_a_gif_of_the_last_moved_attribute() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut h = harness(Some(&plugin_dir()));
    drag_slider(&mut h, "Lefty", 0.8);
    settle(&mut h);
    open_sweep_form(&mut h);
    assert!(
        h.query_by_label("From -2.00 to 2.00").is_some(),
        "binary range shown"
    );
    h.state_mut().export_text = tmp.path().display().to_string();
    h.get_by_label("Save sweep").click();
    settle(&mut h);
    let png = tmp.path().join("sweep-lefty-001.png");
    let gif = tmp.path().join("sweep-lefty-001.gif");
    let grid = image::open(&png).expect("grid").to_rgb8();
    assert_eq!(grid.dimensions(), (9 * 64 + 10 * 2, 64 + 2 * 2));
    let cell = |c: u32| image::imageops::crop_imm(&grid, 2 + c * 66, 2, 64, 64).to_image();
    assert!(cell(0) != cell(8), "the ends of the sweep differ");
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).expect("gif"),
    ))
    .expect("a GIF")
    .into_frames()
    .collect_frames()
    .expect("frames");
    assert_eq!(frames.len(), 9 + 7, "there and back");
    let notice = h.state().state.notice.clone().unwrap_or_default();
    assert!(notice.contains("sweep-lefty-001.gif"), "{notice}");
    assert!(h.state().sweep_form.is_none(), "the window closes");
    // A second export never replaces the first.
    open_sweep_form(&mut h);
    h.get_by_label("Save sweep").click();
    settle(&mut h);
    assert!(tmp.path().join("sweep-lefty-002.png").exists());
    assert_eq!(image::open(&png).expect("kept").to_rgb8(), grid);
}

/// File ▸ Export sweep…, as a user opens it.
fn open_sweep_form(h: &mut egui_kittest::Harness<'static, plugen::gui::EditorApp>) {
    h.get_by_label("File").click();
    for _ in 0..3 {
        h.step();
    }
    h.get_by_label("Export sweep…").click();
    for _ in 0..3 {
        h.step();
    }
}
