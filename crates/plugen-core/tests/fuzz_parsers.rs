//! Property tests over the parsers of every format plugen reads: arbitrary
//! bytes, and valid files with random bytes flipped or cut, never panic and
//! never take long. Each property runs CASES inputs (set PROPTEST_CASES to run more).

use std::path::Path;
use std::time::{Duration, Instant};

use plugen_core::io::{labels, npy, sidecar};
use proptest::prelude::*;

const CASES: u32 = 3000;

fn valid_npy() -> Vec<u8> {
    npy::encode(&[3, 100], &vec![0.25f32; 300])
}

fn valid_sidecar() -> Vec<u8> {
    let s = sidecar::Sidecar::new(vec![0.5; 100], "abc");
    serde_json::to_vec(&s).expect("json")
}

fn mutate(mut bytes: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, v) in flips {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = v;
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c % (bytes.len() + 1));
    }
    bytes
}

fn quick<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < Duration::from_millis(500));
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn npy_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = quick(|| npy::parse(Path::new("f.npy"), &bytes));
    }

    #[test]
    fn npy_never_panics_on_mutations(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in proptest::option::of(any::<usize>())) {
        let bytes = mutate(valid_npy(), &flips, cut);
        if let Ok(a) = quick(|| npy::parse(Path::new("f.npy"), &bytes)) {
            // Whatever parses is self-consistent.
            prop_assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
        }
    }

    #[test]
    fn labels_never_panic(text in "\\PC{0,300}") {
        if let Ok(t) = quick(|| labels::parse(Path::new("l.csv"), &text)) {
            prop_assert!(t.rows.iter().all(|r| r.len() == t.names.len()));
        }
    }

    #[test]
    fn sidecar_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8), cut in proptest::option::of(any::<usize>())) {
        let bytes = mutate(valid_sidecar(), &flips, cut);
        let _ = quick(|| sidecar::parse(Path::new("s.json"), &bytes));
    }

    #[test]
    fn safetensors_latents_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, &bytes).expect("write");
        let _ = quick(|| plugen_core::io::latents::read(&p, 100));
    }
}
