//! The plugin flow's CPU path for a trained plugin: every dense layer and
//! linear map a GEMM of the CPU engine ([`crate::compute::cpu_gemm`]) on weights packed
//! once, the MLPs reading their half of each row in place.
//!
//! Each number is summed in a fixed order, so a row gives the same bits alone
//! or in a batch, on one thread or many: `plugen sample` runs whole batches
//! and still writes the same files as one face at a time. Training keeps
//! candle's differentiable flow ([`crate::model::flow::Flow`]).

use crate::compute::cpu_gemm::{Activation, Engine, Packed, Task};
use crate::compute::plain_weights::{DenseWeights, FlowWeights};
use crate::error::{Error, Result};

/// One coupling: its MLP's layers and which half it shifts.
struct Coupling {
    /// `true`: `b += m(a)`; `false`: `a += m(b)`.
    shifts_second: bool,
    layers: Vec<Packed>,
}

/// A trained flow packed for the CPU engine.
pub(crate) struct CpuFlow {
    engine: Engine,
    dim: usize,
    /// Width of the first half.
    first: usize,
    couplings: Vec<Coupling>,
    /// Per linear map: `Wᵀ` and `(W⁻¹)ᵀ`.
    mixers: Vec<(Packed, Packed)>,
}

impl CpuFlow {
    /// Packs `weights` of a flow on rows of `dim` numbers for `engine`.
    pub(crate) fn new(weights: &FlowWeights, dim: usize, engine: Engine) -> Result<Self> {
        let dense = |d: &DenseWeights, act: Activation| -> Result<Packed> {
            if d.weight_t.len() != d.inputs * d.outputs || d.bias.len() != d.outputs {
                return Err(Error::invalid(
                    "flow layer weights do not match their shape",
                ));
            }
            let (w, b, n) = (&d.weight_t, &d.bias, d.outputs);
            Ok(Packed::new(
                engine,
                (1, 1, d.inputs, n),
                |_, _, k, c| w[k * n + c],
                |c| b[c],
                act,
            ))
        };
        let square = |m: &[f32]| -> Result<Packed> {
            if m.len() != dim * dim {
                return Err(Error::invalid(
                    "flow linear map does not match the flow's width",
                ));
            }
            Ok(Packed::new(
                engine,
                (1, 1, dim, dim),
                |_, _, k, c| m[k * dim + c],
                |_| 0.0,
                Activation::Identity,
            ))
        };
        let hidden = Activation::LeakyRelu(weights.slope);
        let couplings = weights
            .couplings
            .iter()
            .map(|c| {
                let (inputs, outputs) = if c.shifts_second {
                    (dim / 2, dim - dim / 2)
                } else {
                    (dim - dim / 2, dim / 2)
                };
                let fits = c.layers.first().is_some_and(|l| l.inputs == inputs)
                    && c.layers.last().is_some_and(|l| l.outputs == outputs)
                    && c.layers.windows(2).all(|p| p[0].outputs == p[1].inputs);
                if !fits {
                    return Err(Error::invalid("flow coupling layers do not chain"));
                }
                let last = c.layers.len().saturating_sub(1);
                let layers = c
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(j, d)| {
                        dense(
                            d,
                            if j == last {
                                Activation::Identity
                            } else {
                                hidden
                            },
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Coupling {
                    shifts_second: c.shifts_second,
                    layers,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mixers = weights
            .mixers
            .iter()
            .map(|m| Ok((square(&m.forward_t)?, square(&m.inverse_t)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            engine,
            dim,
            first: dim / 2,
            couplings,
            mixers,
        })
    }

    /// Latent rows → flow-space rows, concatenated.
    pub(crate) fn forward(&self, z: &[f32]) -> Result<Vec<f32>> {
        let mut x = self.rows(z)?;
        for (i, c) in self.couplings.iter().enumerate() {
            if let Some((m, _)) = self.mixers.get(i) {
                x = self.linear(m, &x)?;
            }
            self.couple(c, &mut x, 1.0)?;
        }
        if let Some((m, _)) = self.mixers.get(self.couplings.len()) {
            x = self.linear(m, &x)?;
        }
        Ok(x)
    }

    /// Flow-space rows → latent rows: the inverse of [`CpuFlow::forward`].
    pub(crate) fn inverse(&self, y: &[f32]) -> Result<Vec<f32>> {
        let mut x = self.rows(y)?;
        if let Some((_, m)) = self.mixers.get(self.couplings.len()) {
            x = self.linear(m, &x)?;
        }
        for (i, c) in self.couplings.iter().enumerate().rev() {
            self.couple(c, &mut x, -1.0)?;
            if let Some((_, m)) = self.mixers.get(i) {
                x = self.linear(m, &x)?;
            }
        }
        Ok(x)
    }

    fn rows(&self, x: &[f32]) -> Result<Vec<f32>> {
        if self.dim == 0 || !x.len().is_multiple_of(self.dim) {
            return Err(Error::invalid(format!(
                "flow expects rows of {} numbers, got {} numbers",
                self.dim,
                x.len()
            )));
        }
        Ok(x.to_vec())
    }

    /// `x · M` for every row.
    fn linear(&self, m: &Packed, x: &[f32]) -> Result<Vec<f32>> {
        let n = x.len() / self.dim;
        let mut out = vec![0f32; n * m.cols()];
        let task = [Task::plain(n, (self.dim, 0), m.cols())];
        // SAFETY: row r writes only its own `cols` numbers at r·cols.
        unsafe { self.engine.run(m, &task, x, &mut out)? };
        Ok(out)
    }

    /// Adds `sign ·` the coupling's MLP of one half to the other half, in place.
    fn couple(&self, c: &Coupling, x: &mut [f32], sign: f32) -> Result<()> {
        let n = x.len() / self.dim;
        let (from, to) = if c.shifts_second {
            (0, self.first)
        } else {
            (self.first, 0)
        };
        let mut h: Vec<f32> = Vec::new();
        for (j, layer) in c.layers.iter().enumerate() {
            let mut out = vec![0f32; n * layer.cols()];
            let (input, task) = if j == 0 {
                (&*x, Task::plain(n, (self.dim, from), layer.cols()))
            } else {
                (&h[..], Task::plain(n, (layer.len(), 0), layer.cols()))
            };
            // SAFETY: row r writes only its own `cols` numbers at r·cols.
            unsafe { self.engine.run(layer, &[task], input, &mut out)? };
            h = out;
        }
        let width = h.len() / n.max(1);
        for (row, shift) in x
            .chunks_exact_mut(self.dim)
            .zip(h.chunks_exact(width.max(1)))
        {
            for (v, s) in row[to..to + width].iter_mut().zip(shift) {
                *v += sign * s;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::cpu_gemm::Kernel;
    use crate::model::flow::{Flow, FlowConfig};
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    /// A flow with every weight random (the linear maps too, which start as
    /// the identity), and its candle form for reference.
    fn random_flow(dim: usize) -> Result<Flow> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let flow = Flow::new(vb, FlowConfig::default_for(dim))?;
        for (name, var) in varmap
            .data()
            .lock()
            .map_err(|_| Error::invalid("lock"))?
            .iter()
        {
            let scale = if name.starts_with("mixers") {
                0.1
            } else {
                0.05
            };
            let t = (Tensor::randn(0f32, 1., var.shape(), &Device::Cpu)? * scale)?;
            var.set(&t)?;
        }
        Ok(flow)
    }

    #[test]
    fn matches_candles_flow_and_is_the_same_bits_in_any_batch() -> Result<()> {
        let dim = 21;
        let flow = random_flow(dim)?;
        let engines = Engine::all_testable();
        for rows in [1, 8, 70] {
            let z = Tensor::randn(0f32, 1., (rows, dim), &Device::Cpu)?;
            let (want_y, _) = flow.forward(&z)?;
            let want_back = flow.inverse(&want_y)?;
            let z: Vec<f32> = z.flatten_all()?.to_vec1()?;
            let want_y: Vec<f32> = want_y.flatten_all()?.to_vec1()?;
            let want_back: Vec<f32> = want_back.flatten_all()?.to_vec1()?;
            let moved = z
                .iter()
                .zip(&want_y)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(moved > 0.1, "the flow should move points, moved {moved}");
            for &engine in &engines {
                let cpu = CpuFlow::new(&flow.weights()?, dim, engine)?;
                let y = cpu.forward(&z)?;
                let back = cpu.inverse(&want_y)?;
                let max = |a: &[f32], b: &[f32]| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0f32, f32::max)
                };
                let (ey, eb) = (max(&y, &want_y), max(&back, &want_back));
                println!(
                    "{} ({} lanes), {rows} rows: forward {ey:e}, inverse {eb:e}",
                    engine.kernel().name(),
                    engine.lanes()
                );
                assert!(ey < 1e-4 && eb < 1e-4, "forward {ey}, inverse {eb}");
                assert!(max(&cpu.inverse(&y)?, &z) < 1e-4, "inverse undoes forward");
                // Row by row: the same bits as in the batch.
                for (i, row) in z.chunks(dim).enumerate() {
                    assert!(
                        cpu.forward(row)? == y[i * dim..(i + 1) * dim],
                        "row {i} forward"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn rows_of_the_wrong_width_are_refused() -> Result<()> {
        let flow = random_flow(6)?;
        let cpu = CpuFlow::new(&flow.weights()?, 6, Engine::new(Kernel::Portable))?;
        assert!(cpu.forward(&[0.0; 7]).is_err());
        assert!(cpu.inverse(&[0.0; 5]).is_err());
        assert!(CpuFlow::new(&flow.weights()?, 8, Engine::new(Kernel::Portable)).is_err());
        Ok(())
    }
}
