//! [`Runtime`] on wasmtime (Cranelift), through `wasmtime::component::bindgen!` on `../wit`.
//!
//! Each loaded model gets its own `Store` and component instance. Instantiating a pre-linked,
//! already compiled component is cheap (copy-on-write memory images), and it isolates models:
//! a trap poisons only the instance it happened in, so a robustness test can keep going.
//!
//! Linking: the component is built for `wasm32-unknown-unknown` and imports no capability (only
//! the type definitions of `edge:classify/types`), but the linker still carries WASI Preview 2, backed by a context that grants nothing (no preopened
//! directories, no network, no environment, no arguments; stderr only, for guest panic
//! messages). A `wasm32-wasip2` build of the same guest therefore runs here unchanged, while
//! `tests/conformance/imports.rs` separately asserts what `dist/classifier.wasm` imports:
//! linking WASI is about what the suite *can* run, the import test about what we *ship*.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, OptLevel, Store, Strategy};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::api;
pub use crate::limits::MEMORY_LIMIT_BYTES;
use crate::limits::{deadline_ticks, tick_epochs, LimitHit, Limits, PeakLimits};
use crate::runtime::{Model, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "classify",
});

use exports::edge::classify::types as wit;

/// wasmtime 48 has its own error type; convert it so `.context()` from anyhow applies.
trait IntoAnyhow<T> {
    fn anyhow(self) -> Result<T>;
}

impl<T> IntoAnyhow<T> for wasmtime::Result<T> {
    fn anyhow(self) -> Result<T> {
        self.map_err(anyhow::Error::from)
    }
}

/// One top-level import of the component.
#[derive(Clone, Debug)]
pub struct Import {
    /// e.g. `wasi:filesystem/types@0.2.0`
    pub name: String,
    /// What the import provides beyond type definitions: functions, resources, modules,
    /// components (for an instance, the names of such exports). Empty for a types-only
    /// interface.
    pub capabilities: Vec<String>,
}

/// Per-store host state.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: PeakLimits,
    deadline: Option<Duration>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The classifier component compiled and linked for one wasmtime engine configuration.
pub struct WasmtimeRuntime {
    name: String,
    engine: Engine,
    component: Component,
    pre: ClassifyPre<HostState>,
    limits: Limits,
}

/// The three ways wasmtime can execute the component. All of them must give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compiler {
    /// The optimizing compiler (wasmtime's default).
    Cranelift,
    /// The single-pass baseline compiler.
    Winch,
    /// Cranelift targeting the Pulley interpreter's bytecode: no native code at all.
    Pulley,
}

impl Compiler {
    pub const ALL: [Compiler; 3] = [Compiler::Cranelift, Compiler::Winch, Compiler::Pulley];

    pub fn runtime_name(self) -> &'static str {
        match self {
            Compiler::Cranelift => "wasmtime-cranelift",
            Compiler::Winch => "wasmtime-winch",
            Compiler::Pulley => "wasmtime-pulley",
        }
    }
}

impl WasmtimeRuntime {
    /// The engine configuration every wasmtime runtime shares, for a given compiler.
    ///
    /// Component model and SIMD128 on; relaxed SIMD off, because its results may differ between
    /// hosts and the suite checks that every runtime gives the same bits.
    pub fn config(compiler: Compiler) -> Result<Config> {
        let mut config = Config::new();
        config.wasm_component_model(true).wasm_simd(true).wasm_relaxed_simd(false);
        // `perf record` can name the guest's functions in a profile (writes /tmp/perf-<pid>.map).
        if std::env::var_os("EDGE_CLASSIFY_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        match compiler {
            Compiler::Cranelift => {
                config.strategy(Strategy::Cranelift).cranelift_opt_level(OptLevel::Speed);
            }
            Compiler::Winch => {
                config.strategy(Strategy::Winch);
            }
            Compiler::Pulley => {
                config.strategy(Strategy::Cranelift).cranelift_opt_level(OptLevel::Speed);
                // The interpreter matching the host's pointer width and endianness.
                config.target("pulley64").anyhow().context("selecting the pulley64 target")?;
            }
        }
        Ok(config)
    }

    /// Compile `component_path` with Cranelift.
    pub fn cranelift(component_path: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        Self::new(Compiler::Cranelift, component_path, cache_dir)
    }

