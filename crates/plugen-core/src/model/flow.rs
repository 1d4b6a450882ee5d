//! The PluGeN plugin: a NICE normalizing flow of additive coupling layers,
//! optionally interleaved with learned invertible linear maps.
//!
//! The latent is split into a first half `a` (the first `dim / 2` coordinates)
//! and a second half `b`. Coupling `i` shifts one half by an MLP of the other:
//! even couplings do `b += m(a)`, odd ones `a += m(b)`. Each coupling is
//! trivially invertible and volume-preserving (log-det 0).
//!
//! With `linear_mixing`, an invertible linear map `x ↦ W x` comes before every
//! coupling and after the last one (as Glow's 1×1 convolutions). `W = L·(U + diag(e^s))`
//! with `L` unit lower-triangular and `U` strictly upper-triangular, so its
//! log-determinant is `Σ s`. Without it, an attribute that depends on several
//! coordinates of the same half is hard for additive couplings to isolate in
//! one coordinate; with it, linear structure is one layer away and the couplings
//! only have to model what is non-linear.
//!
//! Weights by name: `couplings.{i}.layers.{j}.{weight,bias}` and
//! `mixers.{i}.{lower,upper,log_scale}`.

use candle_core::{D, DType, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::compute::plain_weights::{
    CouplingWeights, DenseWeights, FlowLayers, FlowWeights, MixerWeights,
};
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
    /// Learned invertible linear maps around the couplings.
    #[serde(default)]
    pub linear_mixing: bool,
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
            linear_mixing: true,
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

/// An invertible linear map `x ↦ W x`, `W = L·(U + diag(e^s))`.
struct Mixer {
    lower: Tensor,
    upper: Tensor,
    log_scale: Tensor,
    /// Masks: strictly lower, strictly upper, identity.
    masks: [Tensor; 3],
    /// `Wᵀ⁻¹` computed on first use by [`Flow::inverse`] (never during training).
    inverse_t: std::sync::OnceLock<Tensor>,
}

impl Mixer {
    fn new(vb: VarBuilder, n: usize) -> Result<Self> {
        use candle_nn::Init;
        let dev = vb.device().clone();
        let eye = Tensor::eye(n, DType::F32, &dev)?;
        let strict_lower = (Tensor::tril2(n, DType::F32, &dev)? - &eye)?;
        let strict_upper = (Tensor::triu2(n, DType::F32, &dev)? - &eye)?;
        Ok(Self {
            lower: vb.get_with_hints((n, n), "lower", Init::Const(0.))?,
            upper: vb.get_with_hints((n, n), "upper", Init::Const(0.))?,
            log_scale: vb.get_with_hints(n, "log_scale", Init::Const(0.))?,
            masks: [strict_lower, strict_upper, eye],
            inverse_t: std::sync::OnceLock::new(),
        })
    }

    /// The matrix `W`.
    fn weight(&self) -> Result<Tensor> {
        let [sl, su, eye] = &self.masks;
        let l = ((&self.lower * sl)? + eye)?;
        let u = ((&self.upper * su)? + eye.broadcast_mul(&self.log_scale.exp()?.unsqueeze(0)?)?)?;
        Ok(l.matmul(&u)?)
    }

    /// Rows `x` (N, n) → rows of `W x`, and log|det W|.
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let y = x.matmul(&self.weight()?.t()?)?;
        Ok((y, self.log_scale.sum_all()?))
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.matmul(&self.inverse_t()?)?)
    }

    /// Rows `y` → rows of `W⁻¹ y`, differentiable in the weights: the exact
    /// inverse `X₀` (a constant) refined by one Newton step `X = 2X₀ − X₀WX₀`,
    /// whose value is `W⁻¹` and whose gradient is `−W⁻¹ dW W⁻¹`, the inverse's own.
    fn inverse_trainable(&self, y: &Tensor) -> Result<Tensor> {
        let w = self.weight()?;
        let x0 = Self::invert_now(&w)?;
        let x = ((&x0 * 2.0)? - x0.matmul(&w)?.matmul(&x0)?)?;
        Ok(y.matmul(&x.t()?)?)
    }

    /// `W⁻¹` of the current weights, computed in f64 (not differentiable).
    fn invert_now(w: &Tensor) -> Result<Tensor> {
        let n = w.dim(0)?;
        let flat: Vec<f64> = w.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let inv =
            invert(&flat, n).ok_or_else(|| Error::invalid("flow mixing matrix is singular"))?;
        Ok(Tensor::from_vec(inv, (n, n), w.device())?.to_dtype(DType::F32)?)
    }

    /// `(W⁻¹)ᵀ`, computed in f64 on first use and cached.
    fn inverse_t(&self) -> Result<Tensor> {
        Ok(match self.inverse_t.get() {
            Some(t) => t.clone(),
            None => {
                let t = Self::invert_now(&self.weight()?)?.t()?.contiguous()?;
                let _ = self.inverse_t.set(t.clone());
                t
            }
        })
    }
}

