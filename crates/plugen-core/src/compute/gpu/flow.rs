//! The plugin's flow on the GPU: the same layers as [`crate::model::flow::Flow`]
//! (linear maps `W` and `W⁻¹`, additive couplings with LeakyReLU MLPs), each a
//! dispatch of `linear.wgsl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{GpuContext, LinearParams, MAX_BATCH, Step};
use crate::compute::plain_weights::{FlowLayers, FlowWeights};
use crate::error::{Error, Result};

/// Which way to run the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Latent → flow code (readout, editing).
    Forward,
    /// Flow code → latent (generation).
    Inverse,
}

struct Dense {
    inputs: usize,
    outputs: usize,
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
}

struct Coupling {
    layers: Vec<Dense>,
    shifts_second: bool,
}

struct Mixer {
    forward_t: wgpu::Buffer,
    inverse_t: wgpu::Buffer,
}

/// Buffers and dispatches for one batch size and direction, built once.
struct Plan {
    /// Ping-pong flow states, (rows, dim) each; the input goes into `states[0]`.
    states: [wgpu::Buffer; 2],
    /// MLP activations (kept alive with the bind groups that use them).
    _hidden: [wgpu::Buffer; 2],
    steps: Vec<Step>,
    /// Which state holds the result.
    result: usize,
}

/// A plugin's flow with its weights on the GPU.
pub struct GpuFlow {
    ctx: Arc<GpuContext>,
    dim: usize,
    hidden: usize,
    slope: f32,
    couplings: Vec<Coupling>,
    /// Empty without linear mixing; else `couplings + 1`, mixer `i` before coupling `i`.
    mixers: Vec<Mixer>,
    zero_bias: wgpu::Buffer,
    plans: Mutex<HashMap<(usize, Direction), Plan>>,
}

