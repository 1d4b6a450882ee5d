//! Every plugin version shipped in the default bundle loads, and the training
//! data each one names reads back: v3's 100 000 rows are regenerated from a seed,
//! and their first 20 000 are exactly the latents v1 stored as a file.

use candle_core::Device;
use plugen_core::io::latents;
use plugen_core::model::bundle::{Bundle, default_model_dir};
use plugen_core::model::plugin::Plugin;
use plugen_core::model::versions;

#[test]
fn every_bundled_version_loads_and_its_training_data_reads_back() -> plugen_core::Result<()> {
    let dir = default_model_dir();
    let bundle = Bundle::open(&dir)?;
    let sha = bundle.manifest().sha256.clone();
    let list = versions::list(&dir);
    assert!(list.len() >= 4, "{list:?}");
    assert_eq!(
        bundle.default_plugin(),
        versions::latest(&dir),
        "the default plugin is the newest version"
    );
    let mut rows = Vec::new();
    for (n, path) in &list {
        let plugin = Plugin::load(path, &sha, &Device::Cpu)?;
        let (l, t) = plugin.training_data()?;
        assert_eq!(l.count(), t.rows.len(), "v{n}");
        rows.push((*n, plugin, l, t));
    }
    let (_, v1, v1_latents, _) = rows.iter().find(|r| r.0 == 1).expect("v1");
    let (_, v3, v3_latents, v3_labels) = rows.iter().find(|r| r.0 == 3).expect("v3");
    assert!(v1.manifest().training.data[0].latents_seed.is_none());
    assert_eq!(v3.manifest().training.data[0].latents_seed, Some(2026));
    assert_eq!(v3_latents.count(), 100_000);
    assert_eq!(v3_labels.names.len(), 8);
    // v1's file holds seed 2026's first 20 000 faces, written through JSON text:
    // the regenerated latents agree to float rounding.
    let file = latents::read(&dir.join("plugin.latents.npy"), 100)?;
    assert_eq!(file.count(), 20_000);
    assert_eq!(v1_latents.count(), 20_000);
    let worst = file
        .data
        .iter()
        .zip(&v3_latents.data[..file.data.len()])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-6,
        "seed 2026 regenerates v1's latents to {worst}"
    );
    Ok(())
}
