//! GPU compute through wgpu: the plugin's flow ([`GpuFlow`]) and the frozen
//! generator ([`GpuGenerator`]) as WGSL kernels, on any adapter wgpu can
//! drive (Vulkan, Metal, DX12, GLES 3.1+).
//!
//! A [`GpuContext`] is either opened headless (the command line) or wraps a
//! device someone else owns (the editor passes eframe's, so the face is
//! written straight into a texture the window draws). Weights are uploaded
//! once per model and plugin; per batch size, buffers and bind groups are
//! built once and reused, so a frame only writes its input and dispatches.
//!
//! Kernels stay inside `Limits::downlevel_defaults()` compute limits (64
//! invocations per workgroup, no workgroup memory, 4 storage buffers per
//! stage), use f32 only, and write every output from one invocation (gathers,
//! never scatter-adds: WGSL has no float atomics).

mod chatter;
mod face;
mod flow;
mod generator;

use std::sync::Arc;
use std::sync::mpsc;

pub use face::{FaceFrame, FaceInput, GpuFace};
pub use flow::{Direction, GpuFlow};
pub use generator::GpuGenerator;

use crate::error::{Error, Result};

/// Which adapters [`GpuContext::open`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterPolicy {
    /// Only hardware GPUs: a software rasteriser (lavapipe, llvmpipe, WARP)
    /// is slower than plugen's CPU path, so `--device auto` skips it.
    HardwareOnly,
    /// Whatever adapter wgpu finds, software ones included (`--device wgpu`).
    Any,
}

/// The compute limits plugen's kernels need (a subset of `Limits::downlevel_defaults()`).
fn required_limits() -> wgpu::Limits {
    wgpu::Limits::downlevel_defaults()
}

/// Why a device cannot run plugen's kernels, or `None` if it can.
fn missing_compute(limits: &wgpu::Limits, flags: wgpu::DownlevelFlags) -> Option<String> {
    if !flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        return Some("the adapter has no compute shaders".into());
    }
    let need = required_limits();
    let checks = [
        (
            "compute invocations per workgroup",
            limits.max_compute_invocations_per_workgroup,
            64,
        ),
        (
            "compute workgroup size x",
            limits.max_compute_workgroup_size_x,
            64,
        ),
        (
            "storage buffers per stage",
            limits.max_storage_buffers_per_shader_stage,
            4,
        ),
        (
            "storage textures per stage",
            limits.max_storage_textures_per_shader_stage,
            1,
        ),
        (
            "workgroups per dimension",
            limits.max_compute_workgroups_per_dimension,
            need.max_compute_workgroups_per_dimension.min(65_535),
        ),
        (
            "storage buffer binding size",
            limits.max_storage_buffer_binding_size as u32,
            64 << 20,
        ),
    ];
    checks
        .iter()
        .find(|(_, have, want)| have < want)
        .map(|(name, have, want)| {
            format!("the device's {name} limit is {have}, plugen's kernels need {want}")
        })
}

/// Whether an adapter is a software rasteriser running on the CPU.
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    info.device_type == wgpu::DeviceType::Cpu
}

/// Device limits for a window renderer that should also run plugen's kernels:
/// on a GL adapter egui asks for WebGL2 limits (every compute limit 0); this
/// asks for GLES 3.1 compute limits where the adapter has them.
pub fn renderer_limits(adapter: &wgpu::Adapter) -> wgpu::Limits {
    let base = if adapter.get_info().backend == wgpu::Backend::Gl {
        let compute = required_limits();
        if compute.check_limits(&adapter.limits())
            && missing_compute(&compute, adapter.get_downlevel_capabilities().flags).is_none()
        {
            compute
        } else {
            wgpu::Limits::downlevel_webgl2_defaults()
        }
    } else {
        wgpu::Limits::default()
    };
    wgpu::Limits {
        max_texture_dimension_2d: adapter.limits().max_texture_dimension_2d.min(8192),
        ..base
    }
}

/// The kernels, compiled once per device.
struct Kernels {
    linear: wgpu::ComputePipeline,
    deconv: wgpu::ComputePipeline,
    pixels_to_buffer: wgpu::ComputePipeline,
    pixels_to_texture: wgpu::ComputePipeline,
}