    /// Compile `component_path` for `compiler`.
    ///
    /// With `cache_dir`, the compiled artifact is stored there keyed by the component's sha256
    /// and the engine's compatibility hash, so an unchanged `dist/classifier.wasm` is compiled
    /// once, not on every test run.
    pub fn new(compiler: Compiler, component_path: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        Self::with_limits(compiler, component_path, cache_dir, Limits::CLASSIFIER)
    }

    /// [`WasmtimeRuntime::new`] with other limits for every instance. A deadline (per call: a
    /// model instance lives for many) turns epoch interruption on for this runtime's engine; in
    /// the runtime matrix it would have to allow for Pulley, ~15 s an fp32 inference.
    pub fn with_limits(
        compiler: Compiler,
        component_path: &Path,
        cache_dir: Option<&Path>,
        limits: Limits,
    ) -> Result<Self> {
        let name = compiler.runtime_name();
        let mut config = Self::config(compiler)?;
        // Not in `config` itself: bench-tract makes stores of its own from it, and with epoch
        // interruption on, a store that sets no deadline traps at once.
        config.epoch_interruption(limits.deadline.is_some());
        let engine = Engine::new(&config).anyhow().with_context(|| format!("creating the {name} wasmtime engine"))?;
        let bytes = std::fs::read(component_path)
            .with_context(|| format!("reading the component {}", component_path.display()))?;
        let component = match cache_dir {
            Some(dir) => compile_cached(&engine, &bytes, dir),
            None => Component::new(&engine, &bytes).anyhow(),
        }
        .with_context(|| format!("compiling {} with {name}", component_path.display()))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).anyhow().context("adding WASI Preview 2 to the linker")?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .anyhow()
            .with_context(|| format!("linking {}", component_path.display()))?;
        let pre = ClassifyPre::new(instance_pre)
            .anyhow()
            .context("the component does not export the edge:classify `classify` world")?;

        if limits.deadline.is_some() {
            tick_epochs(&engine);
        }
        Ok(Self { name: name.to_owned(), engine, component, pre, limits })
    }

    /// The same runtime under another name (the matrix runs two builds of the component per engine).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The component's top-level imports, with what each one would give the guest.
    pub fn imports(&self) -> Vec<Import> {
        use wasmtime::component::types::ComponentItem;
        self.component
            .component_type()
            .imports(&self.engine)
            .map(|(name, item)| {
                let capabilities = match &item.ty {
                    ComponentItem::Type(_) => Vec::new(),
                    ComponentItem::ComponentInstance(instance) => instance
                        .exports(&self.engine)
                        .filter(|(_, item)| !matches!(item.ty, ComponentItem::Type(_)))
                        .map(|(export, _)| export.to_owned())
                        .collect(),
                    _ => vec![name.to_owned()],
                };
                Import { name: name.to_owned(), capabilities }
            })
            .collect()
    }

    /// Names of the component's top-level exports.
    pub fn exports(&self) -> Vec<String> {
        self.component.component_type().exports(&self.engine).map(|(name, _)| name.to_owned()).collect()
    }

    fn new_store(&self) -> Store<HostState> {
        let state = HostState {
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .inherit_stderr()
                .build(),
            table: ResourceTable::new(),
            limits: PeakLimits::new(self.limits.memory_bytes),
            deadline: self.limits.deadline,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        arm(&mut store);
        store
    }

    fn instantiate(&self) -> Result<(Store<HostState>, Classify)> {
        let mut store = self.new_store();
        let bindings = self.pre.instantiate(&mut store).anyhow().context("instantiating the classifier component")?;
        Ok((store, bindings))
    }

    fn wrap(
        store: Store<HostState>,
        bindings: Classify,
        result: Result<ResourceAny, wit::Error>,
    ) -> api::Call<Box<dyn Model>> {
        Ok(match result {
            Ok(handle) => Ok(Box::new(WasmtimeModel { store, bindings, handle: Some(handle) })),
            Err(error) => Err(from_wit_error(error)),
        })
    }
}

