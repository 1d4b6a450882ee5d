//! A model loaded from files handed over in memory (the web page's way:
//! fetched from beside the page, registered under the paths the loaders read)
//! is the model loaded from disk, and goes through the same checks.

use std::path::{Path, PathBuf};

use plugen_core::io::latents;
use plugen_core::io::preloaded;
use plugen_core::model::bundle::default_model_dir;
use plugen_core::{DeviceChoice, Model, PluginChoice};

/// The files a page serves for the default bundle (no training tables).
fn served_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["manifest.json", "generator.safetensors"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    let newest = plugen_core::model::versions::latest(dir).expect("a plugin version");
    files.push(newest.with_extension("safetensors"));
    files.push(newest);
    files
}

/// Registers the default bundle's served files under `root` (which is not on disk).
fn preload(root: &Path) -> PathBuf {
    let disk = default_model_dir();
    let dir = root.join("dcgan-digiface64");
    for f in served_files(&disk) {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        preloaded::insert(&dir.join(f.file_name().expect("a file name")), bytes);
    }
    assert!(!dir.exists(), "{} must not be on disk", dir.display());
    dir
}

#[test]
fn a_preloaded_bundle_is_the_bundle_on_disk() -> plugen_core::Result<()> {
    let dir = preload(Path::new("preloaded-test/ok"));
    let web = Model::load(Some(&dir), PluginChoice::BundleDefault, DeviceChoice::Cpu)?;
    let disk = Model::load(
        Some(&default_model_dir()),
        PluginChoice::BundleDefault,
        DeviceChoice::Cpu,
    )?;
    assert_eq!(web.generator_sha256(), disk.generator_sha256());
    let (wp, dp) = (web.require_plugin()?, disk.require_plugin()?);
    assert_eq!(wp.weights_sha256(), dp.weights_sha256());
    assert_eq!(wp.path().file_name(), dp.path().file_name());
    let z = latents::seeded(3, 4, web.latent_dim());
    assert_eq!(web.render(&z)?, disk.render(&z)?);
    assert_eq!(wp.readout(&z)?, dp.readout(&z)?);
    preloaded::remove_under(&dir);
    assert!(Model::load(Some(&dir), PluginChoice::BundleDefault, DeviceChoice::Cpu).is_err());
    Ok(())
}

#[test]
fn a_corrupted_preloaded_file_fails_its_checks_by_name() {
    let dir = preload(Path::new("preloaded-test/bad"));
    let weights = dir.join("generator.safetensors");
    let mut bytes = preloaded::read(&weights).expect("preloaded").to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    preloaded::insert(&weights, bytes);
    let Err(e) = Model::load(Some(&dir), PluginChoice::BundleDefault, DeviceChoice::Cpu) else {
        panic!("a generator with a flipped byte was accepted");
    };
    let msg = e.to_string();
    assert!(msg.contains("generator.safetensors"), "{msg}");
    assert!(msg.to_lowercase().contains("sha"), "{msg}");
    // A truncated plugin manifest: named, not a panic.
    let plugin = plugen_core::model::versions::latest(&dir).expect("a plugin version");
    preloaded::insert(
        &weights,
        std::fs::read(default_model_dir().join("generator.safetensors")).expect("generator"),
    );
    preloaded::insert(&plugin, b"{\"format\": \"plugen-plu".to_vec());
    let Err(e) = Model::load(Some(&dir), PluginChoice::BundleDefault, DeviceChoice::Cpu) else {
        panic!("a truncated plugin.json was accepted");
    };
    assert!(
        e.to_string()
            .contains(plugin.file_name().and_then(|n| n.to_str()).unwrap_or("?")),
        "{e}"
    );
}
