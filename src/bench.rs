//! `plugen bench`: speed and memory figures on the bundled model, with the same
//! generator run by onnxruntime (tools/bench_peer.py) measured in the same run
//! as the peer, and the ratio ours / peer for each shared figure.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use plugen_core::Device;
use plugen_core::Model;
use plugen_core::Tensor;
use plugen_core::compute::gpu::FaceInput;
use plugen_core::error::{Error, Result};
use plugen_core::io::latents::Latents;
use plugen_core::jobs::dataset::{self, SampleRequest};
use plugen_core::model::generator::images_to_bytes;
use plugen_core::model::judges::{JudgeSet, Needed};
use plugen_core::rng::SeededRng;
use serde::Serialize;

/// Median and spread of repeated timings, in milliseconds (or the figure's unit).
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// Median.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Number of runs.
    pub runs: usize,
}

impl Stat {
    /// Statistics of `v`, which must not be empty.
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Self {
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            runs: v.len(),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Name, e.g. `decode_b1_ms`.
    pub name: String,
    /// Ours.
    pub ours: Stat,
    /// The peer's, when it measures the same thing.
    pub peer: Option<Stat>,
}

/// Everything `plugen bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Figures in table order.
    pub figures: Vec<Figure>,
    /// Peak resident memory of this process, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Threads used (ours and the peer's).
    pub threads: usize,
    /// Peer description or why it is missing.
    pub peer: String,
    /// What computed ours: "CPU (AVX2+FMA kernels)", "CUDA" or "wgpu: ADAPTER (Backend)".
    pub device: String,
}

fn time_runs(repeats: usize, per: f64, f: impl FnMut() -> Result<()>) -> Result<Stat> {
    time_runs_after(3, repeats, per, f)
}

fn time_runs_after(
    warmup: usize,
    repeats: usize,
    per: f64,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Stat> {
    for _ in 0..warmup {
        f()?;
    }
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        f()?;
        runs.push(t.elapsed().as_secs_f64() * 1000.0 / per);
    }
    Ok(Stat::of(runs))
}

fn latents(n: usize, dim: usize, seed: u64) -> Result<Latents> {
    Latents::new(dim, SeededRng::new(seed, 0).normal_vec(n * dim))
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The peer's runs, from tools/bench_peer.py.
fn peer(
    model_dir: &Path,
    threads: usize,
    repeats: usize,
    pngs: usize,
) -> std::result::Result<([Stat; 3], String), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/bench_peer.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--model")
        .arg(model_dir)
        .args([
            "--threads",
            &threads.to_string(),
            "--repeats",
            &repeats.to_string(),
            "--pngs",
            &pngs.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} failed: {}",
            script.display(),
            err.lines().last().unwrap_or("")
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("peer output: {e}"))?;
    let runs = |k: &str| -> std::result::Result<Stat, String> {
        let arr = v[k].as_array().ok_or(format!("peer output lacks {k}"))?;
        let runs: Vec<f64> = arr.iter().filter_map(|x| x.as_f64()).collect();
        if runs.is_empty() {
            return Err(format!("peer output has no runs for {k}"));
        }
        Ok(Stat::of(runs))
    };
    Ok((
        [
            runs("decode_b1_ms")?,
            runs("decode_b64_ms_per_img")?,
            runs("pngs_ms_per_img")?,
        ],
        format!(
            "onnxruntime {} (CPU provider, {threads} threads)",
            v["onnxruntime"].as_str().unwrap_or("?")
        ),
    ))
}

/// Times training the default plugin configuration on the bundle's 20 000
/// (latent, label) pairs (`plugin.latents.npy`, `plugin.labels.csv`), once.
fn train_seconds(model: &Model) -> Result<f64> {
    let dir = model.bundle().dir();
    let (latents, labels) = plugen_core::model::plugin::read_pair(
        &plugen_core::model::plugin::LatentSource::File(dir.join("plugin.latents.npy")),
        &dir.join("plugin.labels.csv"),
        model.latent_dim(),
    )?;
    let config = plugen_core::learn::train::TrainConfig::default_for(model.latent_dim());
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let t = Instant::now();
    plugen_core::learn::train::train(
        &latents,
        &labels,
        &Default::default(),
        &config,
        model.generator_sha256(),
        model.device(),
        &mut |_| {},
        &cancel,
    )?;
    Ok(t.elapsed().as_secs_f64())
}

