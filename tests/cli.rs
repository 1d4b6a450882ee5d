//! The `plugen` command line, driven as a user would: files in, files out, and
//! one clear line for every mistake.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plugen_core::io::fsutil::Overwrite;
use plugen_core::io::latents::{self, Latents};
use plugen_core::io::npy;
use plugen_core::rng::SeededRng;

/// `plugen ARGS…` run from the source tree on the bundled model, optionally under a wrapper (`prlimit …`).
fn command(wrapper: &[&str], args: &[&str]) -> Command {
    let mut c = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(env!("CARGO_BIN_EXE_plugen"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_plugen")),
    };
    c.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PLUGEN_MODEL");
    c
}

fn plugen(args: &[&str]) -> Output {
    command(&[], args).output().expect("the plugen binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = plugen(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "plugen {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its one-line error.
fn fails(args: &[&str]) -> String {
    let out = plugen(args);
    assert!(!out.status.success(), "plugen {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line expected, got: {stderr}"
    );
    assert!(stderr.starts_with("plugen: error: "), "{stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `dir/bare`: a copy of the default plugin without its judge map.
fn bare_plugin(dir: &Path) -> PathBuf {
    let bare = dir.join("bare");
    std::fs::create_dir(&bare).expect("mkdir");
    let model = Path::new("models/dcgan-digiface64");
    let mut manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("plugin-v5.json")).expect("plugin"),
    )
    .expect("json");
    manifest.as_object_mut().expect("object").remove("judges");
    std::fs::write(bare.join("plugin.json"), manifest.to_string()).expect("write");
    std::fs::copy(
        model.join("plugin-v5.safetensors"),
        bare.join(manifest["weights"].as_str().expect("weights")),
    )
    .expect("copy");
    bare
}

fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    v
}

#[test]
fn sample_writes_faces_manifest_and_is_deterministic() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    ok(&["sample", "-n", "16", "--seed", "1", "--out", s(&a)]);
    ok(&[
        "sample",
        "-n",
        "16",
        "--seed",
        "1",
        "--out",
        s(&b),
        "--device",
        "cpu",
    ]);
    let files = pngs(&a);
    assert_eq!(files.len(), 16);
    let img = image::open(&files[0]).expect("a PNG").to_rgb8();
    assert_eq!(img.dimensions(), (64, 64));
    // Faces, not flat frames: pixels vary.
    let (min, max) = img
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    assert!(max - min > 100, "image looks flat: {min}..{max}");
    let manifest = std::fs::read_to_string(a.join("manifest.jsonl")).expect("manifest");
    assert_eq!(manifest.lines().count(), 16);
    for (f, g) in files.iter().zip(pngs(&b)) {
        assert_eq!(
            std::fs::read(f).expect("png"),
            std::fs::read(g).expect("png"),
            "{f:?} differs between runs"
        );
    }
    // Different seeds give different faces.
    let c = tmp.path().join("c");
    ok(&["sample", "-n", "1", "--seed", "2", "--out", s(&c)]);
    assert_ne!(
        std::fs::read(&files[0]).expect("png"),
        std::fs::read(c.join("000000.png")).expect("png")
    );
    // The folder holds a run now: refusing is the safe default, --resume is a no-op.
    assert!(fails(&["sample", "-n", "16", "--seed", "1", "--out", s(&a)]).contains("--resume"));
    assert!(
        ok(&[
            "sample",
            "-n",
            "16",
            "--seed",
            "1",
            "--out",
            s(&a),
            "--resume"
        ])
        .contains("wrote 0 images")
    );
    assert!(
        fails(&[
            "sample",
            "-n",
            "16",
            "--seed",
            "9",
            "--out",
            s(&a),
            "--resume"
        ])
        .contains("same settings")
    );
}

#[test]
fn interrupted_run_resumes_to_identical_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let whole = tmp.path().join("whole");
    let cut = tmp.path().join("cut");
    ok(&["sample", "-n", "70", "--seed", "4", "--out", s(&whole)]);
    ok(&["sample", "-n", "70", "--seed", "4", "--out", s(&cut)]);
    // Simulate a crash: the last 7 images never made it, one has no manifest
    // line yet, and the manifest ends in a torn line.
    let manifest = std::fs::read_to_string(cut.join("manifest.jsonl")).expect("manifest");
    let lines: Vec<&str> = manifest.lines().collect();
    let mut torn = lines[..62].join("\n");
    torn.push('\n');
    torn.push_str(&lines[62][..40]);
    std::fs::write(cut.join("manifest.jsonl"), torn).expect("write");
    for i in 63..70 {
        std::fs::remove_file(cut.join(format!("{i:06}.png"))).expect("rm");
    }
    let out = ok(&[
        "sample",
        "-n",
        "70",
        "--seed",
        "4",
        "--out",
        s(&cut),
        "--resume",
    ]);
    assert!(
        out.contains("wrote 8 images") && out.contains("62 already there"),
        "{out}"
    );
    for (f, g) in pngs(&whole).iter().zip(pngs(&cut)) {
        assert_eq!(
            std::fs::read(f).expect("png"),
            std::fs::read(&g).expect("png")
        );
    }
    let m = std::fs::read_to_string(cut.join("manifest.jsonl")).expect("manifest");
    let mut idx: Vec<u64> = m
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["index"]
                .as_u64()
                .expect("index")
        })
        .collect();
    idx.sort();
    assert_eq!(idx, (0..70).collect::<Vec<u64>>());
}

#[test]
fn sidecar_loads_back_to_the_same_face() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("s");
    ok(&["sample", "-n", "4", "--seed", "3", "--out", s(&out)]);
    // Cut one manifest line into a sidecar and edit nothing: the same PNG comes back.
    let line = std::fs::read_to_string(out.join("manifest.jsonl"))
        .expect("manifest")
        .lines()
        .nth(2)
        .expect("line")
        .to_string();
    let side = tmp.path().join("face.json");
    std::fs::write(&side, line).expect("write");
    let png = tmp.path().join("again.png");
    ok(&["edit", "--latent", s(&side), "--out", s(&png)]);
    assert_eq!(
        std::fs::read(&png).expect("png"),
        std::fs::read(out.join("000002.png")).expect("png")
    );
    assert!(tmp.path().join("again.json").exists());
    // Never overwrite silently.
    assert!(fails(&["edit", "--latent", s(&side), "--out", s(&png)]).contains("exists"));
    ok(&[
        "edit",
        "--latent",
        s(&side),
        "--out",
        s(&png),
        "--overwrite",
    ]);
    // The written sidecar loads too, and --scale upsizes.
    let big = tmp.path().join("big.png");
    ok(&[
        "edit",
        "--latent",
        s(&tmp.path().join("again.json")),
        "--out",
        s(&big),
        "--scale",
        "4",
    ]);
    assert_eq!(image::open(&big).expect("png").width(), 256);
}

/// Synthetic labels that are known functions of the latent.
fn write_training_set(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let mut rng = SeededRng::new(21, 0);
    let z = Latents::new(100, rng.normal_vec(n * 100)).expect("rows");
    let mut csv = String::from("lefty,tone\n");
    for i in 0..n {
        let r = z.row(i);
        let lefty = if rng.uniform() < 0.3 {
            String::new()
        } else {
            ((r[10] > 0.0) as u8).to_string()
        };
        csv.push_str(&format!("{lefty},{}\n", r[70] * 10.0 + 50.0));
    }
    let lat = dir.join("latents.npy");
    let lab = dir.join("labels.csv");
    latents::write_npy(&lat, &z, Overwrite::Never).expect("npy");
    std::fs::write(&lab, csv).expect("csv");
    (lat, lab)
}

