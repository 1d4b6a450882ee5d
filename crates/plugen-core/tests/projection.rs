//! Projecting an image into the latent space finds a latent whose face looks
//! like the image.

use plugen_core::bundle::{Bundle, default_model_dir};
use plugen_core::formats::latents::Latents;
use plugen_core::model::{Model, PluginChoice};
use plugen_core::projection::{self, ProjectionConfig};
use plugen_core::rng::SeededRng;

fn mse(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let n = a.as_raw().len() as f64;
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| ((x as f64 - y as f64) / 127.5).powi(2))
        .sum::<f64>()
        / n
}

#[test]
fn projection_reconstructs_a_generated_face() -> plugen_core::Result<()> {
    let model = Model::load(
        Some(&default_model_dir()),
        PluginChoice::None,
        plugen_core::device::DeviceChoice::Cpu,
    )?;
    let truth = Latents::new(100, SeededRng::new(8, 0).normal_vec(100))?;
    let target = model.render(&truth)?.remove(0);
    // Through a file, as a user would bring it.
    let dir =
        tempfile::tempdir().map_err(|e| plugen_core::Error::io(std::path::Path::new("tmp"), e))?;
    let path = dir.path().join("face.png");
    target
        .save(&path)
        .map_err(|e| plugen_core::Error::invalid(e.to_string()))?;
    let loaded = projection::load_target(&path, 64)?;
    assert_eq!(loaded.as_raw(), target.as_raw());
    let other = model
        .render(&Latents::new(100, SeededRng::new(9, 0).normal_vec(100))?)?
        .remove(0);
    let baseline = mse(&other, &target);
    let mut losses = Vec::new();
    let config = ProjectionConfig {
        steps: 150,
        ..Default::default()
    };
    let z = projection::project(model.generator(), &loaded, &config, &mut |_, l| {
        losses.push(l);
        true
    })?;
    let found = model.render(&Latents::new(100, z)?)?.remove(0);
    let err = mse(&found, &target);
    println!(
        "MSE: random face {baseline:.4}, projection {err:.4} (first step {:.4})",
        losses[0]
    );
    assert!(
        err < baseline / 4.0,
        "projection MSE {err} vs a random face's {baseline}"
    );
    assert!(losses.last() < losses.first());
    // Cancelling stops it with Error::Cancelled.
    let r = projection::project(model.generator(), &loaded, &config, &mut |step, _| step < 3);
    assert!(matches!(r, Err(plugen_core::Error::Cancelled)));
    let _ = Bundle::open(&default_model_dir())?;
    Ok(())
}
