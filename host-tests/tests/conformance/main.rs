//! The conformance suite: every check goes through the component's WIT boundary.
//!
//! One test binary (this one) so that `dist/classifier.wasm` is compiled once per run and shared
//! by all tests (see `common::runtimes`). Without `dist/classifier.wasm` every test fails and says
//! to run `cargo xtask dist`.
//!
//! - `exactness`: integer models vs TFLite's reference kernels, within 1 LSB (goal 0).
//! - `float`: the fp32 model within 1e-5 absolute.
//! - `fidelity`: every model at fp32/int16/int8 against its fp32 reference within
//!   `golden/tolerances.toml`; our quantizer's files against TFLite within 1 LSB.
//! - `classify`: image path top-1 equals the reference's, top-5 snapshots (insta).
//! - `image_pipeline`: decode + resize + normalize natively against the golden input tensors.
//! - `jpeg`: our JPEG decoder against Pillow's decodes of `golden/jpeg/` and the shared photos, exactly.
//! - `robustness`: garbage models, images and tensors give an error, never a trap.
//! - `imports`: what the shipped component imports and exports.
//! - `info`: `model.info` against the manifest; `embedded`.
//! - `memory`: peak linear memory of `classify` on large images, and the decode budget.
//! - `golden_files`: the golden data against its own manifest (no component involved).
//! - `dispatch`: the kernel of every layer of every golden model in the SIMD build, pinned (native).

mod common;

mod classify;
mod dispatch;
mod exactness;
mod fidelity;
mod float;
mod golden_files;
mod image_pipeline;
mod imports;
mod info;
mod jpeg;
mod memory;
mod robustness;