/// Which kernel a dispatch runs.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    Linear,
    Deconv,
    PixelsToBuffer,
    PixelsToTexture,
}

/// A wgpu device and queue with plugen's kernels compiled on it.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    kernels: Kernels,
    /// The read-back buffer, reused across calls (dropped if a read fails).
    staging: std::sync::Mutex<Option<wgpu::Buffer>>,
}

/// Whether plugen may wait for the GPU (a read-back, an error scope). Not in a
/// browser, where such a wait can only finish after control goes back to the
/// page: there the GPU only draws the face into its texture, the numbers are
/// computed on the CPU, and errors go to the device's uncaptured-error handler
/// (the browser's console).
pub const CAN_WAIT: bool = !cfg!(target_arch = "wasm32");

/// The error an error scope caught, waiting for it where [`CAN_WAIT`]; in a
/// browser none is waited for (see there).
fn wait_for(pop: impl std::future::Future<Output = Option<wgpu::Error>>) -> Option<wgpu::Error> {
    if CAN_WAIT {
        pollster::block_on(pop)
    } else {
        None
    }
}

impl GpuContext {
    /// Opens an adapter of this machine on its own (no window), following
    /// `WGPU_BACKEND` if set, and compiles the kernels. Fails with one line
    /// saying why when no adapter fits `policy`.
    pub fn open(policy: AdapterPolicy) -> Result<Arc<Self>> {
        chatter::filtered(|| Self::open_unfiltered(policy))
    }