#[test]
fn train_readout_and_conditional_sampling() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (lat, lab) = write_training_set(tmp.path(), 3000);
    let plugin_dir = tmp.path().join("plugin");
    let out = ok(&[
        "train",
        "--latents",
        s(&lat),
        "--labels",
        s(&lab),
        "--out",
        s(&plugin_dir),
        "--epochs",
        "15",
        "--hidden",
        "64",
    ]);
    assert!(out.contains("lefty") && out.contains("accuracy"), "{out}");
    assert!(out.contains("moves a held-out latent"), "{out}");
    assert!(
        plugin_dir.join("plugin.json").exists() && plugin_dir.join("plugin.safetensors").exists()
    );
    // A negative edit-distance weight is refused before any training.
    assert!(
        fails(&[
            "train",
            "--latents",
            s(&lat),
            "--labels",
            s(&lab),
            "--edit-distance=-1",
            "--out",
            s(&tmp.path().join("neg"))
        ])
        .contains("edit-distance weight -1")
    );
    // Never replace a trained plugin.
    assert!(
        fails(&[
            "train",
            "--latents",
            s(&lat),
            "--labels",
            s(&lab),
            "--out",
            s(&plugin_dir)
        ])
        .contains("plugin.json")
    );
    // Conditional sampling: requested values land in the manifest, and the
    // plugin's own readout agrees with the request.
    let hi = tmp.path().join("hi");
    ok(&[
        "sample",
        "-n",
        "40",
        "--seed",
        "5",
        "--plugin",
        s(&plugin_dir),
        "--set",
        "lefty=1",
        "--set",
        "tone=60",
        "--out",
        s(&hi),
    ]);
    let m = std::fs::read_to_string(hi.join("manifest.jsonl")).expect("manifest");
    let mut positive = 0;
    for line in m.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["requested"]["lefty"], 1.0);
        assert_eq!(v["requested"]["tone"], 60.0);
        // Ground truth of the sampled latent.
        positive += (v["latent"][10].as_f64().expect("latent") > 0.0) as usize;
    }
    assert!(positive >= 36, "only {positive}/40 samples have lefty");
    // Balanced sampling splits evenly.
    let bal = tmp.path().join("bal");
    ok(&[
        "sample",
        "-n",
        "10",
        "--plugin",
        s(&plugin_dir),
        "--balance",
        "lefty",
        "--out",
        s(&bal),
    ]);
    let m = std::fs::read_to_string(bal.join("manifest.jsonl")).expect("manifest");
    let pos = m.lines().filter(|l| l.contains("\"lefty\":1.0")).count();
    assert_eq!(pos, 5, "{m}");
    // Readout on a sidecar, as JSON.
    let side = tmp.path().join("one.json");
    std::fs::write(&side, m.lines().next().expect("line")).expect("write");
    let r = ok(&[
        "readout",
        "--latent",
        s(&side),
        "--plugin",
        s(&plugin_dir),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(r.trim()).expect("json");
    assert!(v["lefty"].is_number() && v["tone"].is_number());
    // Editing moves the attribute the right way.
    let edited = tmp.path().join("edited.png");
    ok(&[
        "edit",
        "--latent",
        s(&side),
        "--plugin",
        s(&plugin_dir),
        "--set",
        "lefty=-2",
        "--out",
        s(&edited),
    ]);
    let e: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("edited.json")).expect("sidecar"),
    )
    .expect("json");
    assert!(
        e["readout"]["lefty"].as_f64().expect("number") < -1.0,
        "{e}"
    );
    // Mistakes: one line each, naming the problem.
    let x = tmp.path().join("x");
    for (set, expected) in [
        ("smile=1", "unknown attribute \"smile\""),
        ("lefty=7", "out of range"),
        ("lefty", "NAME=VALUE"),
    ] {
        let args = [
            "sample",
            "-n",
            "2",
            "--plugin",
            s(&plugin_dir),
            "--set",
            set,
            "--out",
            s(&x),
        ];
        let e = fails(&args);
        assert!(e.contains(expected), "{e}");
    }
    // A plugin made for another generator is refused.
    let json = std::fs::read_to_string(plugin_dir.join("plugin.json")).expect("json");
    let sha = serde_json::from_str::<serde_json::Value>(&json).expect("json")["generator_sha256"]
        .as_str()
        .expect("sha")
        .to_string();
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(
        other.join("plugin.json"),
        json.replace(&sha, &"0".repeat(64)),
    )
    .expect("write");
    std::fs::copy(
        plugin_dir.join("plugin.safetensors"),
        other.join("plugin.safetensors"),
    )
    .expect("copy");
    assert!(
        fails(&["readout", "--latent", s(&side), "--plugin", s(&other)])
            .contains("another generator")
    );
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nope.npy");
    assert!(
        fails(&[
            "edit",
            "--latent",
            s(&missing),
            "--out",
            s(&tmp.path().join("o.png"))
        ])
        .contains("nope.npy")
    );
    let wrong = tmp.path().join("wrong.npy");
    std::fs::write(&wrong, npy::encode(&[3, 7], &[0.0; 21])).expect("write");
    let e = fails(&[
        "edit",
        "--latent",
        s(&wrong),
        "--out",
        s(&tmp.path().join("o.png")),
    ]);
    assert!(e.contains("wrong.npy") && e.contains("[3, 7]"), "{e}");
    let nan = tmp.path().join("nan.npy");
    let mut v = vec![0.0f32; 100];
    v[5] = f32::NAN;
    std::fs::write(&nan, npy::encode(&[100], &v)).expect("write");
    assert!(
        fails(&[
            "edit",
            "--latent",
            s(&nan),
            "--out",
            s(&tmp.path().join("o.png"))
        ])
        .contains("non-finite")
    );
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, b"definitely not a zip").expect("write");
    assert!(
        fails(&["import-torch", s(&junk), "--out", s(&tmp.path().join("m"))]).contains("junk.tar")
    );
    assert!(
        fails(&[
            "sample",
            "-n",
            "1",
            "--model",
            s(tmp.path()),
            "--out",
            s(&tmp.path().join("x"))
        ])
        .contains("manifest.json")
    );
    assert!(
        fails(&[
            "sample",
            "-n",
            "1",
            "--device",
            "tpu",
            "--out",
            s(&tmp.path().join("x"))
        ])
        .contains("--device")
    );
    assert!(
        fails(&[
            "sample",
            "-n",
            "1",
            "--set",
            "nosuch=1",
            "--out",
            s(&tmp.path().join("x"))
        ])
        .contains("unknown attribute \"nosuch\"")
    );
    // Nothing half-written was left behind by the failures.
    assert!(!tmp.path().join("o.png").exists());
    assert!(std::fs::read_dir(tmp.path()).expect("dir").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with(".plugen-")
    }));
}

#[test]
fn same_seed_same_bytes_on_any_thread_count() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = tmp.path().join(format!("t{threads}"));
        let args = [
            "sample",
            "-n",
            "8",
            "--seed",
            "11",
            "--set",
            "smile=2",
            "--out",
            s(&out),
        ];
        let status = command(&[], &args)
            .env("RAYON_NUM_THREADS", threads)
            .status()
            .expect("plugen sample");
        assert!(status.success());
        outputs.push(
            pngs(&out)
                .iter()
                .map(|p| std::fs::read(p).expect("png"))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(outputs[0].len(), 8);
    assert!(
        outputs[0] == outputs[1] && outputs[1] == outputs[2],
        "PNG bytes depend on the thread count"
    );
}

/// A run killed mid-write (here by a file-size limit, a stand-in for a full
/// disk: the kernel stops the process when the manifest outgrows the limit)
/// leaves only whole files and a manifest that names only files that exist;
/// --resume then finishes it with the same bytes as an uninterrupted run.
#[test]
fn run_killed_mid_write_leaves_consistent_files_and_resumes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let whole = tmp.path().join("whole");
    let cut = tmp.path().join("cut");
    ok(&["sample", "-n", "150", "--seed", "9", "--out", s(&whole)]);
    let args = ["sample", "-n", "150", "--seed", "9", "--out", s(&cut)];
    let status = command(&["prlimit", "--fsize=60000"], &args)
        .status()
        .expect("prlimit (util-linux) runs plugen");
    assert!(!status.success(), "the limit should have stopped the run");
    let manifest = std::fs::read_to_string(cut.join("manifest.jsonl")).expect("manifest");
    let complete: Vec<&str> = manifest
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    assert!(
        !complete.is_empty() && complete.len() < 150,
        "{} lines",
        complete.len()
    );
    for line in &complete {
        let v: serde_json::Value = serde_json::from_str(line).expect("whole lines are JSON");
        let name = v["image"].as_str().expect("image");
        assert!(cut.join(name).exists(), "manifest names missing {name}");
    }
    // Every PNG present is whole (written to a temporary file, then renamed).
    for p in pngs(&cut) {
        image::open(&p).unwrap_or_else(|e| panic!("{} is not a whole PNG: {e}", p.display()));
    }
    ok(&[
        "sample",
        "-n",
        "150",
        "--seed",
        "9",
        "--out",
        s(&cut),
        "--resume",
    ]);
    let leftovers = std::fs::read_dir(&cut)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with(".plugen-")
        })
        .count();
    assert_eq!(
        leftovers, 0,
        "temporary files of the killed run were not cleaned up"
    );
    let a = pngs(&whole);
    let b = pngs(&cut);
    assert_eq!(a.len(), 150);
    assert_eq!(b.len(), 150);
    for (f, g) in a.iter().zip(&b) {
        assert_eq!(
            std::fs::read(f).expect("png"),
            std::fs::read(g).expect("png")
        );
    }
}

