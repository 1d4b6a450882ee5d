//! The wgpu compute path against the CPU path and the numpy reference, on
//! whatever adapter wgpu finds (lavapipe in CI).
//!
//! Without an adapter these tests say so and pass, unless `PLUGEN_REQUIRE_GPU`
//! is set (as `.ci/run` does): then a missing adapter is a failure.
mod common;

use common::fixture;

use std::sync::Arc;

use candle_core::{Device, Tensor};
use plugen_core::compute::device::Compute;
use plugen_core::compute::gpu::{AdapterPolicy, FaceInput, GpuContext, GpuGenerator};
use plugen_core::io::latents::Latents;
use plugen_core::jobs::loaded::{Model, PluginChoice};
use plugen_core::model::bundle::{Bundle, default_model_dir};
use plugen_core::rng::SeededRng;

fn gpu() -> Option<Arc<GpuContext>> {
    match GpuContext::open(AdapterPolicy::Any) {
        Ok(ctx) => {
            println!("adapter: {}", ctx.adapter_name());
            Some(ctx)
        }
        Err(e) if std::env::var_os("PLUGEN_REQUIRE_GPU").is_some() => {
            panic!("PLUGEN_REQUIRE_GPU is set but {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn models(ctx: &Arc<GpuContext>) -> plugen_core::Result<(Model, Model)> {
    let cpu = Model::load_on(None, PluginChoice::BundleDefault, Compute::cpu())?;
    let gpu = Model::load_on(
        None,
        PluginChoice::BundleDefault,
        Compute {
            candle: Device::Cpu,
            gpu: Some(ctx.clone()),
            note: None,
        },
    )?;
    Ok((cpu, gpu))
}

#[test]
fn generator_matches_cpu_and_numpy_reference() -> plugen_core::Result<()> {
    let Some(ctx) = gpu() else { return Ok(()) };
    let bundle = Bundle::open(&default_model_dir())?;
    let generator = bundle.load_generator(&Device::Cpu)?;
    let on_gpu = GpuGenerator::new(&ctx, &generator)?;
    let z = fixture("parity_latents.npy");
    let reference = fixture("parity_images.npy"); // (8, 3, 64, 64)
    let cpu: Vec<f32> = generator
        .decode(&Tensor::from_slice(&z.data, (8, 100), &Device::Cpu)?)?
        .flatten_all()?
        .to_vec1()?;
    let got = on_gpu.decode(&z.data)?; // (8, 64, 64, 3)
    let vs_cpu = max_diff(&got, &cpu);
    let nchw: Vec<f32> = (0..8 * 3 * 64 * 64)
        .map(|i| {
            let (n, c, y, x) = (i / (3 * 4096), i / 4096 % 3, i / 64 % 64, i % 64);
            got[((n * 64 + y) * 64 + x) * 3 + c]
        })
        .collect();
    let vs_reference = max_diff(&nchw, &reference.data);
    println!("generator: max |gpu - cpu| = {vs_cpu:e}, max |gpu - numpy| = {vs_reference:e}");
    assert!(vs_cpu <= 1e-4, "gpu vs cpu {vs_cpu}");
    assert!(vs_reference <= 1e-4, "gpu vs numpy {vs_reference}");
    assert!(got[..12288] != got[12288..24576], "images should differ");
    Ok(())
}

#[test]
fn asynchronous_read_back_matches_the_cpu_as_a_browser_reads_it() -> plugen_core::Result<()> {
    let Some(ctx) = gpu() else { return Ok(()) };
    let cpu = Model::load_on(None, PluginChoice::BundleDefault, Compute::cpu())?;
    let parity = pollster::block_on(plugen_core::jobs::parity::check(&ctx, &cpu, 8))?;
    println!("{parity}");
    assert!(parity.passed(), "{parity}");
    assert_eq!(parity.faces, 8);
    Ok(())
}

#[test]
fn pixels_match_the_cpu_bytes() -> plugen_core::Result<()> {
    let Some(ctx) = gpu() else { return Ok(()) };
    let (cpu, gpu) = models(&ctx)?;
    let z = fixture("parity_latents.npy");
    let latents = Latents::new(100, z.data)?;
    let want = cpu.render(&latents)?;
    let got = gpu.render(&latents)?;
    assert_eq!(want.len(), got.len());
    let (mut off, mut worst) = (0usize, 0i32);
    for (a, b) in want.iter().zip(&got) {
        for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
            let d = (i32::from(*x) - i32::from(*y)).abs();
            off += usize::from(d > 0);
            worst = worst.max(d);
        }
    }
    println!(
        "bytes: {off} of {} off, by at most {worst}",
        8 * 64 * 64 * 3
    );
    assert!(worst <= 1, "a byte is off by {worst}");
    assert!(off <= 8 * 64 * 64 * 3 / 1000, "{off} bytes differ");
    Ok(())
}

#[test]
fn flow_matches_cpu_both_ways_in_batches() -> plugen_core::Result<()> {
    let Some(ctx) = gpu() else { return Ok(()) };
    let (cpu, gpu) = models(&ctx)?;
    let (cp, gp) = match (cpu.plugin(), gpu.plugin()) {
        (Some(c), Some(g)) => (c, g),
        _ => panic!("the bundle has a default plugin"),
    };
    assert!(gp.gpu_flow().is_some() && cp.gpu_flow().is_none());
    // 1 row (the editor's frame), 8 (the fixtures), 70 (more than one 64-row chunk)
    let fixture_rows = fixture("parity_latents.npy").data;
    let mut rng = SeededRng::new(5, 0);
    let many = rng.normal_vec(70 * 100);
    for data in [fixture_rows[..100].to_vec(), fixture_rows, many] {
        let z = Latents::new(100, data)?;
        let fwd = max_diff(&gp.encode(&z)?.data, &cp.encode(&z)?.data);
        let codes = cp.encode(&z)?;
        let inv = max_diff(&gp.decode(&codes)?.data, &cp.decode(&codes)?.data);
        let round_trip = max_diff(&gp.decode(&gp.encode(&z)?)?.data, &z.data);
        println!(
            "{} rows: forward {fwd:e}, inverse {inv:e}, round trip {round_trip:e}",
            z.count()
        );
        assert!(fwd <= 1e-4 && inv <= 1e-4, "flow off: {fwd} / {inv}");
        assert!(
            round_trip <= 1e-4,
            "inverse does not undo forward: {round_trip}"
        );
    }
    // A wrong width is refused, as on the CPU.
    assert!(gp.encode(&Latents::new(50, vec![0.0; 100])?).is_err());
    Ok(())
}

/// Copies the face texture back (only tests do that; the editor draws it).
fn texture_bytes(ctx: &GpuContext, texture: &wgpu::Texture) -> Vec<u8> {
    let (w, h) = (texture.width(), texture.height());
    let row = (w * 4).div_ceil(256) * 256;
    let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: u64::from(row * h),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(h),
            },
        },
        texture.size(),
    );
    ctx.queue().submit([encoder.finish()]);
    buffer.map_async(wgpu::MapMode::Read, .., |r| r.expect("map"));
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let view = buffer.get_mapped_range(..).expect("mapped");
    view.chunks(row as usize)
        .flat_map(|r| r[..(w * 4) as usize].to_vec())
        .collect()
}

