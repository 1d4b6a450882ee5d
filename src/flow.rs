//! The PluGeN plugin: a NICE normalizing flow of additive coupling layers.
//!
//! The latent is split into a first half `a` (the first `dim / 2` coordinates)
//! and a second half `b`. Coupling `i` shifts one half by an MLP of the other:
//! even couplings do `b += m(a)`, odd ones `a += m(b)`. Each step is trivially
//! invertible and volume-preserving, so the log-determinant is 0; it is still
//! accumulated so that layers with a real Jacobian can join later.
//!
//! Weights by name: `couplings.{i}.layers.{j}.{weight,bias}`.

use candle_core::{D, DType, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Shape of the flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    /// Length of the latent (and flow-space) vector.
    pub dim: usize,
    /// Number of additive coupling layers.
    pub couplings: usize,
    /// Width of each hidden layer of a coupling's MLP.
    pub hidden: usize,
    /// Number of hidden layers per MLP.
    pub hidden_layers: usize,
    /// Negative slope of the LeakyReLU activations.
    pub leaky_slope: f64,
}

impl FlowConfig {
    /// The paper's StyleGAN-like setup for a `dim`-sized latent.
    pub fn default_for(dim: usize) -> Self {
        Self {
            dim,
            couplings: 4,
            hidden: 256,
            hidden_layers: 3,
            leaky_slope: 0.01,
        }
    }

    /// Checks that the shape is usable.
    pub fn validate(&self) -> Result<()> {
        if self.dim < 2 || self.dim > 65_536 {
            return Err(Error::invalid(format!(
                "flow dimension must be 2..=65536, got {}",
                self.dim
            )));
        }
        if self.couplings == 0 || self.couplings > 64 {
            return Err(Error::invalid("flow needs 1..=64 couplings"));
        }
        if self.hidden == 0 || self.hidden > 16_384 || self.hidden_layers > 16 {
            return Err(Error::invalid(
                "flow MLP width must be 1..=16384 with at most 16 hidden layers",
            ));
        }
        if !self.leaky_slope.is_finite() {
            return Err(Error::invalid("flow leaky slope must be finite"));
        }
        Ok(())
    }

    fn first_half(&self) -> usize {
        self.dim / 2
    }
}

/// A small MLP with LeakyReLU between layers.
struct Mlp {
    layers: Vec<Linear>,
    slope: f64,
}

impl Mlp {
    fn new(vb: VarBuilder, input: usize, output: usize, config: &FlowConfig) -> Result<Self> {
        let mut sizes = vec![input];
        sizes.extend(std::iter::repeat_n(config.hidden, config.hidden_layers));
        sizes.push(output);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(j, io)| candle_nn::linear(io[0], io[1], vb.pp(format!("layers.{j}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            slope: config.leaky_slope,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        let last = self.layers.len() - 1;
        for (j, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x)?;
            if j != last {
                x = leaky_relu(&x, self.slope)?;
            }
        }
        Ok(x)
    }
}

fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    // max(x, 0) + slope * min(x, 0)
    Ok((x.relu()? + (x.minimum(0f64)? * slope)?)?)
}

/// One additive coupling: shifts one half by an MLP of the other.
struct Coupling {
    shift: Mlp,
    /// `true`: `b += m(a)`; `false`: `a += m(b)`.
    shifts_second: bool,
}

/// The invertible plugin flow.
pub struct Flow {
    config: FlowConfig,
    couplings: Vec<Coupling>,
}

impl Flow {
    /// Builds the flow, reading (or, with a `VarMap` builder, creating) its weights.
    pub fn new(vb: VarBuilder, config: FlowConfig) -> Result<Self> {
        config.validate()?;
        let (na, nb) = (config.first_half(), config.dim - config.first_half());
        let couplings = (0..config.couplings)
            .map(|i| {
                let shifts_second = i % 2 == 0;
                let (input, output) = if shifts_second { (na, nb) } else { (nb, na) };
                Ok(Coupling {
                    shift: Mlp::new(vb.pp(format!("couplings.{i}")), input, output, &config)?,
                    shifts_second,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, couplings })
    }

    /// The flow's shape.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    fn split(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, dim) = x.dims2()?;
        if dim != self.config.dim {
            return Err(Error::invalid(format!(
                "flow expects vectors of {} numbers, got {dim}",
                self.config.dim
            )));
        }
        let na = self.config.first_half();
        Ok((x.narrow(1, 0, na)?, x.narrow(1, na, dim - na)?))
    }

    /// Latent (N, dim) → flow space (N, dim), with the log-determinant per row (N).
    pub fn forward(&self, z: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mut a, mut b) = self.split(z)?;
        for c in &self.couplings {
            if c.shifts_second {
                b = (b + c.shift.forward(&a)?)?;
            } else {
                a = (a + c.shift.forward(&b)?)?;
            }
        }
        let n = z.dim(0)?;
        let log_det = Tensor::zeros(n, DType::F32, z.device())?;
        Ok((Tensor::cat(&[a, b], D::Minus1)?, log_det))
    }

    /// Flow space (N, dim) → latent (N, dim): the exact inverse of [`Flow::forward`].
    pub fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (mut a, mut b) = self.split(y)?;
        for c in self.couplings.iter().rev() {
            if c.shifts_second {
                b = (b - c.shift.forward(&a)?)?;
            } else {
                a = (a - c.shift.forward(&b)?)?;
            }
        }
        Ok(Tensor::cat(&[a, b], D::Minus1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn inverse_undoes_forward_on_random_weights() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let flow = Flow::new(vb, FlowConfig::default_for(10))?;
        // default init of the last layer is not zero, so the flow is not the identity
        let z = Tensor::randn(0f32, 1., (64, 10), &dev)?;
        let (y, log_det) = flow.forward(&z)?;
        let moved = (&y - &z)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(moved > 1e-3, "flow should move points, moved {moved}");
        let back = flow.inverse(&y)?;
        let err = (back - z)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err < 1e-4, "inverse error {err}");
        assert_eq!(log_det.dims(), &[64]);
        Ok(())
    }

    #[test]
    fn wrong_width_is_an_error() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let flow = Flow::new(
            VarBuilder::from_varmap(&varmap, DType::F32, &dev),
            FlowConfig::default_for(10),
        )?;
        let z = Tensor::zeros((1, 9), DType::F32, &dev)?;
        assert!(flow.forward(&z).is_err());
        assert!(flow.inverse(&z).is_err());
        Ok(())
    }
}
