//! Helpers shared by the engine's integration tests.

use std::path::Path;

use plugen_core::io::npy;

/// A `.npy` file of `tests/fixtures` (written by tools/reference_generator.py).
pub fn fixture(name: &str) -> npy::NpyArray {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npy::parse(&path, &bytes).unwrap_or_else(|e| panic!("{e}"))
}
