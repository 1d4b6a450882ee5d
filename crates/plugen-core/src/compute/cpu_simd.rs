//! Plain loops on the widest vectors this CPU has.
//!
//! The crate is built for the baseline target (SSE2 on x86-64), so the
//! compiler vectorizes an element-wise loop four numbers wide. [`widest`]
//! runs a closure inside a function compiled for AVX-512 (or AVX2) where the
//! CPU has it, so the same loop, inlined there, runs 16 (or 8) wide. An
//! element-wise loop gives the same bits at any width (Rust never fuses a
//! multiply and an add by itself), so results do not depend on the CPU.

/// `f()`, compiled for the widest vectors the CPU has. `f` should be one
/// closure of plain loops, called only here, so that it is inlined.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { on_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { on_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn on_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn on_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_gives_the_same_bits_on_wide_vectors_as_on_the_baseline() {
        let a: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let b: Vec<f32> = (0..1001).map(|i| (i as f32 * 0.11).cos() - 0.2).collect();
        let run = |out: &mut Vec<f32>| {
            for ((o, x), y) in out.iter_mut().zip(&a).zip(&b) {
                *o += x * y;
                if *o < 0.0 {
                    *o *= 0.25;
                }
            }
        };
        let (mut plain, mut wide) = (vec![0.5f32; 1001], vec![0.5f32; 1001]);
        run(&mut plain);
        widest(|| run(&mut wide));
        assert_eq!(
            plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            wide.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert!(plain.iter().any(|v| *v < 0.0) && plain.iter().any(|v| *v > 0.5));
    }
}