#[test]
fn label_and_extend_make_new_versions_next_to_the_old_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (lat, lab) = write_training_set(tmp.path(), 2000);
    let dir = tmp.path().join("plugin");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "train",
            "--latents",
            s(&lat),
            "--labels",
            s(&lab),
            "--epochs",
            "4",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    let a = args(&["--out", s(&dir), "--hidden", "64"]);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // A from-scratch plugin names its training data, saved beside it.
    assert!(dir.join("plugin.latents.npy").exists() && dir.join("plugin.labels.csv").exists());

    // Raw faces, sorted by the user into 1/ and 0/ folders.
    let run = tmp.path().join("run");
    ok(&[
        "sample",
        "--no-plugin",
        "-n",
        "40",
        "--seed",
        "3",
        "--out",
        s(&run),
    ]);
    let manifest = std::fs::read_to_string(run.join("manifest.jsonl")).expect("manifest");
    let mut table = String::from("image,dark\n");
    for (i, line) in manifest.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let name = v["image"].as_str().expect("image").to_string();
        let z0 = v["latent"][30].as_f64().expect("latent");
        let folder = run.join(if z0 > 0.0 { "1" } else { "0" });
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::rename(run.join(&name), folder.join(&name)).expect("move");
        // A second attribute for half of the same faces, in a table.
        if i % 2 == 0 {
            table.push_str(&format!(
                "{name},{}\n",
                u8::from(v["latent"][40].as_f64().expect("z") > 0.0)
            ));
        }
    }
    let set_lat = tmp.path().join("set.npy");
    let set_lab = tmp.path().join("set.csv");
    let out = ok(&[
        "label",
        s(&run),
        "--attribute",
        "bright",
        "--latents",
        s(&set_lat),
        "--labels",
        s(&set_lab),
    ]);
    assert!(out.contains("40 rows (40 new)"), "{out}");
    let t = tmp.path().join("t.csv");
    std::fs::write(&t, &table).expect("table");
    let out = ok(&[
        "label",
        s(&run),
        "--table",
        s(&t),
        "--latents",
        s(&set_lat),
        "--labels",
        s(&set_lab),
    ]);
    assert!(
        out.contains("40 rows (0 new)") && out.contains("bright, dark"),
        "{out}"
    );
    let labels = plugen_core::io::labels::read(&set_lab).expect("labels");
    assert_eq!(labels.rows.iter().filter(|r| r[1].is_some()).count(), 20);
    // Mistakes: a folder that is not a value, a contradicting label.
    std::fs::create_dir_all(run.join("yes")).expect("dir");
    assert!(
        fails(&[
            "label",
            s(&run),
            "--attribute",
            "bright",
            "--latents",
            s(&set_lat),
            "--labels",
            s(&set_lab)
        ])
        .contains("not a label value")
    );
    std::fs::remove_dir(run.join("yes")).expect("rm");
    let flipped = table
        .replacen(",1\n", ",2\n", 1)
        .replacen(",0\n", ",1\n", 1);
    std::fs::write(&t, flipped).expect("table");
    assert!(
        fails(&[
            "label",
            s(&run),
            "--table",
            s(&t),
            "--latents",
            s(&set_lat),
            "--labels",
            s(&set_lab)
        ])
        .contains("already")
    );

    // Extend: a new version beside the old one, which is left byte for byte.
    let v1 = std::fs::read(dir.join("plugin.safetensors")).expect("v1");
    let json = dir.join("plugin.json");
    let out = ok(&[
        "train",
        "--extend",
        s(&json),
        "--latents",
        s(&set_lat),
        "--labels",
        s(&set_lab),
        "--epochs",
        "2",
    ]);
    assert!(
        out.contains("bright") && out.contains("plugin-v2.json"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(dir.join("plugin.safetensors")).expect("v1"),
        v1
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("plugin-v2.json")).expect("v2"))
            .expect("json");
    let names: Vec<&str> = m["attributes"]
        .as_array()
        .expect("attrs")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["lefty", "tone", "bright", "dark"]);
    assert_eq!(m["training"]["data"].as_array().expect("data").len(), 2);
    let out = ok(&[
        "readout",
        "--plugin",
        s(&dir.join("plugin-v2.json")),
        "--latent",
        s(&set_lat),
    ]);
    assert!(out.contains("bright"), "{out}");
    // Extending again makes v3, from v2 and all of its data.
    ok(&[
        "train",
        "--extend",
        s(&dir.join("plugin-v2.json")),
        "--latents",
        s(&set_lat),
        "--labels",
        s(&set_lab),
        "--epochs",
        "1",
    ]);
    assert!(dir.join("plugin-v3.json").exists());
    // A plugin that does not name its training data cannot be extended.
    let mut bare = m.clone();
    bare["training"]["data"] = serde_json::json!([]);
    bare["weights"] = serde_json::json!("plugin-v2.safetensors");
    let bare_path = dir.join("bare.json");
    std::fs::write(&bare_path, serde_json::to_string(&bare).expect("json")).expect("write");
    assert!(
        fails(&[
            "train",
            "--extend",
            s(&bare_path),
            "--latents",
            s(&set_lat),
            "--labels",
            s(&set_lab)
        ])
        .contains("training data")
    );
}

/// `--device wgpu` runs sample, edit and readout on the GPU (lavapipe in CI):
/// the same files as the CPU up to one level on a few pixels, the same readout.
#[test]
fn wgpu_device_matches_the_cpu_on_every_command() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |device: &str| {
        let out = tmp.path().join(device);
        let o = plugen(&[
            "sample",
            "-n",
            "4",
            "--seed",
            "9",
            "--set",
            "smile=1",
            "--out",
            s(&out),
            "--device",
            device,
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stderr}");
        (out, stderr)
    };
    let (gpu, note) = run("wgpu");
    if note.contains("computing on the CPU") {
        assert!(
            std::env::var_os("PLUGEN_REQUIRE_GPU").is_none(),
            "PLUGEN_REQUIRE_GPU is set but: {note}"
        );
        eprintln!("skipped: {note}");
        return;
    }
    assert!(note.trim().is_empty(), "nothing on stderr, got: {note}");
    let (cpu, _) = run("cpu");
    let worst = |a: &Path, b: &Path| {
        let (a, b) = (
            image::open(a).expect("png").to_rgb8(),
            image::open(b).expect("png").to_rgb8(),
        );
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(255)
    };
    let (g, c) = (pngs(&gpu), pngs(&cpu));
    assert_eq!(g.len(), 4);
    for (a, b) in g.iter().zip(&c) {
        assert!(
            worst(a, b) <= 1,
            "{} and {} differ",
            a.display(),
            b.display()
        );
    }
    // edit and readout on the first face's manifest line (a sidecar)
    let side = tmp.path().join("first.json");
    let manifest = std::fs::read_to_string(gpu.join("manifest.jsonl")).expect("manifest");
    let first = manifest.lines().next().expect("a line");
    std::fs::write(&side, first).expect("write");
    let entry: serde_json::Value = serde_json::from_str(first).expect("json");
    let original = gpu.join(entry["image"].as_str().expect("image name"));
    let readout = |device: &str| -> serde_json::Value {
        let r = ok(&[
            "readout",
            "--latent",
            s(&side),
            "--json",
            "--device",
            device,
        ]);
        serde_json::from_str(r.trim()).expect("json")
    };
    let (rg, rc) = (readout("wgpu"), readout("cpu"));
    let smile = |v: &serde_json::Value| v["smile"].as_f64().expect("smile");
    assert!((smile(&rg) - smile(&rc)).abs() < 1e-3, "{rg} vs {rc}");
    assert!(smile(&rg) > 0.5, "smile=1 was asked for: {rg}");
    let edit = |device: &str| {
        let png = tmp.path().join(format!("edit-{device}.png"));
        ok(&[
            "edit",
            "--latent",
            s(&side),
            "--set",
            "smile=-1",
            "--out",
            s(&png),
            "--device",
            device,
        ]);
        png
    };
    let (eg, ec) = (edit("wgpu"), edit("cpu"));
    assert!(worst(&eg, &ec) <= 1, "edits differ");
    assert!(worst(&eg, &original) > 1, "the edit changed the face");
}

/// No adapter (here: a backend this machine does not have): the CPU computes
/// and one line says why.
#[test]
fn wgpu_without_an_adapter_falls_back_to_the_cpu_with_one_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("faces");
    let o = command(
        &[],
        &[
            "sample",
            "-n",
            "2",
            "--seed",
            "1",
            "--out",
            s(&out),
            "--device",
            "wgpu",
        ],
    )
    .env(
        "WGPU_BACKEND",
        if cfg!(target_os = "macos") {
            "dx12"
        } else {
            "metal"
        },
    )
    .output()
    .expect("runs");
    let stderr = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no GPU adapter") && stderr.contains("computing on the CPU"),
        "{stderr}"
    );
    assert_eq!(pngs(&out).len(), 2);
}

