//! Projecting an image into the latent space finds a latent whose face looks
//! like the image.

use plugen_core::io::latents::Latents;
use plugen_core::jobs::loaded::{Model, PluginChoice};
use plugen_core::jobs::projection::{self, ProjectionConfig};
use plugen_core::model::bundle::{Bundle, default_model_dir};
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
        plugen_core::compute::device::DeviceChoice::Cpu,
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
    let z = projection::project(model.generator(), &loaded, &config, None, &mut |_, l| {
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
    // The bundle's encoder: its guess plus a few refinement steps reconstructs
    // at least as closely as the 150 steps from a random start.
    let mut model = model;
    let mut steps_seen = 0;
    let fast = model.project(&loaded, true, 0, None, &mut |_, steps, _| {
        steps_seen = steps;
        true
    })?;
    assert!(fast.from_encoder, "the bundle ships an encoder");
    assert_eq!(steps_seen, projection::REFINEMENT_STEPS);
    let fast_face = model
        .render(&Latents::new(100, fast.latent.clone())?)?
        .remove(0);
    let fast_err = mse(&fast_face, &target);
    println!(
        "MSE with the encoder: {fast_err:.4} (reported {:.4})",
        fast.mse
    );
    assert!(
        fast_err < err * 1.2,
        "encoder + refinement MSE {fast_err} vs 150 steps {err}"
    );
    assert!(
        (fast.mse as f64 - fast_err).abs() < 0.01,
        "reported MSE is the face's"
    );
    // Cancelling stops it with Error::Cancelled.
    let r = projection::project(model.generator(), &loaded, &config, None, &mut |step, _| {
        step < 3
    });
    assert!(matches!(r, Err(plugen_core::Error::Cancelled)));
    let _ = Bundle::open(&default_model_dir())?;
    Ok(())
}