impl Runtime for WasmtimeRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn load(&self, tflite: &[u8], options: &api::LoadOptions) -> api::Call<Box<dyn Model>> {
        let (mut store, bindings) = self.instantiate()?;
        let result = bindings
            .edge_classify_classifier()
            .model()
            .call_load(&mut store, tflite, &to_wit_options(options))
            .map_err(|e| explain(&store, e))
            .with_context(|| format!("calling model.load ({} bytes) on {}", tflite.len(), self.name))?;
        Self::wrap(store, bindings, result)
    }

    fn quantize(&self, tflite: &[u8], target: api::Precision, c: &api::Calibration) -> api::Call<Vec<u8>> {
        let (mut store, bindings) = self.instantiate()?;
        let cal =
            exports::edge::classify::quantizer::Calibration { images: c.images.clone(), mean: c.mean, std: c.std };
        let result = bindings
            .edge_classify_quantizer()
            .call_quantize(&mut store, tflite, to_wit_precision(target), &cal)
            .map_err(|e| explain(&store, e))
            .with_context(|| format!("calling quantizer.quantize ({} bytes) on {}", tflite.len(), self.name))?;
        Ok(result.map_err(from_wit_error))
    }

    fn embedded(&self, options: &api::LoadOptions) -> api::Call<Box<dyn Model>> {
        let (mut store, bindings) = self.instantiate()?;
        let result = bindings
            .edge_classify_classifier()
            .call_embedded(&mut store, &to_wit_options(options))
            .map_err(|e| explain(&store, e))
            .with_context(|| format!("calling embedded on {}", self.name))?;
        Self::wrap(store, bindings, result)
    }
}

/// Starts the deadline of the next call: it is per call, not per instance, since a model instance
/// lives for many calls. Without epoch interruption (no deadline) it changes nothing.
fn arm(store: &mut Store<HostState>) {
    let ticks = deadline_ticks(store.data().deadline);
    store.set_epoch_deadline(ticks);
}

fn explain(store: &Store<HostState>, error: wasmtime::Error) -> anyhow::Error {
    LimitHit::explain(error, &store.data().limits, store.data().deadline)
}

/// One instance of the component holding one `model` resource.
struct WasmtimeModel {
    store: Store<HostState>,
    bindings: Classify,
    /// `None` only during drop.
    handle: Option<ResourceAny>,
}

impl WasmtimeModel {
    fn handle(&self) -> ResourceAny {
        self.handle.expect("model handle used after drop")
    }
}

impl Model for WasmtimeModel {
    fn peak_memory_bytes(&mut self) -> Option<u64> {
        Some(self.store.data().limits.peak as u64)
    }

    fn info(&mut self) -> Result<api::ModelInfo> {
        let handle = self.handle();
        arm(&mut self.store);
        let info = self
            .bindings
            .edge_classify_classifier()
            .model()
            .call_info(&mut self.store, handle)
            .map_err(|e| explain(&self.store, e))
            .context("calling model.info")?;
        Ok(from_wit_model_info(info))
    }

    fn classify(&mut self, image: &[u8], top_k: u32) -> api::Call<Vec<api::Prediction>> {
        let handle = self.handle();
        arm(&mut self.store);
        let result = self
            .bindings
            .edge_classify_classifier()
            .model()
            .call_classify(&mut self.store, handle, image, top_k)
            .map_err(|e| explain(&self.store, e))
            .with_context(|| format!("calling model.classify ({} bytes, top {top_k})", image.len()))?;
        Ok(result
            .map(|predictions| {
                predictions
                    .into_iter()
                    .map(|p| api::Prediction { index: p.index, label: p.label, score: p.score })
                    .collect()
            })
            .map_err(from_wit_error))
    }

    fn infer(&mut self, input: &api::Tensor) -> api::Call<api::Tensor> {
        let handle = self.handle();
        arm(&mut self.store);
        let result = self
            .bindings
            .edge_classify_classifier()
            .model()
            .call_infer(&mut self.store, handle, &to_wit_tensor(input))
            .map_err(|e| explain(&self.store, e))
            .with_context(|| format!("calling model.infer (input shape {:?})", input.shape))?;
        Ok(result.map(from_wit_tensor).map_err(from_wit_error))
    }
}

impl Drop for WasmtimeModel {
    fn drop(&mut self) {
        // Run the guest destructor; the store (and the whole instance) goes away right after, so
        // a failure here (e.g. the instance already trapped) changes nothing.
        if let Some(handle) = self.handle.take() {
            arm(&mut self.store);
            let _ = handle.resource_drop(&mut self.store);
        }
    }
}