/// `plugen fill` brings the rare joint cells of a dataset up to the largest
/// one, with loader-ready metadata; bad tables and specs write nothing.
#[test]
fn fill_generates_exactly_the_missing_faces_of_each_cell() {
    let tmp = tempfile::tempdir().expect("tmp");
    let have = tmp.path().join("have.csv");
    // smile × male: (0,0) 6, (0,1) 4, (1,0) 1, (1,1) 3, and one unknown row.
    let mut csv = String::from("file_name,smile,male\n");
    for (s, m, n) in [(0, 0, 6), (0, 1, 4), (1, 0, 1), (1, 1, 3)] {
        for i in 0..n {
            csv += &format!("f{s}{m}{i}.jpg,{s},{m}\n");
        }
    }
    csv += "x.jpg,,1\n";
    std::fs::write(&have, csv).expect("write");
    let out = tmp.path().join("filled");
    let table = ok(&[
        "fill",
        "--have",
        s(&have),
        "--by",
        "smile,male",
        "--out",
        s(&out),
        "--seed",
        "2",
    ]);
    assert!(
        table.contains("1 rows with a --by attribute missing"),
        "{table}"
    );
    // 0 + 2 + 5 + 3 faces, each cell's requests what it lacks.
    let meta = std::fs::read_to_string(out.join("metadata.jsonl")).expect("metadata");
    let rows: Vec<serde_json::Value> = meta
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 10);
    let faces = |dir: &Path| {
        pngs(dir)
            .iter()
            .filter(|p| !p.ends_with("fill-report.png"))
            .count()
    };
    assert_eq!(faces(&out), 10);
    assert!(out.join("fill-report.png").is_file(), "the bar chart");
    // Each face asks for its cell at the plugin's calibrated ends (plugen
    // calibrate; male's "off" is its nearest value, not reached).
    let (smile_ends, male_ends) = (calibrated_ends("smile"), calibrated_ends("male"));
    let count = |smile: f64, male: f64| {
        let smile = if smile > 0.0 {
            smile_ends.1
        } else {
            smile_ends.0
        };
        let male = if male > 0.0 { male_ends.1 } else { male_ends.0 };
        rows.iter()
            .filter(|r| r["smile"].as_f64() == Some(smile) && r["male"].as_f64() == Some(male))
            .count()
    };
    assert_eq!(
        [
            count(-1., -1.),
            count(-1., 1.),
            count(1., -1.),
            count(1., 1.)
        ],
        [0, 2, 5, 3]
    );
    for r in &rows {
        let file = r["file_name"].as_str().expect("file_name");
        assert!(out.join(file).is_file(), "{file}");
        assert!(r["yaw"].is_null(), "an attribute not asked for is null");
        let agree = r["readout_smile"].as_f64().expect("readout") * r["smile"].as_f64().expect("x");
        assert!(agree > 0.0, "readout in the requested cell: {r}");
    }
    // --total spends a budget evenly; the same seed gives the same bytes.
    let again = tmp.path().join("total");
    let table = ok(&[
        "fill",
        "--have",
        s(&have),
        "--by",
        "smile,male",
        "--out",
        s(&again),
        "--seed",
        "2",
        "--total",
        "7",
        "--verify",
        "off",
    ]);
    assert_eq!(faces(&again), 7, "{table}");
    // Bad inputs: one line naming the problem, nothing written.
    let bad = tmp.path().join("bad");
    let bad_table = tmp.path().join("bad.csv");
    std::fs::write(&bad_table, "smile,male\n1,maybe\n").expect("write");
    for (args, says) in [
        (
            vec!["--have", s(&have), "--by", "nosuch"],
            "unknown attribute",
        ),
        (vec!["--have", s(&have), "--by", "smile:4"], "binary"),
        (
            vec!["--have", s(&bad_table), "--by", "smile,male"],
            "\"maybe\" is not 0 or 1",
        ),
        (
            vec!["--have", "missing.csv", "--by", "smile"],
            "missing.csv",
        ),
    ] {
        let mut a = vec!["fill", "--out", s(&bad)];
        a.extend(args);
        let e = fails(&a);
        assert!(e.contains(says), "{e}");
        assert!(!bad.exists(), "nothing written for {a:?}");
    }
    // An existing run is not overwritten.
    let e = fails(&[
        "fill",
        "--have",
        s(&have),
        "--by",
        "smile",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("already holds a run"), "{e}");
}

/// `sample --balance A,B` cycles through the joint cells and writes metadata.jsonl.
#[test]
fn sample_balances_joint_cells() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("bal");
    ok(&[
        "sample",
        "-n",
        "8",
        "--balance",
        "smile,male",
        "--out",
        s(&out),
    ]);
    let meta = std::fs::read_to_string(out.join("metadata.jsonl")).expect("metadata");
    let cells: Vec<(f64, f64)> = meta
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["smile"].as_f64().expect("smile"),
                v["male"].as_f64().expect("male"),
            )
        })
        .collect();
    // A calibrated binary attribute is balanced at its calibrated ends.
    let ((off, on), (female, male)) = (calibrated_ends("smile"), calibrated_ends("male"));
    let one_round = [(off, female), (off, male), (on, female), (on, male)];
    assert_eq!(cells, [one_round, one_round].concat());
    let e = fails(&[
        "sample",
        "-n",
        "4",
        "--balance",
        "smile,smile",
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(e.contains("twice"), "{e}");
}

/// The (off, on) ends the default plugin's judge map stores for `attribute`.
fn calibrated_ends(attribute: &str) -> (f64, f64) {
    let plugin: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("models/dcgan-digiface64/plugin-v5.json").expect("plugin"),
    )
    .expect("json");
    let ends = &plugin["judges"][attribute]["calibrated"];
    (
        ends["off"].as_f64().expect("off"),
        ends["on"].as_f64().expect("on"),
    )
}

/// Every file of a folder, by name.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

/// Three shards of a run, merged, are the run computed in one piece, byte for
/// byte (sample and fill); merging refuses incomplete or foreign shards.
#[test]
fn shards_merge_into_the_same_bytes_as_one_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let have = tmp.path().join("have.csv");
    std::fs::write(&have, "smile,male\n0,0\n0,0\n0,0\n0,0\n0,0\n1,1\n0,1\n").expect("write");
    let commands: [(&str, Vec<&str>); 2] = [
        (
            "sample",
            vec!["-n", "70", "--seed", "4", "--balance", "smile,male"],
        ),
        (
            "fill",
            vec![
                "--have",
                s(&have),
                "--by",
                "smile,male",
                "--per-cell",
                "20",
                "--seed",
                "4",
            ],
        ),
    ];
    for (command, args) in commands {
        let run = |out: &Path, shard: Option<&str>| {
            let mut a = vec![command];
            a.extend(args.iter().copied());
            a.extend(["--out", s(out)]);
            if let Some(sh) = shard {
                a.extend(["--shard", sh]);
            }
            ok(&a);
        };
        let whole = tmp.path().join(format!("{command}-whole"));
        run(&whole, None);
        let shards: Vec<PathBuf> = (0..3)
            .map(|i| {
                let d = tmp.path().join(format!("{command}-shard{i}"));
                run(&d, Some(&format!("{i}/3")));
                d
            })
            .collect();
        let merged = tmp.path().join(format!("{command}-merged"));
        let mut a = vec!["merge", s(&merged)];
        a.extend(shards.iter().map(|d| s(d)));
        ok(&a);
        let (w, m) = (files(&whole), files(&merged));
        assert_eq!(
            w.keys().collect::<Vec<_>>(),
            m.keys().collect::<Vec<_>>(),
            "{command}: the same files"
        );
        for (name, bytes) in &w {
            assert!(m[name] == *bytes, "{command}: {name} differs");
        }
        // A missing shard, a shard twice, or an existing target are refused.
        if command == "sample" {
            let e = fails(&[
                "merge",
                s(&tmp.path().join("m2")),
                s(&shards[0]),
                s(&shards[1]),
            ]);
            assert!(e.contains("in none of the shards"), "{e}");
        }
        let e = fails(&[
            "merge",
            s(&tmp.path().join("m3")),
            s(&shards[0]),
            s(&shards[0]),
        ]);
        assert!(e.contains("is also in"), "{e}");
        let e = fails(&["merge", s(&merged), s(&shards[0])]);
        assert!(e.contains("already exists"), "{e}");
        assert!(!tmp.path().join("m2").exists() && !tmp.path().join("m3").exists());
    }
    let e = fails(&[
        "sample",
        "-n",
        "4",
        "--shard",
        "3/3",
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(e.contains("--shard 3/3"), "{e}");
    // Shards of different runs do not mix.
    let other = tmp.path().join("other");
    ok(&[
        "sample",
        "-n",
        "70",
        "--seed",
        "5",
        "--balance",
        "smile,male",
        "--out",
        s(&other),
        "--shard",
        "1/3",
    ]);
    let e = fails(&[
        "merge",
        s(&tmp.path().join("m4")),
        s(&tmp.path().join("sample-shard0")),
        s(&other),
    ]);
    assert!(e.contains("not a shard of the same run"), "{e}");
}

#[test]
fn sweep_writes_a_grid_and_an_animation_of_the_same_edits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let latent = Path::new("models/dcgan-digiface64/plugin.latents.npy");
    let grid = tmp.path().join("smile.png");
    let out = ok(&[
        "sweep",
        "--latent",
        s(latent),
        "--index",
        "5",
        "--attribute",
        "smile",
        "--steps",
        "5",
        "--scale",
        "1",
        "--out",
        s(&grid),
    ]);
    assert!(out.contains("smile: -2.000 to 2.000 in 5 steps"), "{out}");
    let g = image::open(&grid).expect("grid").to_rgb8();
    assert_eq!(g.dimensions(), (5 * 64 + 6 * 2, 64 + 2 * 2));
    // Each cell is the face `plugen edit --set smile=V` gives.
    for (col, v) in [(0u32, "-2"), (3, "1"), (4, "2")] {
        let one = tmp.path().join(format!("edit{col}.png"));
        ok(&[
            "edit",
            "--latent",
            s(latent),
            "--index",
            "5",
            "--set",
            &format!("smile={v}"),
            "--out",
            s(&one),
        ]);
        let want = image::open(&one).expect("edit").to_rgb8();
        let cell = image::imageops::crop_imm(&g, 2 + col * 66, 2, 64, 64).to_image();
        assert!(cell == want, "cell {col} differs from edit --set smile={v}");
    }
    // --all as a GIF: one frame per step there and back, one face per attribute stacked.
    let gif = tmp.path().join("all.gif");
    let out = ok(&[
        "sweep",
        "--latent",
        s(latent),
        "--all",
        "--steps",
        "4",
        "--scale",
        "1",
        "--out",
        s(&gif),
    ]);
    // Continuous attributes sweep their label range, from the default plugin's manifest.
    let newest = plugen_core::model::versions::latest(Path::new("models/dcgan-digiface64"))
        .expect("a plugin");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).expect("plugin")).expect("json");
    let attributes = manifest["attributes"].as_array().expect("attributes");
    let yaw = attributes.iter().find(|a| a["name"] == "yaw").expect("yaw");
    let (lo, hi) = (
        yaw["label_min"].as_f64().expect("min"),
        yaw["label_max"].as_f64().expect("max"),
    );
    assert!(
        out.contains(&format!("yaw: {lo:.3} to {hi:.3} in 4 steps")),
        "{out}"
    );
    use image::AnimationDecoder;
    let file = std::fs::File::open(&gif).expect("gif");
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(file))
        .expect("a GIF")
        .into_frames()
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 4 + 2);
    assert_eq!(
        frames[0].buffer().dimensions(),
        (64 + 4, attributes.len() as u32 * 66 + 2)
    );
    assert!(frames[0].buffer() != frames[3].buffer());
}

