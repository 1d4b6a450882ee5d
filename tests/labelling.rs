//! Label mode, played as a user: define an attribute, label 300 faces with the
//! keyboard (100 fresh, then 200 the editor suggests), train twice in the
//! background, and check that the new slider controls the attribute while the
//! old ones keep their control. Also measures active learning against random
//! labelling with the same budget.
//!
//! The attribute is synthetic: `w·z > 0.52` for a fixed unit vector `w` (about
//! 30 % of faces). The test knows the answer; the app only sees the key presses.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{harness, settle};
use egui::Key;
use egui_kittest::kittest::Queryable;
use plugen_core::Device;
use plugen_core::io::latents::Latents;
use plugen_core::learn::labelling::{AttributeDefinition, LabelSession, Suggest};
use plugen_core::learn::pseudo_labels::Logistic;
use plugen_core::learn::train;
use plugen_core::model::attributes::AttributeKind;
use plugen_core::model::bundle::{Bundle, default_model_dir};
use plugen_core::model::plugin::{LatentSource, Plugin, read_pair};
use plugen_core::rng::SeededRng;

const DIM: usize = 100;

fn direction() -> Vec<f32> {
    let w = SeededRng::new(123, 0).normal_vec(DIM);
    let n = w.iter().map(|v| v * v).sum::<f32>().sqrt();
    w.into_iter().map(|v| v / n).collect()
}

fn truth(w: &[f32], z: &[f32]) -> bool {
    w.iter().zip(z).map(|(a, b)| a * b).sum::<f32>() > 0.52
}

/// A writable copy of the bundle's first plugin and its training data.
fn plugin_copy(dir: &Path) -> PathBuf {
    let bundle = default_model_dir();
    for f in [
        "plugin.json",
        "plugin.safetensors",
        "plugin.latents.npy",
        "plugin.labels.csv",
    ] {
        std::fs::copy(bundle.join(f), dir.join(f)).expect("copy plugin");
    }
    dir.join("plugin.json")
}

/// Plugin ▸ New attribute…, as a user opens it.
fn open_new_attribute_form(h: &mut egui_kittest::Harness<'static, plugen::gui::EditorApp>) {
    h.get_by_label("Plugin").click();
    for _ in 0..3 {
        h.step();
    }
    h.get_by_label("New attribute...").click();
    for _ in 0..3 {
        h.step();
    }
}

