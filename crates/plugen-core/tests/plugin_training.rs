//! The plugin flow: exact invertibility, a loss that goes down, and control over
//! attributes that are known functions of the latent.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use plugen_core::io::labels::LabelTable;
use plugen_core::io::latents::Latents;
use plugen_core::jobs::edit::{self, EditMode};
use plugen_core::learn::train::{self, TrainConfig};
use plugen_core::model::flow::{Flow, FlowConfig};
use plugen_core::rng::SeededRng;

const DIM: usize = 100;

#[test]
fn inverse_undoes_forward_on_10000_latents() -> plugen_core::Result<()> {
    let dev = Device::Cpu;
    let varmap = VarMap::new(); // candle's random init: the couplings are far from the identity
    let flow = Flow::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        FlowConfig::default_for(DIM),
    )?;
    // (Its linear maps start as the identity; the trained-plugin test below
    // checks invertibility through learned ones.)
    let z = Tensor::from_vec(
        SeededRng::new(1, 0).normal_vec(10_000 * DIM),
        (10_000, DIM),
        &dev,
    )?;
    let (y, _) = flow.forward(&z)?;
    let moved = (&y - &z)?.abs()?.mean_all()?.to_scalar::<f32>()?;
    let err = (flow.inverse(&y)? - &z)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    println!("mean |f(z) - z| = {moved}, max |f⁻¹(f(z)) - z| = {err:e}");
    assert!(moved > 0.1, "the flow should move points (moved {moved})");
    assert!(err <= 1e-4, "invertibility error {err}");
    Ok(())
}

/// Ground truth for the synthetic attributes.
fn truth(z: &[f32]) -> (bool, bool, f32) {
    (
        z[0] + 0.5 * z[1] > 0.6,
        z[2] - z[3] > 0.0,
        z[4] + 0.5 * z[5],
    )
}

fn synthetic(n: usize, seed: u64) -> (Latents, LabelTable) {
    let mut rng = SeededRng::new(seed, 0);
    let data = rng.normal_vec(n * DIM);
    let latents = Latents::new(DIM, data).expect("whole rows");
    let rows = (0..n)
        .map(|i| {
            let (a, b, c) = truth(latents.row(i));
            // 30 % of each label missing, independently: PluGeN trains on partial labels.
            let keep = |rng: &mut SeededRng| rng.uniform() >= 0.3;
            vec![
                keep(&mut rng).then_some(a as u8 as f32),
                keep(&mut rng).then_some(b as u8 as f32),
                keep(&mut rng).then_some(c),
            ]
        })
        .collect();
    (
        latents,
        LabelTable {
            names: vec!["a".into(), "b".into(), "c".into()],
            rows,
        },
    )
}

fn spearman(x: &[f32], y: &[f32]) -> f32 {
    fn ranks(v: &[f32]) -> Vec<f32> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0f32; v.len()];
        for (rank, &i) in idx.iter().enumerate() {
            r[i] = rank as f32;
        }
        r
    }
    let pairs: Vec<(f32, f32)> = ranks(x).into_iter().zip(ranks(y)).collect();
    train::pearson(&pairs)
}