#[test]
fn sweep_refuses_bad_requests_with_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let latent = "models/dcgan-digiface64/plugin.latents.npy";
    let out = tmp.path().join("sweep.png");
    let base = ["sweep", "--latent", latent, "--attribute", "smile", "--out"];
    let run = |extra: &[&str], out: &Path| {
        let mut args: Vec<&str> = base.to_vec();
        args.push(s(out));
        args.extend(extra);
        fails(&args)
    };
    assert!(run(&[], &tmp.path().join("sweep.jpg")).contains("sweep.jpg"));
    assert!(run(&["--steps", "1"], &out).contains("steps"));
    assert!(run(&["--from", "-9"], &out).contains("out of range"));
    let e = fails(&[
        "sweep",
        "--latent",
        latent,
        "--attribute",
        "smirk",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("smirk"), "{e}");
    let missing = tmp.path().join("nope.npy");
    let e = fails(&[
        "sweep",
        "--latent",
        s(&missing),
        "--attribute",
        "smile",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("nope.npy"), "{e}");
    let e = fails(&[
        "sweep",
        "--latent",
        latent,
        "--index",
        "99999",
        "--all",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("--index 99999"), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).expect("dir").count(), 0);
    // An existing file is kept unless --overwrite.
    std::fs::write(&out, b"mine").expect("write");
    assert!(run(&[], &out).contains("exists"));
    assert_eq!(std::fs::read(&out).expect("kept"), b"mine");
    ok(&[
        "sweep",
        "--latent",
        latent,
        "--attribute",
        "smile",
        "--out",
        s(&out),
        "--overwrite",
    ]);
    assert!(image::open(&out).is_ok());
}

#[test]
fn project_writes_editable_reconstructions_and_reports_each_bad_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    let faces = tmp.path().join("faces");
    ok(&["sample", "-n", "1", "--seed", "9090", "--out", s(&faces)]);
    let face = faces.join("000000.png");
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    let broken = bad.join("broken.png");
    std::fs::write(&broken, b"\x89PNG but not really").expect("write");
    let tiny = bad.join("tiny.png");
    image::RgbImage::new(8, 8).save(&tiny).expect("tiny");
    let missing = bad.join("missing.jpg");
    let out = tmp.path().join("out");
    let run = plugen(&[
        "project",
        s(&broken),
        s(&face),
        s(&tiny),
        s(&missing),
        "--out",
        s(&out),
    ]);
    assert!(
        !run.status.success(),
        "bad images make the run fail at the end"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("plugen: error: "))
        .collect();
    assert_eq!(
        errors.len(),
        4,
        "one line per bad image and a summary: {stderr}"
    );
    assert!(errors[0].contains("broken.png"), "{stderr}");
    assert!(
        errors[1].contains("tiny.png") && errors[1].contains("too small"),
        "{stderr}"
    );
    assert!(errors[2].contains("missing.jpg"), "{stderr}");
    assert!(errors[3].contains("3 of 4"), "{stderr}");
    // The good image in the middle was projected all the same.
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("000000.png") && stdout.contains("MSE"),
        "{stdout}"
    );
    let written: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written.len(), 2, "only the good image's files: {written:?}");
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("000000.json")).expect("sidecar"))
            .expect("json");
    let mse = side["projection_mse"].as_f64().expect("mse");
    assert!(
        mse < 0.03,
        "a generated face reconstructs closely: MSE {mse}"
    );
    assert_eq!(side["latent"].as_array().expect("latent").len(), 100);
    assert!(
        side["projected_from"]
            .as_str()
            .expect("source")
            .ends_with("000000.png")
    );
    // The sidecar opens as an editable face: edit renders the same reconstruction.
    let again = tmp.path().join("again.png");
    ok(&[
        "edit",
        "--latent",
        s(&out.join("000000.json")),
        "--out",
        s(&again),
    ]);
    assert_eq!(
        std::fs::read(&again).expect("again"),
        std::fs::read(out.join("000000.png")).expect("reconstruction")
    );
    // Existing files are kept unless --overwrite.
    let before = std::fs::read(out.join("000000.json")).expect("sidecar");
    let run = plugen(&["project", s(&face), "--out", s(&out)]);
    let e = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && e.contains("exists") && e.contains("1 of 1"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(out.join("000000.json")).expect("kept"),
        before
    );
}

#[test]
fn a_broken_encoder_is_named_and_does_not_stop_sampling() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).expect("mkdir");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/dcgan-digiface64");
    for f in [
        "manifest.json",
        "generator.safetensors",
        "encoder.json",
        "encoder.safetensors",
    ] {
        std::fs::copy(bundled.join(f), model.join(f)).expect("copy");
    }
    let mut weights = std::fs::read(model.join("encoder.safetensors")).expect("weights");
    let n = weights.len();
    weights[n - 10] ^= 0xff;
    std::fs::write(model.join("encoder.safetensors"), weights).expect("write");
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/photos/astronaut_face.png");
    let out = tmp.path().join("out");
    let run = plugen(&["project", s(&photo), "--model", s(&model), "--out", s(&out)]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("encoder.safetensors") && stderr.contains("sha256"),
        "{stderr}"
    );
    // Sampling does not need the encoder.
    ok(&[
        "sample",
        "-n",
        "1",
        "--model",
        s(&model),
        "--out",
        s(&tmp.path().join("s")),
    ]);
}

