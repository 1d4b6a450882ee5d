//! The generator matches an independent numpy reference (tools/reference_generator.py,
//! which reads the original PyTorch checkpoint) on 8 fixed latents.

mod common;

use common::fixture;

use candle_core::{Device, Tensor};
use plugen_core::bundle::{Bundle, default_model_dir};

#[test]
fn generator_matches_numpy_reference() -> plugen_core::Result<()> {
    let bundle = Bundle::open(&default_model_dir())?;
    let generator = bundle.load_generator(&Device::Cpu)?;
    let z = fixture("parity_latents.npy");
    let want = fixture("parity_images.npy");
    assert_eq!(z.shape, vec![8, 100]);
    assert_eq!(want.shape, vec![8, 3, 64, 64]);
    let z = Tensor::from_vec(z.data, (8, 100), &Device::Cpu)?;
    let got: Vec<f32> = generator.decode_nchw(&z)?.flatten_all()?.to_vec1()?;
    let max = got
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("max |ours - reference| = {max:e}");
    assert!(max <= 1e-4, "max diff {max}");
    // The images are not trivially equal: they differ from each other.
    let per_image = 3 * 64 * 64;
    assert!(got[..per_image] != got[per_image..2 * per_image]);
    Ok(())
}
