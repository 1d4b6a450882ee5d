//! Weights as plain row-major numbers: what the model layer hands to the
//! engines (the CPU engine and the wgpu kernels), so that they need not know
//! candle's tensors or the model's files.

use crate::error::Result;

/// One layer's folded weights as plain numbers, for the other compute paths
/// (the CPU engine, [`crate::compute::gpu`]).
pub struct PackedLayer {
    /// Input channels (the latent length for the first layer).
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// (C_in, 4, 4, C_out) row-major, BatchNorm's scale folded in.
    pub weight: Vec<f32>,
    /// Per-channel shift added before the activation, C_out numbers.
    pub shift: Vec<f32>,
}

/// A flow's weights as plain row-major numbers, for the engines.
pub struct FlowWeights {
    /// Numbers per latent.
    pub dim: usize,
    /// The couplings, in forward order.
    pub couplings: Vec<CouplingWeights>,
    /// The linear maps (empty without linear mixing): map `i` runs before coupling `i`.
    pub mixers: Vec<MixerWeights>,
    /// Width of the MLPs' hidden layers.
    pub hidden: usize,
    /// LeakyReLU slope.
    pub slope: f32,
}

/// One coupling: its MLP, and which half it shifts.
pub struct CouplingWeights {
    /// `true`: `b += m(a)`; `false`: `a += m(b)`.
    pub shifts_second: bool,
    /// The MLP's layers, input first.
    pub layers: Vec<DenseWeights>,
}

/// A dense layer `y = x·Wᵀ + b`.
pub struct DenseWeights {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// `Wᵀ`, (inputs, outputs) row-major.
    pub weight_t: Vec<f32>,
    /// Bias, `outputs` numbers.
    pub bias: Vec<f32>,
}

/// A linear map for row vectors: `y = x·Wᵀ` forward, `x = y·(W⁻¹)ᵀ` inverse.
pub struct MixerWeights {
    /// `Wᵀ`, (dim, dim) row-major.
    pub forward_t: Vec<f32>,
    /// `(W⁻¹)ᵀ`, (dim, dim) row-major, inverted in f64.
    pub inverse_t: Vec<f32>,
}

/// A generator the engines can take: its folded layers, first layer first.
/// Layer 0 maps the latent to a 4×4 map (ReLU), the others are stride-2
/// transposed convolutions (ReLU; tanh for the last).
pub trait GeneratorLayers {
    /// Every layer's folded, packed weights, first layer first.
    fn packed_layers(&self) -> Result<Vec<PackedLayer>>;
}

/// A flow the engines can take.
pub trait FlowLayers {
    /// The flow's weights as plain numbers.
    fn flow_weights(&self) -> Result<FlowWeights>;
}