/// Compile, or load a previously compiled artifact from `dir`.
fn compile_cached(engine: &Engine, bytes: &[u8], dir: &Path) -> Result<Component> {
    let path = cache_path(engine, bytes, dir);
    if path.exists() {
        // SAFETY: the file was produced by `Component::serialize` below for this exact input and
        // engine configuration (both are in the file name), in a directory only this suite writes.
        // wasmtime still checks the header and refuses an incompatible artifact, in which case
        // we recompile.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component = Component::new(engine, bytes).anyhow()?;
    // The cache is an optimisation: failing to write it is not an error.
    if let Ok(serialized) = component.serialize() {
        if std::fs::create_dir_all(dir).is_ok() {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, serialized).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }
    Ok(component)
}

fn cache_path(engine: &Engine, bytes: &[u8], dir: &Path) -> PathBuf {
    let mut engine_hash = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut engine_hash);
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("classifier-{hex}-{:016x}.cwasm", engine_hash.finish()))
}

// ---- conversions between the bindgen types and the runtime-neutral ones -------------------

fn to_wit_precision(p: api::Precision) -> wit::Precision {
    match p {
        api::Precision::Fp32 => wit::Precision::Fp32,
        api::Precision::Int16 => wit::Precision::Int16,
        api::Precision::Int8 => wit::Precision::Int8,
    }
}

fn from_wit_precision(p: wit::Precision) -> api::Precision {
    match p {
        wit::Precision::Fp32 => api::Precision::Fp32,
        wit::Precision::Int16 => api::Precision::Int16,
        wit::Precision::Int8 => api::Precision::Int8,
    }
}

fn from_wit_element(e: wit::ElementType) -> api::ElementType {
    match e {
        wit::ElementType::Float32 => api::ElementType::Float32,
        wit::ElementType::Uint8 => api::ElementType::Uint8,
        wit::ElementType::Int8 => api::ElementType::Int8,
        wit::ElementType::Int16 => api::ElementType::Int16,
    }
}

fn to_wit_options(o: &api::LoadOptions) -> wit::LoadOptions {
    wit::LoadOptions {
        precision: o.precision.map(to_wit_precision),
        labels: o.labels.clone(),
        mean: o.mean,
        std: o.std,
    }
}

fn to_wit_tensor(t: &api::Tensor) -> wit::Tensor {
    wit::Tensor {
        shape: t.shape.clone(),
        data: match &t.data {
            api::TensorData::Float32(v) => wit::TensorData::Float32(v.clone()),
            api::TensorData::Uint8(v) => wit::TensorData::Uint8(v.clone()),
            api::TensorData::Int8(v) => wit::TensorData::Int8(v.clone()),
            api::TensorData::Int16(v) => wit::TensorData::Int16(v.clone()),
        },
    }
}

fn from_wit_tensor(t: wit::Tensor) -> api::Tensor {
    api::Tensor {
        shape: t.shape,
        data: match t.data {
            wit::TensorData::Float32(v) => api::TensorData::Float32(v),
            wit::TensorData::Uint8(v) => api::TensorData::Uint8(v),
            wit::TensorData::Int8(v) => api::TensorData::Int8(v),
            wit::TensorData::Int16(v) => api::TensorData::Int16(v),
        },
    }
}

fn from_wit_tensor_info(t: wit::TensorInfo) -> api::TensorInfo {
    api::TensorInfo {
        shape: t.shape,
        element: from_wit_element(t.element),
        quantization: t.quantization.map(|q| api::Quantization { scale: q.scale, zero_point: q.zero_point }),
    }
}

fn from_wit_model_info(m: wit::ModelInfo) -> api::ModelInfo {
    api::ModelInfo {
        name: m.name,
        description: m.description,
        version: m.version,
        precision: from_wit_precision(m.precision),
        input: from_wit_tensor_info(m.input),
        output: from_wit_tensor_info(m.output),
        classes: m.classes,
        operators: m.operators,
        macs: m.macs,
        parameter_bytes: m.parameter_bytes,
    }
}

fn from_wit_error(e: wit::Error) -> api::ApiError {
    let (kind, message) = match e {
        wit::Error::MalformedModel(m) => (api::ErrorKind::MalformedModel, m),
        wit::Error::UnsupportedModel(m) => (api::ErrorKind::UnsupportedModel, m),
        wit::Error::InvalidImage(m) => (api::ErrorKind::InvalidImage, m),
        wit::Error::InvalidInput(m) => (api::ErrorKind::InvalidInput, m),
        wit::Error::TooLarge(m) => (api::ErrorKind::TooLarge, m),
    };
    api::ApiError { kind, message }
}