#[test]
fn train_encoder_writes_an_encoder_that_projection_uses() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).expect("mkdir");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/dcgan-digiface64");
    for f in ["manifest.json", "generator.safetensors"] {
        std::fs::copy(bundled.join(f), model.join(f)).expect("copy");
    }
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/photos/astronaut_face.png");
    // Without an encoder, projection says so and runs the long way.
    let run = plugen(&[
        "project",
        s(&photo),
        "--model",
        s(&model),
        "--steps",
        "2",
        "--out",
        s(&tmp.path().join("a")),
    ]);
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("has no encoder"));
    let out = ok(&[
        "train-encoder",
        "--model",
        s(&model),
        "--steps",
        "3",
        "--batch",
        "4",
    ]);
    assert!(out.contains("held-out latent MSE"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("encoder.json")).expect("json"))
            .expect("manifest");
    assert_eq!(manifest["training"]["steps"], 3);
    // Never replaced silently.
    let weights = std::fs::read(model.join("encoder.safetensors")).expect("weights");
    let e = fails(&[
        "train-encoder",
        "--model",
        s(&model),
        "--steps",
        "3",
        "--batch",
        "4",
    ]);
    assert!(e.contains("encoder.json") && e.contains("exists"), "{e}");
    assert_eq!(
        std::fs::read(model.join("encoder.safetensors")).expect("kept"),
        weights
    );
    // Projection now starts from it, quietly.
    let run = plugen(&[
        "project",
        s(&photo),
        "--model",
        s(&model),
        "--steps",
        "2",
        "--out",
        s(&tmp.path().join("b")),
    ]);
    assert!(run.status.success());
    assert!(!String::from_utf8_lossy(&run.stderr).contains("has no encoder"));
}

#[test]
fn a_plugin_trained_on_seeded_samples_records_the_seed_and_extends() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("run");
    ok(&[
        "sample",
        "--no-plugin",
        "-n",
        "800",
        "--seed",
        "44",
        "--out",
        s(&run),
    ]);
    // Labels of the sampled faces, in manifest order (from their latents).
    let manifest = std::fs::read_to_string(run.join("manifest.jsonl")).expect("manifest");
    let mut rows: Vec<(u64, bool)> = manifest
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let index = v["index"].as_u64().expect("index");
            (index, v["latent"][10].as_f64().expect("z") > 0.0)
        })
        .collect();
    rows.sort();
    let mut csv = String::from("lefty\n");
    for (_, y) in &rows {
        csv.push_str(&format!("{}\n", u8::from(*y)));
    }
    let lab = tmp.path().join("labels.csv");
    std::fs::write(&lab, csv).expect("csv");
    let dir = tmp.path().join("plugin");
    let out = ok(&[
        "train",
        "--latents-seed",
        "44",
        "--labels",
        s(&lab),
        "--out",
        s(&dir.join("plugin.json")),
        "--epochs",
        "15",
        "--hidden",
        "64",
    ]);
    assert!(out.contains("trained on 720 rows"), "{out}");
    // The seed, not 800 latents, is what the plugin keeps.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("plugin.json")).expect("json"))
            .expect("plugin.json");
    let data = &json["training"]["data"][0];
    assert_eq!(data["latents_seed"], 44, "{data}");
    assert!(data.get("latents").is_none(), "{data}");
    assert!(!dir.join("plugin.latents.npy").exists());
    assert!(dir.join("plugin.labels.csv").exists());
    // The seed regenerated the very faces that were labelled: the labels are
    // learnable from those latents (random pairings would score about 0.5).
    let accuracy: f32 = out
        .lines()
        .find(|l| l.contains("lefty"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("held-out accuracy line");
    assert!(accuracy >= 0.75, "{out}");
    // Extending regenerates the seeded rows and adds new ones.
    let (lat2, lab2) = write_training_set(tmp.path(), 200);
    let out = ok(&[
        "train",
        "--extend",
        s(&dir.join("plugin.json")),
        "--latents",
        s(&lat2),
        "--labels",
        s(&lab2),
        "--epochs",
        "1",
    ]);
    assert!(out.contains("trained on"), "{out}");
    let v2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("plugin-v2.json")).expect("v2"))
            .expect("plugin-v2.json");
    assert_eq!(v2["training"]["data"][0]["latents_seed"], 44);
    assert_eq!(
        v2["training"]["data"][1]["latents"],
        "plugin-v2.latents.npy"
    );
    // A seed with a latents file too is refused, naming the file.
    let mut bad = json.clone();
    bad["training"]["data"][0]["latents"] = "plugin.labels.csv".into();
    let bad_path = dir.join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).expect("json")).expect("write");
    let err = fails(&[
        "readout",
        "--plugin",
        s(&bad_path),
        "--latent",
        s(&run.join("manifest.jsonl")),
    ]);
    assert!(
        err.contains("bad.json") && err.contains("latents_seed"),
        "{err}"
    );
}

#[test]
fn edit_mode_minimal_reaches_the_readout_keeps_the_others_and_moves_less() {
    let tmp = tempfile::tempdir().expect("tmp");
    let latent = "models/dcgan-digiface64/plugin.latents.npy";
    let read = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("sidecar")).expect("json")
    };
    let before = tmp.path().join("before.png");
    ok(&[
        "edit",
        "--latent",
        latent,
        "--index",
        "4",
        "--out",
        s(&before),
    ]);
    let mut moved = Vec::new();
    for mode in ["flow", "minimal"] {
        let png = tmp.path().join(format!("{mode}.png"));
        ok(&[
            "edit",
            "--latent",
            latent,
            "--index",
            "4",
            "--set",
            "smile=2",
            "--mode",
            mode,
            "--out",
            s(&png),
        ]);
        let side = read(&png.with_extension("json"));
        let orig = read(&before.with_extension("json"));
        let readout = side["readout"].as_object().expect("readout");
        for (name, v) in readout {
            let v = v.as_f64().expect("number");
            let want = if name == "smile" {
                2.0
            } else {
                orig["readout"][name].as_f64().expect("number")
            };
            // Flow units for binary attributes; continuous ones are in label units.
            let scale = if name == "smile" {
                1.0
            } else {
                want.abs().max(1.0)
            };
            assert!(
                (v - want).abs() <= 0.05 * scale,
                "{mode}: {name} {v} vs {want}"
            );
        }
        let z: Vec<f64> = serde_json::from_value(side["latent"].clone()).expect("latent");
        let z0: Vec<f64> = serde_json::from_value(orig["latent"].clone()).expect("latent");
        moved.push(
            z.iter()
                .zip(&z0)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt(),
        );
    }
    assert!(
        moved[1] < moved[0],
        "minimal moved {} vs flow {}",
        moved[1],
        moved[0]
    );
    // An unknown mode is refused by the argument parser, naming it.
    let out = plugen(&[
        "edit", "--latent", latent, "--set", "smile=1", "--mode", "nearest", "--out", "x.png",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nearest"));
}

/// `plugen judge`: one CSV row per image, judge_ columns added to a run's
/// metadata.jsonl (replaced, not repeated, on a second run); a bad image is
/// named and the others are still judged; a missing judges folder is named.
#[test]
fn judge_reads_images_and_run_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("smiling");
    ok(&[
        "sample",
        "-n",
        "6",
        "--seed",
        "4",
        "--set",
        "smile=2",
        "--out",
        s(&run),
    ]);
    let csv = ok(&["judge", s(&run)]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header[0], "file");
    assert!(header.contains(&"judge_happy") && header.contains(&"judge_male"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 6, "{csv}");
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let happy: Vec<f64> = rows
        .iter()
        .map(|r| r[col("judge_happy")].parse().expect("a number"))
        .collect();
    assert!(
        happy.iter().filter(|&&h| h >= 0.5).count() >= 5,
        "smile=2 reads happy: {happy:?}"
    );
    let meta = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("metadata.jsonl"))
            .expect("metadata")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let first = meta();
    for (m, h) in first.iter().zip(&happy) {
        let v = m["judge_happy"].as_f64().expect("judge_happy");
        assert!((v - h).abs() < 1e-5, "{v} vs {h}");
        assert!(m["readout_smile"].is_number(), "the other columns stay");
    }
    ok(&["judge", s(&run)]);
    assert_eq!(meta(), first, "judging again replaces the columns");
    // A bad image among good ones.
    let junk = tmp.path().join("junk.png");
    std::fs::write(&junk, b"not a png").expect("write");
    let good = run.join("000000.png");
    let out = plugen(&["judge", s(&good), s(&junk)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("junk.png"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        2,
        "header + the good image: {stdout}"
    );
    // No judges.
    let e = fails(&["judge", s(&good), "--judges", s(&tmp.path().join("none"))]);
    assert!(e.contains("judges.json"), "{e}");
}

/// A judge-verified fill: every written face of the rare cell is read by the
/// judges as asked (happy >= 0.5, male below 0.5), metadata.jsonl has
/// the judge columns; `--verify judge` with a plugin without a judge map says so.
#[test]
fn fill_verified_by_the_judges_holds_what_it_claims() {
    let tmp = tempfile::tempdir().expect("tmp");
    let have = tmp.path().join("have.csv");
    let mut table = String::from("file_name,smile,male\n");
    for (cell, n) in [("1,0", 2), ("0,0", 10), ("1,1", 10), ("0,1", 10)] {
        for i in 0..n {
            table += &format!("f{}-{i}.png,{cell}\n", cell.replace(',', "_"));
        }
    }
    std::fs::write(&have, table).expect("write");
    let out = tmp.path().join("fill");
    let report = ok(&[
        "fill",
        "--have",
        s(&have),
        "--by",
        "smile,male",
        "--out",
        s(&out),
        "--seed",
        "3",
    ]);
    assert!(report.contains("checked by the judges"), "{report}");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metadata.jsonl"))
        .expect("metadata")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 8, "{report}");
    for r in &rows {
        assert!(r["judge_happy"].as_f64().expect("judged") >= 0.5, "{r}");
        assert!(r["judge_male"].as_f64().expect("judged") < 0.5, "{r}");
    }
    // A plugin without a judge map.
    let bare = bare_plugin(tmp.path());
    let never = tmp.path().join("never");
    let bare_json = bare.join("plugin.json");
    let asks: [&[&str]; 2] = [
        &["fill", "--have", s(&have), "--by", "smile,male"],
        &["sample", "--set", "smile=1"],
    ];
    for ask in asks {
        let mut a = ask.to_vec();
        a.extend([
            "--out",
            s(&never),
            "--plugin",
            s(&bare_json),
            "--verify",
            "judge",
        ]);
        let e = fails(&a);
        assert!(e.contains("no judge map"), "{e}");
        assert!(!never.exists());
    }
}

/// `sample --set` checked by the judges: every image written shows what was
/// asked by the judges (smiling, male below 0.5), metadata.jsonl has the
/// judge columns, the report names the redraws; a draw that passed first time
/// is the unverified run's image byte for byte, a redrawn one is a new face.
#[test]
fn sample_verified_by_the_judges_shows_what_was_asked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |verify: &str| {
        let out = tmp.path().join(verify);
        let report = ok(&[
            "sample",
            "-n",
            "24",
            "--seed",
            "11",
            "--set",
            "smile=on",
            "--set",
            "male=-1",
            "--verify",
            verify,
            "--out",
            s(&out),
        ]);
        (out, report)
    };
    let (judged, report) = run("auto");
    assert!(report.contains("checked by the judges"), "{report}");
    assert!(report.contains("redraws"), "{report}");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(judged.join("metadata.jsonl"))
        .expect("metadata")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 24, "{report}");
    for r in &rows {
        assert!(r["judge_happy"].as_f64().expect("judged") >= 0.5, "{r}");
        assert!(r["judge_male"].as_f64().expect("judged") < 0.5, "{r}");
    }
    let (plain, _) = run("off");
    let plain_meta = std::fs::read_to_string(plain.join("metadata.jsonl")).expect("metadata");
    assert!(!plain_meta.contains("judge_"), "no judges without a check");
    let (mut same, mut redrawn) = (0, 0);
    for p in pngs(&judged) {
        let name = p.file_name().expect("name");
        let a = std::fs::read(&p).expect("png");
        let b = std::fs::read(plain.join(name)).expect("png");
        if a == b { same += 1 } else { redrawn += 1 }
    }
    assert!(
        same > 0 && redrawn > 0,
        "{same} first draws kept, {redrawn} redrawn"
    );
}

