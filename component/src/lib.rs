//! edge-classify: a TFLite MobileNet executor that runs exactly like TFLite's reference kernels.
//!
//! Data flows one way, one module per arrow:
//! `tflite` (zero-copy reader) → `graph` (validated IR) → `plan` (packed weights, one arena,
//! prepared requantization) → `kernels::{fp32,int8,int16}` (fixed-point arithmetic in `kernels::fixedpoint`); images go through `image`
//! (decode, resize) and `preprocess` (which pixel convention a model takes). `model` is the public API; `quantize` the post-training quantizer
//! (calibration, then `graph::convert` and `tflite::write`); `bindings` only converts WIT types.

pub mod embedded;
pub mod error;
pub mod graph;
pub mod image;
pub mod kernels;
pub mod model;
pub mod plan;
pub mod preprocess;
pub mod quantize;
pub mod tflite;

/// The `edge:classify` exports of `dist/classifier.wasm`. Off for crates that link this one into a
/// component of their own (`wasi-nn/`), which would otherwise export `edge:classify` too.
#[cfg(all(target_arch = "wasm32", feature = "wit"))]
mod bindings;

pub use error::{Error, Result};