/// Inverts a row-major n×n matrix by Gauss–Jordan elimination with partial pivoting.
pub(crate) fn invert(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut a = m.to_vec();
    let mut inv = vec![0f64; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&r, &s| a[r * n + col].abs().total_cmp(&a[s * n + col].abs()))?;
        if a[pivot * n + col].abs() < 1e-12 {
            return None;
        }
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
            inv.swap(col * n + k, pivot * n + k);
        }
        let d = a[col * n + col];
        for k in 0..n {
            a[col * n + k] /= d;
            inv[col * n + k] /= d;
        }
        for r in 0..n {
            if r != col {
                let f = a[r * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        a[r * n + k] -= f * a[col * n + k];
                        inv[r * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    Some(inv)
}

fn plain(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

/// The invertible plugin flow.
pub struct Flow {
    config: FlowConfig,
    couplings: Vec<Coupling>,
    /// `couplings + 1` linear maps (empty without `linear_mixing`): mixer `i` runs before coupling `i`.
    mixers: Vec<Mixer>,
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
        let mixers = if config.linear_mixing {
            (0..=config.couplings)
                .map(|i| Mixer::new(vb.pp(format!("mixers.{i}")), config.dim))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            config,
            couplings,
            mixers,
        })
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
        // Contiguous halves: BLAS (mkl) and GPU matmuls refuse strided row slices.
        Ok((
            x.narrow(1, 0, na)?.contiguous()?,
            x.narrow(1, na, dim - na)?.contiguous()?,
        ))
    }

    /// The weights as plain numbers (with the linear maps' inverses).
    pub fn weights(&self) -> Result<FlowWeights> {
        let couplings = self
            .couplings
            .iter()
            .map(|c| {
                let layers = c
                    .shift
                    .layers
                    .iter()
                    .map(|l| {
                        let (outputs, inputs) = l.weight().dims2()?;
                        let bias = match l.bias() {
                            Some(b) => plain(b)?,
                            None => vec![0.0; outputs],
                        };
                        Ok(DenseWeights {
                            inputs,
                            outputs,
                            weight_t: plain(&l.weight().t()?.contiguous()?)?,
                            bias,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(CouplingWeights {
                    shifts_second: c.shifts_second,
                    layers,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mixers = self
            .mixers
            .iter()
            .map(|m| {
                Ok(MixerWeights {
                    forward_t: plain(&m.weight()?.t()?.contiguous()?)?,
                    inverse_t: plain(&m.inverse_t()?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FlowWeights {
            dim: self.config.dim,
            couplings,
            mixers,
            hidden: self.config.hidden,
            slope: self.config.leaky_slope as f32,
        })
    }

    /// Latent (N, dim) → flow space (N, dim), with the log-determinant per row (N).
    pub fn forward(&self, z: &Tensor) -> Result<(Tensor, Tensor)> {
        self.split(z)?;
        let n = z.dim(0)?;
        let mut x = z.clone();
        let mut log_det = Tensor::zeros((), DType::F32, z.device())?;
        for (i, c) in self.couplings.iter().enumerate() {
            if let Some(m) = self.mixers.get(i) {
                let (y, ld) = m.forward(&x)?;
                x = y;
                log_det = (log_det + ld)?;
            }
            let (a, b) = self.split(&x)?;
            x = if c.shifts_second {
                Tensor::cat(&[&a, &(&b + c.shift.forward(&a)?)?], D::Minus1)?
            } else {
                Tensor::cat(&[&(&a + c.shift.forward(&b)?)?, &b], D::Minus1)?
            };
        }
        if let Some(m) = self.mixers.get(self.couplings.len()) {
            let (y, ld) = m.forward(&x)?;
            x = y;
            log_det = (log_det + ld)?;
        }
        Ok((x, log_det.broadcast_as(n)?.contiguous()?))
    }

    /// Flow space (N, dim) → latent (N, dim): the exact inverse of [`Flow::forward`].
    ///
    /// Linear maps cache their inverse on first use: invert only a flow whose weights no longer change.
    pub fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.inverse_with(y, Mixer::inverse)
    }

    /// [`Flow::inverse`] for training losses on edited codes: differentiable in
    /// the weights (nothing is cached), at the cost of inverting each linear map
    /// on every call.
    pub fn inverse_trainable(&self, y: &Tensor) -> Result<Tensor> {
        self.inverse_with(y, Mixer::inverse_trainable)
    }

    fn inverse_with(
        &self,
        y: &Tensor,
        mix: impl Fn(&Mixer, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        self.split(y)?;
        let mut x = y.clone();
        if let Some(m) = self.mixers.get(self.couplings.len()) {
            x = mix(m, &x)?;
        }
        for (i, c) in self.couplings.iter().enumerate().rev() {
            let (a, b) = self.split(&x)?;
            x = if c.shifts_second {
                Tensor::cat(&[&a, &(&b - c.shift.forward(&a)?)?], D::Minus1)?
            } else {
                Tensor::cat(&[&(&a - c.shift.forward(&b)?)?, &b], D::Minus1)?
            };
            if let Some(m) = self.mixers.get(i) {
                x = mix(m, &x)?;
            }
        }
        Ok(x)
    }
}

impl FlowLayers for Flow {
    fn flow_weights(&self) -> Result<FlowWeights> {
        self.weights()
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

    /// The trainable inverse gives the same latents as the cached one, and its
    /// gradient matches a finite difference of the weights.
    #[test]
    fn trainable_inverse_matches_and_differentiates() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let flow = Flow::new(vb, FlowConfig::default_for(6))?;
        // Seeded weights (the mixers start as the identity otherwise).
        let mut rng = crate::rng::SeededRng::new(4, 0);
        let data = varmap.data().lock().map_err(|_| Error::invalid("lock"))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let t = Tensor::from_vec(rng.normal_vec(var.elem_count()), var.dims(), &dev)?;
            var.set(&(t * 0.1)?)?;
        }
        let y = Tensor::from_vec(rng.normal_vec(48), (8, 6), &dev)?;
        let cached = flow.inverse(&y)?;
        let trainable = flow.inverse_trainable(&y)?;
        let err = (&cached - &trainable)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(err < 1e-4, "trainable inverse differs by {err}");
        // d/dθ of sum(x²) for one mixer weight, against a central difference.
        let loss = |f: &Flow| -> Result<f32> {
            Ok(f.inverse_trainable(&y)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f32>()?)
        };
        let grads = flow.inverse_trainable(&y)?.sqr()?.sum_all()?.backward()?;
        let var = data
            .get("mixers.1.lower")
            .ok_or_else(|| Error::invalid("no var"))?;
        let g: Vec<Vec<f32>> = grads
            .get(var.as_tensor())
            .ok_or_else(|| Error::invalid("no gradient"))?
            .to_vec2()?;
        let base: Vec<Vec<f32>> = var.as_tensor().to_vec2()?;
        let h = 1e-3f32;
        for (r, c) in [(3usize, 1usize), (5, 2)] {
            let at = |d: f32| -> Result<f32> {
                let mut m = base.clone();
                m[r][c] += d;
                var.set(&Tensor::new(m, &dev)?)?;
                loss(&flow)
            };
            let numeric = (at(h)? - at(-h)?) / (2.0 * h);
            println!("gradient {} against finite difference {numeric}", g[r][c]);
            var.set(&Tensor::new(base.clone(), &dev)?)?;
            assert!(
                (numeric - g[r][c]).abs() < 2e-2 * (1.0 + numeric.abs()),
                "gradient {} against finite difference {numeric}",
                g[r][c]
            );
        }
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