/// `--set NAME=on|off` takes the calibrated ends; an attribute without them
/// is named. `plugen calibrate` on too few faces cannot claim an end with
/// confidence, says so, and a plugin copy keeps no stale calibration.
#[test]
fn calibrated_ends_are_used_and_measured() {
    let tmp = tempfile::tempdir().expect("tmp");
    let plugin: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("models/dcgan-digiface64/plugin-v5.json").expect("plugin"),
    )
    .expect("json");
    let on = plugin["judges"]["smile"]["calibrated"]["on"]
        .as_f64()
        .expect("calibrated");
    let out = tmp.path().join("on");
    ok(&["sample", "-n", "2", "--set", "smile=on", "--out", s(&out)]);
    let line = std::fs::read_to_string(out.join("manifest.jsonl")).expect("manifest");
    let first: serde_json::Value =
        serde_json::from_str(line.lines().next().expect("a line")).expect("json");
    assert_eq!(first["requested"]["smile"].as_f64(), Some(on));
    let e = fails(&[
        "sample",
        "-n",
        "1",
        "--set",
        "glasses=on",
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(e.contains("glasses has no calibrated ends"), "{e}");
    // Calibrating a copy on 4 faces: no end is certain with so few.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).expect("mkdir");
    let model = Path::new("models/dcgan-digiface64");
    std::fs::copy(model.join("plugin-v5.json"), copy.join("plugin.json")).expect("copy");
    std::fs::copy(
        model.join("plugin-v5.safetensors"),
        copy.join("plugin-v5.safetensors"),
    )
    .expect("copy");
    let report = ok(&[
        "calibrate",
        "--plugin",
        s(&copy.join("plugin.json")),
        "--faces",
        "4",
        "--attribute",
        "smile",
    ]);
    assert!(report.contains("smile: not calibrated"), "{report}");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("plugin.json")).expect("plugin"))
            .expect("json");
    assert!(
        stored["judges"]["smile"]["calibrated"].is_null(),
        "{stored}"
    );
    assert_eq!(
        stored["attributes"], plugin["attributes"],
        "the rest is kept"
    );
}

/// `plugen eval`: the report card on a few faces. The judged binary
/// attributes' rates rise with the value asked, the calibrated "on" end of
/// smile is judged smiling more often than its "off" end, the continuous
/// background correlates with what was asked; eval.md and eval.png are
/// written; a missing judges folder is named.
#[test]
fn eval_reports_what_the_judges_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("eval");
    let md = ok(&["eval", "--faces", "32", "--seed", "2", "--out", s(&out)]);
    let rate = |row: &str, column: usize| -> f64 {
        let line = md
            .lines()
            .find(|l| l.contains(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("no {row} row in {md}"));
        let cell = line.split('|').nth(column).expect("column").trim();
        cell.split(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect(cell)
    };
    // Columns: | # | attribute | judge | −2 | −1 | +1 | +2 | off | on |
    for row in ["smile", "male"] {
        assert!(rate(row, 7) > rate(row, 4) + 50.0, "{row}: {md}");
    }
    assert!(rate("smile", 9) > rate("smile", 8) + 50.0, "{md}");
    let rho = rate("background", 3);
    assert!(rho > 0.5, "{md}");
    assert!(md.contains("Unjudged") && md.contains("glasses"), "{md}");
    assert!(md.contains("ratio"), "{md}");
    let written = std::fs::read_to_string(out.join("eval.md")).expect("eval.md");
    assert!(md.starts_with(&written), "the file is the report");
    let chart = image::open(out.join("eval.png"))
        .expect("eval.png")
        .to_rgb8();
    assert!(chart.width() > 100 && chart.height() > 100);
    let e = fails(&[
        "eval",
        "--faces",
        "4",
        "--judges",
        s(&tmp.path().join("none")),
    ]);
    assert!(e.contains("judges.json"), "{e}");
}

/// `n` latents of width 100 from N(0, I) (seed `seed`), written to
/// `dir/z.npy`: the file and the numbers.
fn random_latents(dir: &Path, seed: u64, n: usize) -> (PathBuf, Vec<f32>) {
    let z = dir.join("z.npy");
    let start = SeededRng::new(seed, 0).normal_vec(n * 100);
    std::fs::write(&z, npy::encode(&[n, 100], &start)).expect("write");
    (z, start)
}

/// The rows of a run folder's manifest.jsonl.
fn manifest_rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("manifest.jsonl"))
        .expect("manifest")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// `plugen judge DIR` by column: judge_NAME → one value per face in file
/// order (None where the judges took no reading).
fn judge_columns(dir: &Path) -> std::collections::HashMap<String, Vec<Option<f64>>> {
    let csv = ok(&["judge", s(dir)]);
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(String::from)
        .collect();
    let rows: Vec<Vec<Option<f64>>> = lines
        .map(|l| l.split(',').map(|v| v.parse().ok()).collect())
        .collect();
    header
        .iter()
        .enumerate()
        .map(|(c, h)| (h.clone(), rows.iter().map(|r| r[c]).collect()))
        .collect()
}