/// Projection rows: seconds and pixel MSE per image, ours (the encoder's guess
/// plus refinement) against the 150-step projection from a random start as
/// the peer, on `generated` held-out generated faces and the photos in `photos`.
pub fn projection_figures(
    model: &mut Model,
    generated: usize,
    photos: &Path,
) -> Result<Vec<Figure>> {
    if model.encoder()?.is_none() {
        return Err(Error::invalid(format!(
            "{} has no encoder to measure (plugen train-encoder makes one)",
            model.bundle().dir().display()
        )));
    }
    let size = model.generator().config().image_size() as u32;
    let mut targets = Vec::new();
    for i in 0..generated {
        // Seeds apart from the encoder's training stream and the bench's latents.
        let z = Latents::new(
            model.latent_dim(),
            SeededRng::new(90_000 + i as u64, 0).normal_vec(model.latent_dim()),
        )?;
        targets.push((false, model.render(&z)?.remove(0)));
    }
    let mut names: Vec<_> = std::fs::read_dir(photos)
        .map_err(|e| Error::io(photos, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    names.sort();
    for p in &names {
        targets.push((true, plugen_core::jobs::projection::load_target(p, size)?));
    }
    let (mut time, mut gen_mse, mut photo_mse) = (
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
    );
    for (photo, target) in &targets {
        for (k, use_encoder) in [(0, true), (1, false)] {
            let t = Instant::now();
            let p = model.project(target, use_encoder, 0, None, &mut |_, _, _| true)?;
            time[k].push(t.elapsed().as_secs_f64());
            let mse = if *photo { &mut photo_mse } else { &mut gen_mse };
            mse[k].push(p.mse as f64);
        }
    }
    let figure = |name: &str, [ours, peer]: [Vec<f64>; 2]| -> Option<Figure> {
        (!ours.is_empty()).then(|| Figure {
            name: name.into(),
            ours: Stat::of(ours),
            peer: Some(Stat::of(peer)),
        })
    };
    Ok([
        figure("project_s", time),
        figure("project_mse_generated", gen_mse),
        figure("project_mse_photos", photo_mse),
    ]
    .into_iter()
    .flatten()
    .collect())
}

/// Measures everything; `with_peer` also runs the onnxruntime peer, `with_train`
/// also times a full training run (minutes).
///
/// With a wgpu device the generator, the flow, the frame (slider → face
/// texture ready) and sampling run there. A software adapter (lavapipe) is
/// timed with fewer runs and a smaller sample: those are correctness runs.
pub fn run(model: &mut Model, repeats: usize, with_peer: bool, with_train: bool) -> Result<Report> {
    let software = model.gpu().is_some_and(|g| g.is_software());
    let (warmup, repeats, sample_count) = if software {
        (1, 3, 16)
    } else {
        (3, repeats, 256)
    };
    let dim = model.latent_dim();
    let z1 = latents(1, dim, 1)?;
    let z64 = latents(64, dim, 2)?;
    let mut figures = Vec::new();
    let (b1, b64) = match model.gpu_generator() {
        Some(g) => (
            time_runs_after(warmup, repeats, 1.0, || g.decode(&z1.data).map(|_| ()))?,
            time_runs_after(warmup, repeats.div_ceil(4).max(3), 64.0, || {
                g.decode(&z64.data).map(|_| ())
            })?,
        ),
        None => {
            let generator = model.generator();
            let dev: &Device = model.device();
            let t1 = Tensor::from_slice(&z1.data, (1, dim), dev)?;
            let t64 = Tensor::from_slice(&z64.data, (64, dim), dev)?;
            (
                time_runs(repeats, 1.0, || {
                    generator.decode(&t1)?.to_device(&Device::Cpu)?;
                    Ok(())
                })?,
                time_runs(repeats.div_ceil(4).max(3), 64.0, || {
                    generator.decode(&t64)?.to_device(&Device::Cpu)?;
                    Ok(())
                })?,
            )
        }
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let ([peer_b1, peer_b64, peer_pngs], peer_name) = if with_peer {
        match peer(model.bundle().dir(), threads, repeats, sample_count) {
            Ok(([a, b, c], name)) => ([Some(a), Some(b), Some(c)], name),
            Err(e) => ([None, None, None], format!("unavailable: {e}")),
        }
    } else {
        ([None, None, None], "skipped (--no-peer)".into())
    };
    figures.push(Figure {
        name: "decode_b1_ms".into(),
        ours: b1,
        peer: peer_b1,
    });
    figures.push(Figure {
        name: "decode_b64_ms_per_img".into(),
        ours: b64,
        peer: peer_b64,
    });
    // The judges on a batch of 64 generated faces (CPU), next to decode.
    let judges_dir = JudgeSet::dir_beside(model.bundle().dir());
    match JudgeSet::load(&judges_dir) {
        Ok(judges) => {
            let faces = model.render(&z64)?;
            let refs: Vec<&image::RgbImage> = faces.iter().collect();
            let runs = repeats.div_ceil(4).max(3);
            figures.push(Figure {
                name: "judges_b64_ms_per_img".into(),
                ours: time_runs(runs, 64.0, || judges.read(&refs).map(|_| ()))?,
                peer: None,
            });
            // What a run pays whose judge map needs no face mesh (smile, male).
            figures.push(Figure {
                name: "judges_without_mesh_b64_ms_per_img".into(),
                ours: time_runs(runs, 64.0, || {
                    let needed = Needed {
                        mesh: false,
                        ..Needed::ALL
                    };
                    judges.read_needed(&refs, needed).map(|_| ())
                })?,
                peer: None,
            });
            figures.push(Figure {
                name: "expression_judge_b64_ms_per_img".into(),
                ours: time_runs(runs, 64.0, || judges.expression().judge(&refs).map(|_| ()))?,
                peer: None,
            });
            figures.push(Figure {
                // The gender network on its fixed crops (no landmarks).
                name: "gender_judge_b64_ms_per_img".into(),
                ours: time_runs(runs, 64.0, || judges.gender().judge(&refs).map(|_| ()))?,
                peer: None,
            });
            // What a run checking male alone pays: the landmarks, dlib's
            // chips and the gender network on them.
            figures.push(Figure {
                name: "male_run_judges_b64_ms_per_img".into(),
                ours: time_runs(runs, 64.0, || {
                    let needed = Needed {
                        expression: false,
                        gender: true,
                        skin_tone: false,
                        mesh: false,
                    };
                    judges.read_needed(&refs, needed).map(|_| ())
                })?,
                peer: None,
            });
            if let Some(mesh) = judges.mesh() {
                figures.push(Figure {
                    name: "mesh_judge_b64_ms_per_img".into(),
                    ours: time_runs(runs, 64.0, || mesh.landmarks(&refs).map(|_| ()))?,
                    peer: None,
                });
            }
        }
        Err(e) => eprintln!("plugen: bench: no judges row: {e}"),
    }
    if let Some(p) = model.plugin() {
        let codes = p.encode(&z1)?;
        figures.push(Figure {
            name: "forward_flow_ms".into(),
            ours: time_runs_after(warmup, repeats, 1.0, || p.encode(&z1).map(|_| ()))?,
            peer: None,
        });
        figures.push(Figure {
            name: "inverse_flow_ms".into(),
            ours: time_runs_after(warmup, repeats, 1.0, || p.decode(&codes).map(|_| ()))?,
            peer: None,
        });
    }
    // One slider change, as the editor computes it.
    let codes = model.plugin().map(|p| p.encode(&z1)).transpose()?;
    let frame = if model.gpu().is_some() {
        // Inverse flow, generator and pixels into the face texture, latent and readout back.
        let input = codes.as_ref().map_or(z1.data.clone(), |c| c.data.clone());
        let with_flow = codes.is_some();
        time_runs_after(warmup, repeats, 1.0, || {
            let input = if with_flow {
                FaceInput::Code(&input)
            } else {
                FaceInput::Latent(&input)
            };
            model.render_face(input).map(|_| ())
        })?
    } else {
        // Inverse flow (with a plugin), generator, RGBA bytes for the texture.
        let generator = model.generator();
        let dev: &Device = model.device();
        let frame = || -> Result<()> {
            let z = match (model.plugin(), &codes) {
                (Some(p), Some(c)) => Tensor::from_slice(&p.decode(c)?.data, (1, dim), dev)?,
                _ => Tensor::from_slice(&z1.data, (1, dim), dev)?,
            };
            let rgb = images_to_bytes(&generator.decode(&z)?)?;
            let _rgba: Vec<u8> = rgb[0]
                .chunks(3)
                .flat_map(|c| [c[0], c[1], c[2], 255])
                .collect();
            Ok(())
        };
        time_runs(repeats, 1.0, frame)?
    };
    figures.push(Figure {
        name: "frame_ms".into(),
        ours: frame,
        peer: None,
    });
    // `plugen sample` end to end, PNGs and manifest included.
    let mut rates = Vec::new();
    for run in 0..3 {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("temp"), e))?;
        let req = SampleRequest {
            count: sample_count,
            seed: run,
            sets: Vec::new(),
            balance: None,
            bins: 5,
            temperature: 1.0,
            scale: 1,
            verify: dataset::Verify::Off,
            max_tries: 1,
            generator_sha256: String::new(),
            plugin_sha256: None,
        };
        let t = Instant::now();
        dataset::sample(
            model,
            &req,
            None,
            dir.path(),
            false,
            dataset::Shard::WHOLE,
            &mut |_, _| {},
        )?;
        rates.push(sample_count as f64 / t.elapsed().as_secs_f64());
    }
    if with_train {
        figures.push(Figure {
            name: "train_s".into(),
            ours: Stat::of(vec![train_seconds(model)?]),
            peer: None,
        });
    }
    // End to end per image (the peer: onnxruntime batches of 64 + one PIL PNG each).
    figures.push(Figure {
        name: "sample_pngs_ms_per_img".into(),
        ours: Stat::of(rates.iter().map(|r| 1000.0 / r).collect()),
        peer: peer_pngs,
    });
    figures.push(Figure {
        name: "sample_imgs_per_s".into(),
        ours: Stat::of(rates),
        peer: None,
    });
    Ok(Report {
        figures,
        peak_rss_mib: peak_rss_mib(),
        threads,
        peer: peer_name,
        device: match model.generator().cpu_kernel() {
            Some(k) => format!("{} ({} kernels)", model.device_name(), k.name()),
            None => model.device_name().to_string(),
        },
    })
}

/// The report as a text table.
pub fn table(r: &Report) -> String {
    let mut s = format!(
        "{:<24} {:>10} {:>10} {:>10} {:>10} {:>8}\n",
        "figure", "median", "p10", "p90", "peer", "ours/peer"
    );
    for f in &r.figures {
        let (peer, ratio) = match &f.peer {
            Some(p) => (
                format!("{:.3}", p.median),
                format!("{:.2}", f.ours.median / p.median),
            ),
            None => ("-".into(), "-".into()),
        };
        s += &format!(
            "{:<24} {:>10.3} {:>10.3} {:>10.3} {:>10} {:>8}\n",
            f.name, f.ours.median, f.ours.p10, f.ours.p90, peer, ratio
        );
    }
    if let Some(m) = r.peak_rss_mib {
        s += &format!(
            "peak RSS {m:.0} MiB; {} threads; peer: {}\n",
            r.threads, r.peer
        );
    }
    if r.figures.iter().any(|f| f.name.starts_with("project_")) {
        s += "project_*: ours = encoder guess + refinement; peer = 150 Adam steps from a random start\n";
    }
    s += &format!("ours on {}\n", r.device);
    s
}
