//! Every loader, fed the bad-input corpus (tests/bad_inputs/, written by
//! tools/make_bad_inputs.py): each file gets an error that names it, quickly,
//! with no panic and no huge allocation.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugen_core::Device;
use plugen_core::io::fsutil::Overwrite;
use plugen_core::io::{labels, latents};
use plugen_core::jobs::projection;
use plugen_core::learn::labelling::LabelSession;
use plugen_core::model::bundle::{Bundle, default_model_dir};
use plugen_core::model::import;
use plugen_core::model::plugin::Plugin;

fn corpus(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/bad_inputs")
        .join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus folder {}", dir.display());
    v
}

/// Runs `load` on `path` and checks the error: present, naming `name`, fast.
fn refused<T>(
    path: &Path,
    name: &str,
    load: impl FnOnce(&Path) -> plugen_core::Result<T>,
) -> String {
    let t = Instant::now();
    let result = load(path);
    let took = t.elapsed();
    let Err(e) = result else {
        panic!("{} was accepted", path.display())
    };
    let msg = e.to_string();
    assert!(
        msg.contains(name),
        "error for {} does not name it: {msg}",
        path.display()
    );
    assert!(
        took < Duration::from_secs(1),
        "{} took {took:?}",
        path.display()
    );
    println!(
        "{:<40} {msg}",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    );
    msg
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

fn generator_sha() -> String {
    Bundle::open(&default_model_dir())
        .expect("bundle")
        .manifest()
        .sha256
        .clone()
}

#[test]
fn latent_loaders_refuse_the_corpus() {
    for p in corpus("latent") {
        refused(&p, &name_of(&p), |p| latents::read(p, 100));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let as_dir = dir.path().join("folder.npy");
    std::fs::create_dir(&as_dir).expect("mkdir");
    assert!(refused(&as_dir, "folder.npy", |p| latents::read(p, 100)).contains("directory"));
    refused(&dir.path().join("missing.npy"), "missing.npy", |p| {
        latents::read(p, 100)
    });
}

#[test]
fn label_loader_refuses_the_corpus() {
    for p in corpus("labels") {
        refused(&p, &name_of(&p), labels::read);
    }
}

#[test]
fn plugin_loader_refuses_the_corpus() {
    let sha = generator_sha();
    let tmp = tempfile::tempdir().expect("tmp");
    for dir in corpus("plugin") {
        // Make the plugins target the real generator, so each fails for its own flaw.
        let copy = tmp.path().join(name_of(&dir));
        std::fs::create_dir_all(&copy).expect("mkdir");
        for f in std::fs::read_dir(&dir).expect("dir") {
            let f = f.expect("entry").path();
            let bytes = std::fs::read(&f).expect("read");
            let text = String::from_utf8(bytes.clone())
                .map(|s| s.replace("GENERATOR", &sha).into_bytes())
                .unwrap_or(bytes);
            std::fs::write(copy.join(name_of(&f)), text).expect("write");
        }
        let msg = refused(&copy, "plugin", |p| Plugin::load(p, &sha, &Device::Cpu));
        match name_of(&dir).as_str() {
            "other_generator" => assert!(msg.contains("another generator"), "{msg}"),
            "missing_weights" => assert!(msg.contains("plugin.safetensors"), "{msg}"),
            "weights_escape" => assert!(msg.contains("file name next to plugin.json"), "{msg}"),
            "data_escape" => assert!(msg.contains("inside the plugin's folder"), "{msg}"),
            _ => {}
        }
    }
}

#[test]
fn label_session_loader_refuses_the_corpus() {
    for p in corpus("session") {
        refused(&p, &name_of(&p), LabelSession::read);
    }
}

#[test]
fn model_loader_refuses_the_corpus() {
    for dir in corpus("model") {
        refused(&dir, &name_of(&dir), |d| {
            Bundle::open(d).and_then(|b| b.load_generator(&Device::Cpu))
        });
    }
}

#[test]
fn image_loader_refuses_the_corpus() {
    for p in corpus("image") {
        refused(&p, &name_of(&p), |p| projection::load_target(p, 64));
    }
}

#[test]
fn checkpoint_importer_refuses_the_corpus_and_runs_no_code() {
    let marker = Path::new("/tmp/plugen-evil-ran");
    let _ = std::fs::remove_file(marker);
    let out = tempfile::tempdir().expect("tmp");
    for p in corpus("checkpoint") {
        for key in [None, Some("netG_state_dict")] {
            refused(&p, &name_of(&p), |p| {
                import::import_torch(p, key, &out.path().join("m"), "m", Overwrite::Never)
            });
        }
    }
    assert!(!marker.exists(), "a global in a checkpoint was executed");
    assert!(
        !out.path().join("m").join("manifest.json").exists(),
        "nothing may be written for a refused checkpoint"
    );
}

#[test]
fn every_loader_refuses_a_directory_and_a_missing_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("a_folder.png");
    std::fs::create_dir(&dir).expect("mkdir");
    let missing = tmp.path().join("not_there.png");
    let sha = generator_sha();
    for p in [&dir, &missing] {
        let name = name_of(p);
        refused(p, &name, |p| latents::read(p, 100));
        refused(p, &name, labels::read);
        refused(p, &name, LabelSession::read);
        refused(p, &name, |p| projection::load_target(p, 64));
        refused(p, &name, |p| Plugin::load(p, &sha, &Device::Cpu));
        refused(p, &name, Bundle::open);
        refused(p, &name, |p| {
            import::import_torch(p, None, &tmp.path().join("m"), "m", Overwrite::Never)
        });
    }
}
