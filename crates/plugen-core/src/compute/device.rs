//! Choosing the compute device: `auto`, `cpu`, `cuda[:N]`, `metal` or `wgpu`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use candle_core::Device;

use crate::compute::gpu::{AdapterPolicy, GpuContext};
use crate::error::{Error, Result};

/// The device a user asked for on the command line or in the GUI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The fastest device this build supports and this machine has.
    #[default]
    Auto,
    /// candle's CPU backend.
    Cpu,
    /// An NVIDIA GPU by ordinal (needs the `cuda` feature).
    Cuda(usize),
    /// An Apple GPU (needs the `metal` feature).
    Metal,
    /// Any GPU wgpu can drive (Vulkan, Metal, DX12, GLES), software adapters
    /// included; generation and the flow run there, training and image
    /// projection on the CPU.
    Wgpu,
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "metal" => Ok(Self::Metal),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(Error::invalid(format!(
                    "--device: '{s}' is not one of auto, cpu, cuda, cuda:N, metal, wgpu"
                ))),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => write!(f, "metal"),
            Self::Wgpu => write!(f, "wgpu"),
        }
    }
}

/// Where compute runs: a candle device for the tensor paths (training, image
/// projection, and everything when no wgpu context is open) and, optionally,
/// a wgpu context that generation and the flow run on.
pub struct Compute {
    /// candle's device.
    pub candle: Device,
    /// The wgpu context, when generation runs through wgpu.
    pub gpu: Option<Arc<GpuContext>>,
    /// One line saying why a requested GPU is not used (the CPU computes instead).
    pub note: Option<String>,
}

impl Compute {
    /// The CPU alone.
    pub fn cpu() -> Self {
        Self {
            candle: Device::Cpu,
            gpu: None,
            note: None,
        }
    }

    /// What computes the faces, for status lines: an adapter name, "CUDA:0" or "CPU".
    pub fn describe(&self) -> String {
        match &self.gpu {
            Some(g) => format!("wgpu: {}", g.adapter_name()),
            None if self.candle.is_cuda() => "CUDA".into(),
            None if self.candle.is_metal() => "Metal".into(),
            None => "CPU".into(),
        }
    }
}

impl DeviceChoice {
    /// Opens candle's device for this choice. `Auto` falls back to the CPU
    /// when no candle GPU backend is usable; `Wgpu` is the CPU here (the
    /// wgpu side is opened by [`DeviceChoice::open_compute`]).
    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu | Self::Wgpu => Ok(Device::Cpu),
            Self::Cuda(n) => open_cuda(n),
            Self::Metal => open_metal(),
            Self::Auto => Ok(open_cuda(0)
                .or_else(|_| open_metal())
                .unwrap_or(Device::Cpu)),
        }
    }

    /// Opens everything this choice computes on, without a window. `Auto`:
    /// CUDA where built and present, else Metal, else a hardware wgpu adapter
    /// with compute (a software one is slower than the CPU path, so it is
    /// skipped), else the CPU. `Wgpu`: whatever adapter wgpu finds; with none
    /// that can compute, the CPU and a [`Compute::note`] saying why.
    pub fn open_compute(self) -> Result<Compute> {
        match self {
            Self::Wgpu => Ok(match GpuContext::open(AdapterPolicy::Any) {
                Ok(ctx) => Compute {
                    candle: Device::Cpu,
                    gpu: Some(ctx),
                    note: None,
                },
                Err(e) => Compute {
                    note: Some(format!("{e}; computing on the CPU")),
                    ..Compute::cpu()
                },
            }),
            Self::Auto => {
                if let Ok(candle) = open_cuda(0).or_else(|_| open_metal()) {
                    return Ok(Compute {
                        candle,
                        gpu: None,
                        note: None,
                    });
                }
                Ok(Compute {
                    candle: Device::Cpu,
                    gpu: GpuContext::open(AdapterPolicy::HardwareOnly).ok(),
                    note: None,
                })
            }
            other => Ok(Compute {
                candle: other.open()?,
                gpu: None,
                note: None,
            }),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(n: usize) -> Result<Device> {
    Device::new_cuda(n).map_err(|e| {
        Error::invalid(format!(
            "--device cuda:{n}: no usable CUDA device ({})",
            first_line(&e)
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_n: usize) -> Result<Device> {
    Err(Error::invalid(
        "--device cuda: this build has no CUDA support (rebuild with --features cuda)",
    ))
}

#[cfg(feature = "metal")]
fn open_metal() -> Result<Device> {
    Device::new_metal(0).map_err(|e| {
        Error::invalid(format!(
            "--device metal: no usable Metal device ({})",
            first_line(&e)
        ))
    })
}

/// The first line of a backend error (candle appends a backtrace when
/// RUST_BACKTRACE is set; the user gets one line).
#[cfg(any(feature = "cuda", feature = "metal"))]
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

#[cfg(not(feature = "metal"))]
fn open_metal() -> Result<Device> {
    Err(Error::invalid(
        "--device metal: this build has no Metal support (rebuild with --features metal)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "auto".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Auto)
        );
        assert_eq!("cpu".parse::<DeviceChoice>().ok(), Some(DeviceChoice::Cpu));
        assert_eq!(
            "cuda".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Cuda(0))
        );
        assert_eq!(
            "cuda:2".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Cuda(2))
        );
        assert_eq!(
            "wgpu".parse::<DeviceChoice>().ok(),
            Some(DeviceChoice::Wgpu)
        );
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert!("gpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn auto_always_opens_something() {
        assert!(DeviceChoice::Auto.open().is_ok());
        let auto = DeviceChoice::Auto.open_compute();
        assert!(auto.is_ok());
        // auto never settles on a software adapter
        if let Some(g) = auto.ok().and_then(|c| c.gpu) {
            assert!(!g.is_software(), "auto chose {}", g.adapter_name());
        }
    }
}