fn wait_for<F: Fn(&plugen::gui::EditorApp) -> bool>(
    h: &mut egui_kittest::Harness<'static, plugen::gui::EditorApp>,
    what: &str,
    done: F,
) {
    let start = Instant::now();
    while !done(h.state()) {
        h.step();
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    h.step();
}

/// Labels `count` faces as the user would: look at the selected face, press 1 or 0.
fn label_faces(
    h: &mut egui_kittest::Harness<'static, plugen::gui::EditorApp>,
    w: &[f32],
    count: usize,
) {
    for _ in 0..count {
        wait_for(h, "a page of faces", |app| {
            app.label
                .as_ref()
                .is_some_and(|p| !p.waiting && !p.page.is_empty())
        });
        let panel = h.state().label.as_ref().expect("label mode");
        let index = panel.page[panel.cursor].index;
        let z = panel.session.latent(index);
        h.key_press(if truth(w, &z) { Key::Num1 } else { Key::Num0 });
        h.step();
    }
}

fn train_in_editor(h: &mut egui_kittest::Harness<'static, plugen::gui::EditorApp>, version: &str) {
    h.get_by_label("Train").click();
    h.step();
    assert!(h.state().training.is_some(), "training started");
    wait_for(h, "training", |app| app.training.is_none());
    settle(h);
    let path = &h.state().state.plugin.as_ref().expect("plugin").path;
    assert!(
        path.ends_with(version),
        "{} loaded, expected {version}",
        path.display()
    );
}

/// Fraction of `n` conditional samples with `name` set to `value` that `judge` agrees with.
fn conditional(
    plugin: &Plugin,
    name: &str,
    value: f32,
    n: usize,
    judge: &dyn Fn(&[f32]) -> bool,
) -> f32 {
    let req = plugin
        .resolve(&[(name.to_string(), value)])
        .expect("resolve");
    let mut codes = Vec::new();
    for i in 0..n {
        codes.extend(plugin.sample_code(&req, 1.0, &mut SeededRng::new(4242, i as u64)));
    }
    let z = plugin
        .decode(&Latents::new(DIM, codes).expect("codes"))
        .expect("decode");
    (0..n).filter(|&i| judge(z.row(i))).count() as f32 / n as f32
}

/// Readout accuracy and balanced accuracy (mean of the per-class rates) of `name` on 2 000 fresh faces.
fn readout_accuracy(plugin: &Plugin, name: &str, w: &[f32]) -> (f32, f32) {
    let k = plugin.index_of(name).expect("attribute");
    let z = Latents::new(DIM, SeededRng::new(999, 0).normal_vec(2000 * DIM)).expect("z");
    let codes = plugin.encode(&z).expect("encode");
    let mut right = [0usize; 2];
    let mut total = [0usize; 2];
    for i in 0..2000 {
        let t = usize::from(truth(w, z.row(i)));
        total[t] += 1;
        right[t] += usize::from((codes.row(i)[k] > 0.0) == (t == 1));
    }
    let acc = (right[0] + right[1]) as f32 / 2000.0;
    let balanced = (right[0] as f32 / total[0] as f32 + right[1] as f32 / total[1] as f32) / 2.0;
    (acc, balanced)
}

#[test]
fn labelling_300_faces_gives_a_working_slider() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = plugin_copy(tmp.path());
    let w = direction();
    let mut h = harness(Some(&base));

    // Plugin > New attribute…: a binary attribute called synth.
    open_new_attribute_form(&mut h);
    if let Some(form) = h.state_mut().new_attribute.as_mut() {
        form.name = "synth".into();
        form.description = "a known linear function of the latent".into();
    }
    h.step();
    h.get_by_label("Start labelling").click();
    h.step();
    assert!(h.state().label.is_some(), "label mode opened");

    // 100 fresh faces, then the first training.
    label_faces(&mut h, &w, 100);
    assert_eq!(
        h.state().label.as_ref().expect("panel").session.counts().0,
        100
    );
    // Backspace undoes the last label.
    h.key_press(Key::Backspace);
    h.step();
    assert_eq!(
        h.state().label.as_ref().expect("panel").session.counts().0,
        99
    );
    label_faces(&mut h, &w, 1);
    train_in_editor(&mut h, "plugin-v2.json");
    let _ = h.get_by_role_and_label(egui::accesskit::Role::Slider, "synth");

    // 200 more, now suggested by the plugin's uncertainty, then train again.
    label_faces(&mut h, &w, 200);
    assert!(
        h.state().label.as_ref().expect("panel").suggested,
        "faces are suggested after a first plugin"
    );
    train_in_editor(&mut h, "plugin-v3.json");
    let session_path = LabelSession::path_for(tmp.path(), "synth");
    let session = LabelSession::read(&session_path).expect("session saved");
    assert_eq!(session.labels.len(), 300);

    // The new slider controls the attribute.
    let device = Device::Cpu;
    let sha = Bundle::open(&default_model_dir())
        .expect("bundle")
        .manifest()
        .sha256
        .clone();
    let v1 = Plugin::load(&base, &sha, &device).expect("v1");
    let v3 = Plugin::load(&tmp.path().join("plugin-v3.json"), &sha, &device).expect("v3");
    let yes = conditional(&v3, "synth", 1.0, 300, &|z| truth(&w, z));
    let no = conditional(&v3, "synth", -1.0, 300, &|z| !truth(&w, z));
    eprintln!(
        "synth: +1 -> {:.1} % have it, -1 -> {:.1} % do not",
        yes * 100.0,
        no * 100.0
    );
    assert!(yes >= 0.9 && no >= 0.9, "synth control {yes} / {no}");

    // Old binary attributes keep their control, judged by a linear probe fitted
    // on the bundle's own labels (independent of both flows).
    let (lat, labels) = read_pair(
        &LatentSource::File(tmp.path().join("plugin.latents.npy")),
        &tmp.path().join("plugin.labels.csv"),
        DIM,
    )
    .expect("training data");
    let mut drops = Vec::new();
    for name in ["smile", "mouth_open", "male"] {
        let k = labels.column_index(name).expect("column");
        let rows: Vec<usize> = (0..labels.rows.len())
            .filter(|&i| labels.rows[i][k].is_some())
            .take(5000)
            .collect();
        let targets: Vec<f64> = rows
            .iter()
            .map(|&i| f64::from(labels.rows[i][k] >= Some(0.5)))
            .collect();
        let probe = Logistic::fit(&lat, &rows, &targets);
        let score = |p: &Plugin| {
            (conditional(p, name, 1.0, 200, &|z| probe.prob(z) > 0.5)
                + conditional(p, name, -1.0, 200, &|z| probe.prob(z) < 0.5))
                / 2.0
        };
        let (before, after) = (score(&v1), score(&v3));
        eprintln!(
            "{name}: control {:.1} % before, {:.1} % after",
            before * 100.0,
            after * 100.0
        );
        drops.push((name, before, after));
    }
    for (name, before, after) in drops {
        assert!(after >= before - 0.03, "{name}: {before} -> {after}");
    }

    // Active learning against random labelling with the same 300-label budget.
    let mut random = LabelSession::new(
        AttributeDefinition {
            name: "synth".into(),
            kind: AttributeKind::Binary,
            description: String::new(),
        },
        session.seed,
        DIM,
        "plugin.json".into(),
    )
    .expect("session");
    for i in random
        .next_faces(300, Suggest::Random, None)
        .expect("faces")
    {
        random.set_label(i, f32::from(u8::from(truth(&w, &random.latent(i)))));
    }
    let set = random.label_set();
    let meta = HashMap::from([("synth".to_string(), random.attribute.meta())]);
    let (trained, _) = train::extend(
        &v1,
        &set.latents,
        &set.labels,
        &meta,
        &train::extension_config(&v1),
        &device,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect("random training");
    let random_plugin = trained.into_plugin(&device).expect("plugin");
    let (al, al_bal) = readout_accuracy(&v3, "synth", &w);
    let (rnd, rnd_bal) = readout_accuracy(&random_plugin, "synth", &w);
    let rnd_yes = conditional(&random_plugin, "synth", 1.0, 300, &|z| truth(&w, z));
    let rnd_no = conditional(&random_plugin, "synth", -1.0, 300, &|z| !truth(&w, z));
    eprintln!(
        "300 labels, uncertainty sampling vs random: readout accuracy on 2 000 fresh faces \
         {:.1} % vs {:.1} %, balanced {:.1} % vs {:.1} %; control at +1/-1 {:.1}/{:.1} % vs {:.1}/{:.1} %",
        al * 100.0,
        rnd * 100.0,
        al_bal * 100.0,
        rnd_bal * 100.0,
        yes * 100.0,
        no * 100.0,
        rnd_yes * 100.0,
        rnd_no * 100.0
    );
    assert!(al > rnd, "active learning {al} should beat random {rnd}");
}

#[test]
fn a_continuous_attribute_is_labelled_with_a_slider_per_face() {
    let tmp = tempfile::tempdir().expect("tmp");
    let base = plugin_copy(tmp.path());
    let mut h = harness(Some(&base));
    open_new_attribute_form(&mut h);
    h.get_by_label("Continuous").click();
    h.step();
    if let Some(form) = h.state_mut().new_attribute.as_mut() {
        form.name = "age".into();
    }
    h.step();
    h.get_by_label("Start labelling").click();
    h.step();
    wait_for(&mut h, "a page of faces", |app| {
        app.label
            .as_ref()
            .is_some_and(|p| !p.waiting && !p.page.is_empty())
    });
    let first = h.state().label.as_ref().expect("panel").page[0].index;
    common::drag_slider(&mut h, &format!("face {first}"), 0.8);
    h.step();
    let panel = h.state().label.as_ref().expect("panel");
    let v = panel
        .session
        .label_of(first)
        .expect("labelled by its slider");
    assert!((0.6..=0.95).contains(&v), "label {v}");
    assert!(!panel.can_train(), "one label is not enough to train");
    // Saved at once, and backspace takes it back.
    let path = LabelSession::path_for(tmp.path(), "age");
    assert_eq!(LabelSession::read(&path).expect("saved").labels.len(), 1);
    h.key_press(Key::Backspace);
    h.step();
    assert_eq!(LabelSession::read(&path).expect("saved").labels.len(), 0);
    // A bad name is refused in the form, which stays open.
    h.get_by_label("Done").click();
    h.step();
    assert!(h.state().label.is_none());
    h.state_mut().new_attribute = Some(Default::default());
    if let Some(form) = h.state_mut().new_attribute.as_mut() {
        form.name = "Has Glasses".into();
    }
    h.step();
    h.get_by_label("Start labelling").click();
    h.step();
    let form = h.state().new_attribute.as_ref().expect("form still open");
    assert!(
        form.error
            .as_deref()
            .unwrap_or("")
            .contains("not an attribute name")
    );
}