#[test]
fn face_texture_holds_the_face_of_the_code() -> plugen_core::Result<()> {
    let Some(ctx) = gpu() else { return Ok(()) };
    let (cpu, mut gpu) = models(&ctx)?;
    let plugin = cpu.plugin().expect("default plugin");
    let k = plugin.attributes().len();
    let mut rng = SeededRng::new(3, 0);
    let mut code = plugin.sample_code(&vec![None; k], 0.7, &mut rng);
    let mut previous: Option<Vec<u8>> = None;
    for smile in [-1.0f32, 1.0] {
        code[plugin.index_of("smile")?] = smile;
        let frame = gpu.render_face(FaceInput::Code(&code))?;
        let latent = plugin.decode(&Latents::new(100, code.clone())?)?;
        assert!(max_diff(&frame.latent, &latent.data) <= 1e-4);
        // The readout is the code again (forward undoes inverse).
        assert!(max_diff(&frame.code[..k], &code[..k]) <= 1e-3);
        let texture = gpu.face_texture()?.texture().clone();
        let shown = texture_bytes(&ctx, &texture);
        let want = cpu.render(&latent)?.remove(0);
        let worst = shown
            .chunks_exact(4)
            .zip(want.as_raw().chunks_exact(3))
            .flat_map(|(a, b)| (0..3).map(move |c| (i32::from(a[c]) - i32::from(b[c])).abs()))
            .max()
            .unwrap_or(255);
        assert!(worst <= 1, "texture differs from the CPU face by {worst}");
        assert!(shown.chunks_exact(4).all(|p| p[3] == 255));
        if let Some(prev) = &previous {
            assert!(prev != &shown, "the face did not change with the smile");
        }
        previous = Some(shown);
    }
    // A latent decodes as it is.
    let z = fixture("parity_latents.npy").data[..100].to_vec();
    let frame = gpu.render_face(FaceInput::Latent(&z))?;
    assert_eq!(frame.latent, z);
    Ok(())
}
