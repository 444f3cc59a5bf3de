//! Conformance suite for `dist/classifier.wasm`: the component is run through its WIT boundary
//! and compared against `golden/` (TFLite reference outputs).
//!
//! - [`api`]: runtime-neutral mirror of the WIT types.
//! - [`runtime`]: the [`Runtime`] / [`Model`] traits every engine implements.
//! - [`wasmtime_rt`]: wasmtime (Cranelift, Winch, Pulley); [`native_rt`]: the crate linked natively;
//!   [`limits`]: what one store may use (memory, instantiation, time), for every host here.
//! - [`golden`], [`npy`]: the manifest and its `.npy` tensors.
//! - [`paths`]: where everything is, and the environment overrides.
//! - [`budget_images`]: images at the decoders' memory budgets; [`workerd`], [`apps`]: the servers the
//!   apps tests run.
//!
//! The tests themselves are in `tests/conformance/` (one test binary, so the component is
//! compiled once per run).

pub mod api;
pub mod apps;
pub mod budget_images;
pub mod golden;
pub mod jco_rt;
pub mod limits;
pub mod native_rt;
pub mod npy;
pub mod paths;
pub mod runtime;
pub mod wasi_nn;
pub mod wasmtime_rt;
pub mod workerd;

pub use api::*;
pub use runtime::{Model, Runtime};
