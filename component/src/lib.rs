//! edge-classify: a TFLite MobileNet executor that runs exactly like TFLite's reference kernels.
//!
//! Data flows one way, one module per arrow:
//! `tflite` (zero-copy reader) → `graph` (validated IR) → `plan` (packed weights, one arena,
//! prepared requantization) → `kernels::{fp32,int8,int16}` (fixed-point arithmetic in
//! `kernels::fixedpoint`). `prepared` is what `load` derives from a file, and its bytes (what a
//! component embeds); `model` wraps it with arenas as the public API, in `types`' plain types.
//! Everything fed to a model goes through `input` (image bytes → pixels by `image`'s decode and
//! resize → the executing tensor). `quantize` is the post-training quantizer (calibration through
//! `input`, then `graph::convert` and `tflite::write`); `bindings` only converts WIT types.

pub mod embedded;
pub mod error;
pub mod graph;
pub mod image;
pub mod input;
pub mod kernels;
pub mod model;
pub mod plan;
pub mod prepared;
pub mod quantize;
pub mod tflite;
pub mod types;

/// The `edge:classify` exports of `dist/classifier.wasm`. Off for crates that link this one into a
/// component of their own (`wasi-nn/`), which would otherwise export `edge:classify` too.
#[cfg(all(target_arch = "wasm32", feature = "wit"))]
mod bindings;

pub use error::{Error, Result};