/// `edit --until-judged` stops each face's smile edit at the weakest strength
/// the judges agree with: where it stopped short of the value asked, the
/// judges read a smile; on average it moves the latent less than the plain
/// edit to the value asked. It needs a flow edit and a plugin with a judge map.
#[test]
fn edit_until_judged_stops_where_the_judges_agree() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (z, start) = random_latents(tmp.path(), 31, 12);
    let (judged, plain) = (tmp.path().join("j"), tmp.path().join("p"));
    let common = ["edit", "--all", "--latent", s(&z), "--set", "smile=3"];
    ok(&[&common[..], &["--until-judged", "--out", s(&judged)]].concat());
    ok(&[&common[..], &["--out", s(&plain)]].concat());
    let moved = |r: &serde_json::Value, i: usize| -> f64 {
        (0..100)
            .map(|j| (r["latent"][j].as_f64().expect("latent") - start[i * 100 + j] as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (j, p) = (manifest_rows(&judged), manifest_rows(&plain));
    let readings: Vec<f64> = judge_columns(&judged)["judge_happy"]
        .iter()
        .map(|v| v.expect("number"))
        .collect();
    let (mut short, mut total_j, mut total_p) = (0, 0.0, 0.0);
    for i in 0..12 {
        let used = j[i]["requested"]["smile"].as_f64().expect("requested");
        assert!((1.0..=3.0).contains(&used), "{used}");
        if used < 3.0 {
            short += 1;
            assert!(
                readings[i] >= 0.5,
                "face {i} stopped at {used}, happy {}",
                readings[i]
            );
        }
        assert_eq!(p[i]["requested"]["smile"].as_f64(), Some(3.0));
        total_j += moved(&j[i], i);
        total_p += moved(&p[i], i);
    }
    assert!(short >= 6, "only {short} of 12 stopped before +3");
    assert!(total_j < total_p, "{total_j} vs {total_p}");
    // Bad combinations, one line each.
    let e = fails(
        &[
            &common[..],
            &[
                "--until-judged",
                "--mode",
                "minimal",
                "--out",
                s(&tmp.path().join("m")),
            ],
        ]
        .concat(),
    );
    assert!(e.contains("--until-judged stops flow edits"), "{e}");
    let bare = bare_plugin(tmp.path());
    let e = fails(
        &[
            &common[..],
            &[
                "--plugin",
                s(&bare),
                "--until-judged",
                "--out",
                s(&tmp.path().join("b")),
            ],
        ]
        .concat(),
    );
    assert!(e.contains("no judge map"), "{e}");
}

/// An `--until-judged` smile edit keeps what was not asked: where the judges
/// read male and lips apart on the original face, they read the same side
/// on the edit (pushed back where the smile alone would carry them over),
/// and the pushed attributes are written into `requested`.
#[test]
fn edit_until_judged_keeps_the_attributes_not_asked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (z, _) = random_latents(tmp.path(), 32, 16);
    let (judged, original) = (tmp.path().join("j"), tmp.path().join("o"));
    let common = ["edit", "--all", "--latent", s(&z)];
    ok(&[
        &common[..],
        &["--set", "smile=3", "--until-judged", "--out", s(&judged)],
    ]
    .concat());
    ok(&[&common[..], &["--out", s(&original)]].concat());
    let (before, after) = (judge_columns(&original), judge_columns(&judged));
    let rows = manifest_rows(&judged);
    let (mut kept, mut counted) = (0, 0);
    for (attr, column, threshold) in [
        ("male", "judge_male", 0.5),
        ("mouth_open", "judge_mouth", 0.09),
    ] {
        for i in 0..16 {
            let (Some(b), Some(a)) = (before[column][i], after[column][i]) else {
                continue;
            };
            counted += 1;
            let same = (b >= threshold) == (a >= threshold);
            kept += same as usize;
            if rows[i]["requested"].get(attr).is_some() {
                assert!(
                    same,
                    "face {i}: {attr} was pushed back yet changed side ({b} -> {a})"
                );
            }
        }
    }
    assert!(counted >= 20, "only {counted} readings");
    assert!(kept * 10 >= counted * 9, "kept {kept} of {counted}");
    let happy = &after["judge_happy"];
    let smiling = happy.iter().filter(|h| h.is_some_and(|h| h >= 0.5)).count();
    assert!(smiling >= 14, "{smiling} of 16 read smiling");
}

/// `--until-judged` on a pose edit steers it until the face mesh reads the
/// angle asked: the plain flow edit of yaw = +25° lands within 5° on about
/// 4 faces in 10; steered, on nearly all, and the sidecar says what was set.
#[test]
fn edit_until_judged_steers_a_pose_edit_to_the_angle_asked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (z, _) = random_latents(tmp.path(), 41, 16);
    let (steered, plain) = (tmp.path().join("s"), tmp.path().join("p"));
    let common = ["edit", "--all", "--latent", s(&z), "--set", "yaw=25"];
    ok(&[&common[..], &["--until-judged", "--out", s(&steered)]].concat());
    ok(&[&common[..], &["--out", s(&plain)]].concat());
    let near = |dir: &Path| {
        let yaw = &judge_columns(dir)["judge_yaw"];
        let read: Vec<f64> = yaw.iter().flatten().copied().collect();
        let near = read.iter().filter(|y| (*y - 25.0).abs() <= 5.0).count();
        (near, read.len())
    };
    let ((s_near, s_read), (p_near, p_read)) = (near(&steered), near(&plain));
    assert!(
        s_read >= 14 && p_read >= 14,
        "read {s_read} and {p_read} of 16"
    );
    assert!(
        s_near * 10 >= s_read * 8,
        "steered: {s_near} of {s_read} within 5°"
    );
    assert!(s_near > p_near, "steered {s_near} against plain {p_near}");
    let set: Vec<f64> = manifest_rows(&steered)
        .iter()
        .map(|r| r["requested"]["yaw"].as_f64().expect("requested yaw"))
        .collect();
    assert!(
        set.iter().any(|v| (v - 25.0).abs() > 1.0),
        "no face was steered: {set:?}"
    );
}

/// `sample --set yaw=25` steers each face to the angle asked: unchecked, the
/// flow's yaw lands within 5° on about 4 faces in 10; judged, every face
/// written is read within 5° (5 % of the labels' range) by the face mesh, and
/// `metadata.jsonl` keeps the value asked beside the value read.
#[test]
fn sample_steers_a_judged_pose_to_the_angle_asked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (judged, plain) = (tmp.path().join("j"), tmp.path().join("p"));
    let common = ["sample", "-n", "16", "--seed", "43", "--set", "yaw=25"];
    let table = ok(&[&common[..], &["--out", s(&judged)]].concat());
    // The report names the rule of what was asked, and nothing else.
    assert!(
        table
            .lines()
            .any(|l| l == "checked by the judges: yaw ← yaw"),
        "{table}"
    );
    ok(&[&common[..], &["--verify", "off", "--out", s(&plain)]].concat());
    // Steered, most first draws reach the angle: redrawing alone (about 4
    // draws in 10 within 5°) would take some 20 redraws for 16 faces.
    let redraws: usize = table
        .lines()
        .find_map(|l| l.strip_prefix("yaw=25.00"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no redraw count in {table}"));
    assert!(redraws <= 8, "{redraws} redraws for 16 faces: {table}");
    let near = |dir: &Path| {
        let yaw = &judge_columns(dir)["judge_yaw"];
        let read = yaw.iter().flatten().filter(|y| (*y - 25.0).abs() <= 5.0);
        (read.count(), yaw.len())
    };
    let ((j_near, j_all), (p_near, p_all)) = (near(&judged), near(&plain));
    assert_eq!(p_all, 16);
    assert!(j_all >= 14, "judged: {j_all} of 16 written");
    assert_eq!(j_near, j_all, "judged: {j_near} of {j_all} within 5°");
    assert!(
        p_near * 10 <= p_all * 7,
        "unchecked: {p_near} of 16 within 5°"
    );
    let meta = std::fs::read_to_string(judged.join("metadata.jsonl")).expect("metadata");
    for line in meta.lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("json");
        let asked = row["yaw"].as_f64().expect("yaw");
        assert!((asked - 25.0).abs() < 1e-3, "{row}");
        let read = row["judge_yaw"].as_f64().expect("judge_yaw");
        assert!((read - 25.0).abs() <= 5.0, "{row}");
    }
}

/// `--set mouth_open=on` is verified by the face mesh: every face written has
/// its lips apart by at least the threshold, read on a frontal face (a face
/// the mesh cannot read is redrawn, never taken on the plugin's word).
#[test]
fn mouth_open_is_verified_by_the_face_mesh() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("open");
    ok(&[
        "sample",
        "-n",
        "6",
        "--seed",
        "4",
        "--set",
        "mouth_open=on",
        "--out",
        s(&out),
    ]);
    let meta = std::fs::read_to_string(out.join("metadata.jsonl")).expect("metadata");
    let rows: Vec<serde_json::Value> = meta
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(!rows.is_empty());
    for r in &rows {
        let mouth = r["judge_mouth"].as_f64().unwrap_or(f64::NAN);
        assert!(mouth >= 0.09, "lips apart {mouth}: {r}");
        assert!(r["judge_face_score"].as_f64().expect("score") > 0.0, "{r}");
        assert!(r["judge_yaw"].as_f64().expect("yaw").abs() < 25.0, "{r}");
    }
}