#[test]
fn trained_plugin_controls_synthetic_attributes() -> plugen_core::Result<()> {
    let dev = Device::Cpu;
    let (latents, labels) = synthetic(8000, 11);
    let mut config = TrainConfig::default_for(DIM);
    config.epochs = 30;
    config.flow.hidden = 128;
    config.seed = 3;
    let cancel = AtomicBool::new(false);
    let (trained, report) = train::train(
        &latents,
        &labels,
        &HashMap::new(),
        &config,
        "synthetic",
        &dev,
        &mut |_| {},
        &cancel,
    )?;
    let first = report.epoch_losses[0];
    let last = *report.epoch_losses.last().expect("epochs ran");
    println!("loss {first} -> {last}; held-out {:?}", report.metrics);
    assert!(
        last < first - 0.05,
        "loss should decrease: {first} -> {last}"
    );
    for m in &report.metrics {
        // Binary readout is the sign of a coordinate trained towards two narrow
        // clusters, so points near the class boundary are often misread; 0.8 is
        // still well above the 0.5–0.7 of guessing the majority class.
        let floor = if m.metric == "accuracy" { 0.8 } else { 0.9 };
        assert!(
            m.value >= floor,
            "held-out readout of {} too weak: {}",
            m.name,
            m.value
        );
    }
    let plugin = trained.into_plugin(&dev)?;
    // The trained flow is invertible too, on 10 000 fresh latents.
    let fresh = Latents::new(DIM, SeededRng::new(2, 0).normal_vec(10_000 * DIM))?;
    let back = plugin.decode(&plugin.encode(&fresh)?)?;
    let err = back
        .data
        .iter()
        .zip(&fresh.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("trained: max |f⁻¹(f(z)) - z| = {err:e}");
    assert!(err <= 1e-4, "trained invertibility error {err}");
    let mut rng = SeededRng::new(99, 0);
    // Conditional generation: each binary value requested 500 times.
    for (k, name) in ["a", "b"].iter().enumerate() {
        for (value, want) in [(1.0f32, true), (-1.0, false)] {
            let requested = plugin.resolve(&[(name.to_string(), value)])?;
            let codes: Vec<f32> = (0..500)
                .flat_map(|_| plugin.sample_code(&requested, 1.0, &mut rng))
                .collect();
            let z = plugin.decode(&Latents::new(DIM, codes)?)?;
            let hits = (0..500)
                .filter(|&i| {
                    let t = truth(z.row(i));
                    (if k == 0 { t.0 } else { t.1 }) == want
                })
                .count();
            let rate = hits as f32 / 500.0;
            println!("{name}={value}: {rate:.3} have it");
            assert!(
                rate >= 0.95,
                "{name}={value}: only {rate} of samples have it"
            );
        }
    }
    // Continuous: requested vs. true value, rank-correlated.
    let (lo, hi) = plugin.attributes()[2].value_range();
    let asked: Vec<f32> = (0..400)
        .map(|i| lo / 3.0 + (hi - lo) / 3.0 * i as f32 / 399.0)
        .collect();
    let mut got = Vec::new();
    for &v in &asked {
        let requested = plugin.resolve(&[("c".to_string(), v)])?;
        let z = plugin.decode(&Latents::new(
            DIM,
            plugin.sample_code(&requested, 1.0, &mut rng),
        )?)?;
        got.push(truth(z.row(0)).2);
    }
    let rho = spearman(&asked, &got);
    println!("c: Spearman {rho:.3}");
    assert!(rho >= 0.9, "continuous control too weak: {rho}");

    // Editing: flipping `a` on held-out latents flips it and keeps `b`.
    let (fresh, _) = synthetic(300, 12);
    let (mut flipped, mut kept) = (0, 0);
    for i in 0..300 {
        let z = fresh.row(i);
        let (a, b, _) = truth(z);
        let target = if a { -1.0 } else { 1.0 };
        let edited = plugin.edit(z, &plugin.resolve(&[("a".to_string(), target)])?)?;
        let (a2, b2, _) = truth(&edited);
        flipped += (a2 != a) as usize;
        kept += (b2 == b) as usize;
    }
    println!("edit a: flipped {flipped}/300, b kept {kept}/300");
    assert!(flipped >= 270 && kept >= 270);

    // The minimal edit reaches the same readout, keeps the other attributes'
    // readouts and moves the latent less. It flips the true attribute less
    // often than the flow edit: the shortest way to the readout is partly
    // along directions the readout alone sees (measured here: 182 of 300; on
    // faces, the model card's edit table shows the same trade).
    let (mut flipped, mut kept, mut reached) = (0, 0, 0);
    let (mut flow_moved, mut minimal_moved) = (0.0f32, 0.0f32);
    let dist = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    for i in 0..300 {
        let z = fresh.row(i);
        let (a, b, _) = truth(z);
        let values = plugin.resolve(&[("a".to_string(), if a { -1.0 } else { 1.0 })])?;
        let by_flow = plugin.edit(z, &values)?;
        let minimal = edit::edit(&plugin, z, &values, EditMode::Minimal)?;
        let before = plugin.encode(&Latents::new(DIM, z.to_vec())?)?;
        let after = plugin.encode(&Latents::new(DIM, minimal.clone())?)?;
        let ok = (after.data[0] - values[0].unwrap_or(f32::NAN)).abs() <= edit::TOLERANCE
            && (1..3).all(|k| (after.data[k] - before.data[k]).abs() <= edit::TOLERANCE);
        reached += ok as usize;
        let (a2, b2, _) = truth(&minimal);
        flipped += (a2 != a) as usize;
        kept += (b2 == b) as usize;
        flow_moved += dist(&by_flow, z);
        minimal_moved += dist(&minimal, z);
    }
    println!(
        "minimal edit a: reached {reached}/300, flipped {flipped}/300, b kept {kept}/300, \
         mean distance {:.3} (flow edit {:.3})",
        minimal_moved / 300.0,
        flow_moved / 300.0
    );
    assert!(reached >= 295 && flipped >= 150 && kept >= 270);
    assert!(
        minimal_moved < flow_moved,
        "{minimal_moved} vs {flow_moved}"
    );
    Ok(())
}

/// The edit-distance term: the same data and seed trained with and without it.
/// With it, an edit of `a` (to the other side, in flow units) moves the latent
/// much less, comes closer to the shortest way across `a`'s true boundary, and
/// still flips `a` and keeps `b`; the readouts stay as good.
#[test]
fn edit_distance_term_shortens_edits_that_still_take() -> plugen_core::Result<()> {
    let dev = Device::Cpu;
    let (latents, labels) = synthetic(6000, 21);
    let (fresh, _) = synthetic(300, 22);
    let cancel = AtomicBool::new(false);
    let mut moved = Vec::new();
    for weight in [0.0f32, 4.0] {
        let mut config = TrainConfig::default_for(DIM);
        config.epochs = 16;
        config.flow.hidden = 128;
        config.seed = 5;
        config.edit_distance_weight = weight;
        let (trained, report) = train::train(
            &latents,
            &labels,
            &HashMap::new(),
            &config,
            "synthetic",
            &dev,
            &mut |_| {},
            &cancel,
        )?;
        assert_eq!(trained.manifest.training.edit_distance_weight, weight);
        for m in &report.metrics {
            let floor = if m.metric == "accuracy" { 0.8 } else { 0.9 };
            assert!(m.value >= floor, "weight {weight}: {} {}", m.name, m.value);
        }
        let plugin = trained.into_plugin(&dev)?;
        let (mut flipped, mut kept, mut total, mut shortest) = (0, 0, 0.0f32, 0.0f32);
        for i in 0..300 {
            let z = fresh.row(i);
            let (a, b, _) = truth(z);
            let values = plugin.resolve(&[("a".to_string(), if a { -2.0 } else { 2.0 })])?;
            let edited = plugin.edit(z, &values)?;
            let (a2, b2, _) = truth(&edited);
            flipped += (a2 != a) as usize;
            kept += (b2 == b) as usize;
            total += edited
                .iter()
                .zip(z)
                .map(|(p, q)| (p - q).powi(2))
                .sum::<f32>()
                .sqrt();
            // Distance from z to a's true boundary z0 + 0.5 z1 = 0.6.
            shortest += (z[0] + 0.5 * z[1] - 0.6).abs() / 1.25f32.sqrt();
        }
        let (mean, ideal) = (total / 300.0, shortest / 300.0);
        println!(
            "weight {weight}: edit a flipped {flipped}/300, b kept {kept}/300, moved {mean:.3} \
             (shortest way across {ideal:.3}); held-out edit distance {:?}",
            report.holdout_edit_distance
        );
        assert!(flipped >= 285 && kept >= 270, "weight {weight}");
        moved.push(mean);
    }
    assert!(
        moved[1] < 0.75 * moved[0],
        "the term should shorten edits: {} vs {}",
        moved[1],
        moved[0]
    );
    Ok(())
}
