//! The engine abstraction the conformance suite is written against.
//!
//! One suite, many runtimes: every test takes a `&dyn Runtime`, so adding an engine means adding
//! one implementation of these two traits, not new tests. Implementations:
//! [`crate::wasmtime_rt::WasmtimeRuntime`] for each [`crate::wasmtime_rt::Compiler`] (Cranelift, Winch,
//! Pulley), [`crate::jco_rt::JcoRuntime`] (jco-transpiled JS in Node, i.e. V8), and
//! [`crate::native_rt::NativeRuntime`] (the `edge-classify` crate called natively, the reference the
//! runtime matrix compares every other engine with).
//!
//! The shape mirrors the WIT resource: a runtime turns bytes into a [`Model`] (one guest
//! `model` resource, owning whatever per-instance state the engine needs, e.g. a wasmtime
//! `Store`), and a model answers `info`, `classify` and `infer`.

use crate::api::{Calibration, Call, LoadOptions, ModelInfo, Precision, Prediction, Tensor};

/// An engine able to run the classifier component.
pub trait Runtime: Send + Sync {
    /// Short stable name used in test output and snapshot metadata, e.g. `wasmtime-cranelift`.
    fn name(&self) -> &str;

    /// `model.load`: parse a TFLite flatbuffer and prepare it to run.
    fn load(&self, tflite: &[u8], options: &LoadOptions) -> Call<Box<dyn Model>>;

    /// `embedded`: the model built into the component, if any.
    fn embedded(&self, options: &LoadOptions) -> Call<Box<dyn Model>>;

    /// `quantizer.quantize`: a TFLite model in, the same model at `target` out.
    fn quantize(&self, tflite: &[u8], target: Precision, calibration: &Calibration) -> Call<Vec<u8>>;
}

/// A loaded model (one guest `model` resource).
///
/// Methods take `&mut self` because engines need exclusive access to the instance to call into
/// it. A model is `Send` so tests may hand it to another thread, but it is never shared.
pub trait Model: Send {
    /// `model.info`. Only an engine failure is an error: the WIT function is infallible.
    fn info(&mut self) -> anyhow::Result<ModelInfo>;

    /// `model.classify`: decode, resize, normalize, run, top-k.
    fn classify(&mut self, image: &[u8], top_k: u32) -> Call<Vec<Prediction>>;

    /// `model.infer`: run on a raw input tensor, return the raw output tensor.
    fn infer(&mut self, input: &Tensor) -> Call<Tensor>;

    /// The largest linear memory this model's instance has had, where the engine can tell.
    fn peak_memory_bytes(&mut self) -> Option<u64> {
        None
    }
}
