//! Layer 2, compute: where the numbers are crunched. The CPU engine
//! ([`cpu_gemm`], with the generator on it in [`cpu_decode`] and the flow in
//! [`cpu_flow`]), the WGSL kernels on a wgpu device ([`gpu`]), and which of
//! them (or candle's CUDA/Metal) runs ([`device`]). The engines take weights
//! as plain numbers ([`plain_weights`]); the model layer hands them over.
//!
//! Uses [`crate::io`] and below; knows nothing of files' meaning or of training.

pub(crate) mod cpu_conv;
pub(crate) mod cpu_decode;
pub(crate) mod cpu_flow;
pub mod cpu_gemm;
pub(crate) mod cpu_simd;
pub mod device;
pub mod gpu;
pub mod plain_weights;