    fn open_unfiltered(policy: AdapterPolicy) -> Result<Arc<Self>> {
        let desc = wgpu::InstanceDescriptor {
            backends: wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY),
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        };
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        if adapters.is_empty() {
            return Err(Error::invalid(
                "--device wgpu: no GPU adapter found (on Debian, a software one comes with mesa-vulkan-drivers)",
            ));
        }
        let mut reasons = Vec::new();
        let mut candidates: Vec<&wgpu::Adapter> = adapters
            .iter()
            .filter(|a| {
                let info = a.get_info();
                let why = if policy == AdapterPolicy::HardwareOnly && is_software(&info) {
                    Some("a software adapter".to_string())
                } else {
                    missing_compute(&a.limits(), a.get_downlevel_capabilities().flags)
                };
                if let Some(why) = &why {
                    reasons.push(format!("{} ({why})", info.name));
                }
                why.is_none()
            })
            .collect();
        // Discrete before integrated before virtual before software.
        candidates.sort_by_key(|a| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 2,
            wgpu::DeviceType::Cpu => 3,
        });
        let adapter = candidates.first().ok_or_else(|| {
            Error::invalid(format!(
                "--device wgpu: no usable GPU adapter: {}",
                reasons.join("; ")
            ))
        })?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("plugen compute"),
            required_limits: required_limits().using_resolution(adapter.limits()),
            ..Default::default()
        }))
        .map_err(|e| {
            Error::invalid(format!(
                "--device wgpu: cannot open {}: {e}",
                adapter.get_info().name
            ))
        })?;
        // Errors are caught by error scopes around every call; anything that
        // escapes them is reported, never a panic on the compute thread.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("plugen: wgpu: {}", first_line(&e));
        }));
        Self::with_device(device, queue, adapter.get_info())
    }

    /// Uses a device someone else opened (the editor's renderer). Fails, saying
    /// why, if the device was created without the compute limits the kernels need.
    pub fn from_device(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<Arc<Self>> {
        if let Some(why) =
            missing_compute(&device.limits(), adapter.get_downlevel_capabilities().flags)
        {
            return Err(Error::invalid(format!(
                "{} cannot compute: {why}",
                adapter.get_info().name
            )));
        }
        Self::with_device(device, queue, adapter.get_info())
    }

    fn with_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
    ) -> Result<Arc<Self>> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = |source: &str, entry: &str, label: &str| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let pixels = include_str!("pixels.wgsl");
        let kernels = Kernels {
            linear: pipeline(include_str!("linear.wgsl"), "main", "plugen linear"),
            deconv: pipeline(include_str!("deconv.wgsl"), "main", "plugen deconv"),
            pixels_to_buffer: pipeline(pixels, "to_buffer", "plugen pixels"),
            pixels_to_texture: pipeline(pixels, "to_texture", "plugen face texture"),
        };
        if let Some(e) = wait_for(scope.pop()) {
            return Err(Error::invalid(format!(
                "{}: plugen's kernels do not compile: {}",
                info.name,
                first_line(&e)
            )));
        }
        Ok(Arc::new(Self {
            device,
            queue,
            info,
            kernels,
            staging: std::sync::Mutex::new(None),
        }))
    }

    /// The adapter, as people know it: "NVIDIA GeForce RTX 4070 (Vulkan)".
    /// A browser does not tell its adapter's name: "WebGPU (browser)" then.
    pub fn adapter_name(&self) -> String {
        match (self.info.name.trim(), self.info.backend) {
            ("", wgpu::Backend::BrowserWebGpu) => "WebGPU (browser)".to_string(),
            (name, backend) => format!("{name} ({backend:?})"),
        }
    }

    /// Whether the adapter is a software rasteriser (lavapipe, llvmpipe).
    pub fn is_software(&self) -> bool {
        is_software(&self.info)
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    fn pipeline(&self, k: Kernel) -> &wgpu::ComputePipeline {
        match k {
            Kernel::Linear => &self.kernels.linear,
            Kernel::Deconv => &self.kernels.deconv,
            Kernel::PixelsToBuffer => &self.kernels.pixels_to_buffer,
            Kernel::PixelsToTexture => &self.kernels.pixels_to_texture,
        }
    }

    /// A storage buffer holding `data`.
    fn upload(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let buffer = self.storage(label, data.len().max(1));
        if !data.is_empty() {
            self.queue
                .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        }
        buffer
    }

    /// A zeroed storage buffer of `floats` numbers.
    fn storage(&self, label: &str, floats: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (floats.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding `words` (u32 or f32 bits).
    fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plugen params"),
            size: (words.len() * 4).max(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(words));
        buffer
    }

    /// A bind group for `kernel` with `resources` at bindings 0, 1, 2, ….
    fn bind(&self, kernel: Kernel, resources: &[(u32, wgpu::BindingResource)]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .iter()
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.pipeline(kernel).get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Records `steps` in one compute pass.
    fn record(&self, encoder: &mut wgpu::CommandEncoder, steps: &[Step]) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("plugen"),
            timestamp_writes: None,
        });
        for s in steps {
            pass.set_pipeline(self.pipeline(s.kernel));
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(s.workgroups[0], s.workgroups[1], s.workgroups[2]);
        }
    }

    /// Runs `f` (which records and submits work) inside validation and
    /// out-of-memory error scopes, turning a captured error into one line.
    fn checked<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let errors = [wait_for(validation.pop()), wait_for(oom.pop())];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(Error::invalid(format!(
                "{} on {}: {}",
                what,
                self.info.name,
                first_line(&e)
            )));
        }
        out
    }

    /// Starts copying the first `floats` numbers of `src` back to the CPU,
    /// after all work submitted so far, without waiting: await
    /// [`PendingRead::finish`] for them. In a browser the copy completes when
    /// control goes back to the page; elsewhere the device is polled here.
    pub(super) fn start_read(&self, src: &wgpu::Buffer, floats: usize) -> PendingRead {
        let bytes = (floats * 4).max(4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plugen async readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let state = Arc::new(std::sync::Mutex::new(MapState::default()));
        let landed = state.clone();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            if let Ok(mut s) = landed.lock() {
                s.done = Some(r.is_ok());
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        });
        if CAN_WAIT {
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
        PendingRead {
            staging,
            bytes,
            floats,
            state,
            name: self.info.name.clone(),
        }
    }

    /// Copies the first `floats` numbers of `src` back to the CPU, after all
    /// work submitted so far (waits for the GPU). Concurrent callers each get
    /// a buffer; one is kept for the next call.
    fn read_back(&self, src: &wgpu::Buffer, floats: usize) -> Result<Vec<u32>> {
        if !CAN_WAIT {
            return Err(Error::invalid(format!(
                "{}: results cannot be waited for in a browser",
                self.info.name
            )));
        }
        let bytes = (floats * 4).max(4) as u64;
        let reused = self
            .staging
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .filter(|b| b.size() >= bytes);
        let staging = reused.unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("plugen readback"),
                size: bytes.next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::invalid(format!("{}: {e}", self.info.name)))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            _ => {
                return Err(Error::invalid(format!(
                    "{}: reading results back failed",
                    self.info.name
                )));
            }
        }
        let data = {
            let view = staging
                .get_mapped_range(..bytes)
                .map_err(|e| Error::invalid(format!("{}: {e}", self.info.name)))?;
            bytemuck::cast_slice::<u8, u32>(&view)[..floats].to_vec()
        };
        staging.unmap();
        if let Ok(mut s) = self.staging.lock() {
            *s = Some(staging);
        }
        Ok(data)
    }
}