impl GpuFlow {
    /// Uploads `flow`'s weights (and the inverses of its linear maps, computed in f64).
    pub fn new(ctx: &Arc<GpuContext>, flow: &impl FlowLayers) -> Result<Self> {
        let FlowWeights {
            dim,
            couplings,
            mixers,
            hidden,
            slope,
        } = flow.flow_weights()?;
        if couplings.iter().any(|c| c.layers.len() < 2) {
            return Err(Error::invalid(
                "the GPU flow needs coupling MLPs with at least one hidden layer",
            ));
        }
        let couplings = couplings
            .into_iter()
            .map(|c| Coupling {
                shifts_second: c.shifts_second,
                layers: c
                    .layers
                    .into_iter()
                    .map(|d| Dense {
                        inputs: d.inputs,
                        outputs: d.outputs,
                        weight: ctx.upload("flow weight", &d.weight_t),
                        bias: ctx.upload("flow bias", &d.bias),
                    })
                    .collect(),
            })
            .collect();
        let mixers = mixers
            .into_iter()
            .map(|m| Mixer {
                forward_t: ctx.upload("flow mixer", &m.forward_t),
                inverse_t: ctx.upload("flow mixer inverse", &m.inverse_t),
            })
            .collect();
        Ok(Self {
            ctx: ctx.clone(),
            dim,
            hidden,
            slope,
            couplings,
            mixers,
            zero_bias: ctx.upload("zero bias", &vec![0.0; dim]),
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Numbers per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Runs the flow on rows of `input` ((N, dim), row-major) and reads the result back.
    pub fn run(&self, input: &[f32], direction: Direction) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(input.len());
        for chunk in self.chunks(input)? {
            let words = self.ctx.checked("the flow", || {
                self.submit(chunk, direction, |b, n| self.ctx.read_back(b, n))?
            })?;
            out.extend(words.into_iter().map(f32::from_bits));
        }
        Ok(out)
    }

    /// [`Self::run`] without waiting for the GPU (the only way in a browser).
    pub async fn run_async(&self, input: &[f32], direction: Direction) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(input.len());
        for chunk in self.chunks(input)? {
            let pending = self.submit(chunk, direction, |b, n| self.ctx.start_read(b, n))?;
            out.extend(pending.finish().await?.into_iter().map(f32::from_bits));
        }
        Ok(out)
    }

    /// `input` in chunks of at most [`MAX_BATCH`] vectors.
    fn chunks<'a>(&self, input: &'a [f32]) -> Result<std::slice::Chunks<'a, f32>> {
        if self.dim == 0 || !input.len().is_multiple_of(self.dim) {
            return Err(Error::invalid(format!(
                "flow expects vectors of {} numbers",
                self.dim
            )));
        }
        Ok(input.chunks(MAX_BATCH * self.dim))
    }

    /// Uploads one chunk, runs the flow on it, and hands the result buffer
    /// (and its length) to `read`.
    fn submit<T>(
        &self,
        chunk: &[f32],
        direction: Direction,
        read: impl FnOnce(&wgpu::Buffer, usize) -> T,
    ) -> Result<T> {
        let rows = chunk.len() / self.dim;
        let mut plans = self.lock()?;
        let plan = self.plan(&mut plans, rows, direction);
        self.ctx
            .queue
            .write_buffer(&plan.states[0], 0, bytemuck::cast_slice(chunk));
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.ctx.record(&mut encoder, &plan.steps);
        self.ctx.queue.submit([encoder.finish()]);
        Ok(read(&plan.states[plan.result], chunk.len()))
    }

    /// Records the flow on `rows` vectors: copies them from `input`, runs, and
    /// copies the result into `output` (both (rows, dim) f32 buffers).
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        direction: Direction,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let mut plans = self.lock()?;
        let plan = self.plan(&mut plans, rows, direction);
        let bytes = (rows * self.dim * 4) as u64;
        encoder.copy_buffer_to_buffer(input, 0, &plan.states[0], 0, bytes);
        self.ctx.record(encoder, &plan.steps);
        encoder.copy_buffer_to_buffer(&plan.states[plan.result], 0, output, 0, bytes);
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<(usize, Direction), Plan>>> {
        self.plans
            .lock()
            .map_err(|_| Error::invalid("the GPU flow was poisoned by an earlier failure"))
    }

    fn plan<'a>(
        &self,
        plans: &'a mut HashMap<(usize, Direction), Plan>,
        rows: usize,
        direction: Direction,
    ) -> &'a Plan {
        plans
            .entry((rows, direction))
            .or_insert_with(|| self.build(rows, direction))
    }

    fn build(&self, rows: usize, direction: Direction) -> Plan {
        let ctx = &self.ctx;
        let states = [
            ctx.storage("flow state", rows * self.dim),
            ctx.storage("flow state", rows * self.dim),
        ];
        let hidden = [
            ctx.storage("flow hidden", rows * self.hidden),
            ctx.storage("flow hidden", rows * self.hidden),
        ];
        let mut steps = Vec::new();
        let mut cur = 0;
        let mix = |steps: &mut Vec<Step>, cur: &mut usize, w: &wgpu::Buffer| {
            let p = LinearParams {
                rows,
                k: self.dim,
                m: self.dim,
                input: (self.dim, 0),
                output: (self.dim, 0),
                mode: 0,
                slope: None,
                bias_period: self.dim,
            };
            steps.push(ctx.linear(&p, &states[*cur], w, &self.zero_bias, &states[1 - *cur]));
            *cur = 1 - *cur;
        };
        let couple = |steps: &mut Vec<Step>, cur: usize, c: &Coupling, mode: u32| {
            let na = self.dim / 2;
            let (in_off, out_off) = if c.shifts_second { (0, na) } else { (na, 0) };
            let last = c.layers.len() - 1;
            for (j, d) in c.layers.iter().enumerate() {
                let (x, input) = if j == 0 {
                    (&states[cur], (self.dim, in_off))
                } else {
                    (&hidden[(j - 1) % 2], (self.hidden, 0))
                };
                let (y, output, mode, slope) = if j == last {
                    (&states[cur], (self.dim, out_off), mode, None)
                } else {
                    (&hidden[j % 2], (self.hidden, 0), 0, Some(self.slope))
                };
                let p = LinearParams {
                    rows,
                    k: d.inputs,
                    m: d.outputs,
                    input,
                    output,
                    mode,
                    slope,
                    bias_period: d.outputs,
                };
                steps.push(ctx.linear(&p, x, &d.weight, &d.bias, y));
            }
        };
        let n = self.couplings.len();
        match direction {
            Direction::Forward => {
                for (i, c) in self.couplings.iter().enumerate() {
                    if let Some(m) = self.mixers.get(i) {
                        mix(&mut steps, &mut cur, &m.forward_t);
                    }
                    couple(&mut steps, cur, c, 1);
                }
                if let Some(m) = self.mixers.get(n) {
                    mix(&mut steps, &mut cur, &m.forward_t);
                }
            }
            Direction::Inverse => {
                if let Some(m) = self.mixers.get(n) {
                    mix(&mut steps, &mut cur, &m.inverse_t);
                }
                for (i, c) in self.couplings.iter().enumerate().rev() {
                    couple(&mut steps, cur, c, 2);
                    if let Some(m) = self.mixers.get(i) {
                        mix(&mut steps, &mut cur, &m.inverse_t);
                    }
                }
            }
        }
        Plan {
            states,
            _hidden: hidden,
            steps,
            result: cur,
        }
    }
}
