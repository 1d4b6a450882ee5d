//! The generator matches an independent numpy reference (tools/reference_generator.py,
//! which reads the original PyTorch checkpoint) on 8 fixed latents.

mod common;

use common::fixture;

use candle_core::{Device, Tensor};
use plugen_core::compute::cpu_gemm::Kernel;
use plugen_core::model::bundle::{Bundle, default_model_dir};

#[test]
fn generator_matches_numpy_reference() -> plugen_core::Result<()> {
    let bundle = Bundle::open(&default_model_dir())?;
    let mut generator = bundle.load_generator(&Device::Cpu)?;
    let z = fixture("parity_latents.npy");
    let want = fixture("parity_images.npy");
    assert_eq!(z.shape, vec![8, 100]);
    assert_eq!(want.shape, vec![8, 3, 64, 64]);
    let z = Tensor::from_vec(z.data, (8, 100), &Device::Cpu)?;
    let max_diff = |got: &[f32]| {
        got.iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max)
    };
    // Every CPU kernel this machine runs (the portable one everywhere).
    let kernels = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];
    let mut first: Option<Vec<f32>> = None;
    for kernel in kernels.into_iter().filter(|k| k.available()) {
        generator.set_cpu_kernel(kernel)?;
        let got: Vec<f32> = generator.decode_nchw(&z)?.flatten_all()?.to_vec1()?;
        let max = max_diff(&got);
        println!("{}: max |ours - reference| = {max:e}", kernel.name());
        assert!(max <= 1e-4, "{}: max diff {max}", kernel.name());
        first.get_or_insert(got);
    }
    // candle's tensor path (the one gradients flow through) agrees too.
    let got = generator.decode_differentiable(&z)?;
    let got: Vec<f32> = got.permute((0, 3, 1, 2))?.flatten_all()?.to_vec1()?;
    let max = max_diff(&got);
    println!("tensor path: max |ours - reference| = {max:e}");
    assert!(max <= 1e-4, "tensor path: max diff {max}");
    // The images are not trivially equal: they differ from each other.
    let got = first.unwrap_or_default();
    let per_image = 3 * 64 * 64;
    assert!(got[..per_image] != got[per_image..2 * per_image]);
    Ok(())
}

#[test]
fn a_setting_the_cpu_cannot_run_is_refused() -> plugen_core::Result<()> {
    let bundle = Bundle::open(&default_model_dir())?;
    let mut generator = bundle.load_generator(&Device::Cpu)?;
    assert_eq!(generator.cpu_kernel(), Some(Kernel::detect()));
    for kernel in [Kernel::Avx512, Kernel::Avx2] {
        if !kernel.available() {
            let err = generator
                .set_cpu_kernel(kernel)
                .err()
                .map(|e| e.to_string());
            assert!(err.unwrap_or_default().contains(kernel.name()));
            assert_eq!(generator.cpu_kernel(), Some(Kernel::detect()));
        }
    }
    Ok(())
}