/// One recorded dispatch.
struct Step {
    kernel: Kernel,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// Parameters of `linear.wgsl`.
struct LinearParams {
    rows: usize,
    k: usize,
    m: usize,
    input: (usize, usize),
    output: (usize, usize),
    /// 0: store, 1: add, 2: subtract.
    mode: u32,
    /// Leaky ReLU slope; `None`: no activation.
    slope: Option<f32>,
    bias_period: usize,
}

impl GpuContext {
    /// A dispatch of `linear.wgsl`: rows of `x` (stride, offset) times `w` (k, m) plus `b` into `y`.
    fn linear(
        &self,
        p: &LinearParams,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        b: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Step {
        let words = [
            p.rows as u32,
            p.k as u32,
            p.m as u32,
            p.input.0 as u32,
            p.input.1 as u32,
            p.output.0 as u32,
            p.output.1 as u32,
            p.mode,
            u32::from(p.slope.is_some()),
            p.slope.unwrap_or(0.0).to_bits(),
            p.bias_period.max(1) as u32,
            0,
        ];
        let params = self.uniform(&words);
        Step {
            kernel: Kernel::Linear,
            bind_group: self.bind(
                Kernel::Linear,
                &[
                    (0, params.as_entire_binding()),
                    (1, x.as_entire_binding()),
                    (2, w.as_entire_binding()),
                    (3, b.as_entire_binding()),
                    (4, y.as_entire_binding()),
                ],
            ),
            workgroups: [p.m.div_ceil(64) as u32, p.rows as u32, 1],
        }
    }
}

fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Largest batch one dispatch chain handles; bigger inputs go in chunks.
pub const MAX_BATCH: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_needs_are_checked() {
        let all = wgpu::DownlevelFlags::all();
        // The limits eframe asks for on a GL adapter: no compute at all.
        let why = missing_compute(&wgpu::Limits::downlevel_webgl2_defaults(), all);
        assert!(why.is_some_and(|w| w.contains("limit is 0")));
        // No compute shaders, whatever the limits.
        let why = missing_compute(&wgpu::Limits::default(), wgpu::DownlevelFlags::empty());
        assert_eq!(why.as_deref(), Some("the adapter has no compute shaders"));
        // What plugen asks for, and WebGPU's defaults, are enough.
        assert_eq!(missing_compute(&required_limits(), all), None);
        assert_eq!(missing_compute(&wgpu::Limits::default(), all), None);
    }
}

/// Where a buffer mapping's outcome lands, and who waits for it.
#[derive(Default)]
struct MapState {
    done: Option<bool>,
    waker: Option<std::task::Waker>,
}

/// A read-back under way ([`GpuContext::start_read`]).
pub(super) struct PendingRead {
    staging: wgpu::Buffer,
    bytes: u64,
    floats: usize,
    state: Arc<std::sync::Mutex<MapState>>,
    name: String,
}

impl PendingRead {
    /// The numbers, once the GPU has copied them.
    pub(super) async fn finish(self) -> Result<Vec<u32>> {
        let mapped = std::future::poll_fn(|cx| match self.state.lock() {
            Ok(mut s) => match s.done.take() {
                Some(ok) => std::task::Poll::Ready(ok),
                None => {
                    s.waker = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            },
            Err(_) => std::task::Poll::Ready(false),
        })
        .await;
        if !mapped {
            return Err(Error::invalid(format!(
                "{}: reading results back failed",
                self.name
            )));
        }
        let data = {
            let view = self
                .staging
                .get_mapped_range(..self.bytes)
                .map_err(|e| Error::invalid(format!("{}: {e}", self.name)))?;
            bytemuck::cast_slice::<u8, u32>(&view)[..self.floats].to_vec()
        };
        self.staging.unmap();
        Ok(data)
    }
}
