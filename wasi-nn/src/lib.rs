//! `dist/wasi-nn.wasm`: the standard `wasi:nn` interfaces (`wit/deps/wasi-nn`, version
//! 0.2.0-rc-2024-10-28) served by the edge-classify executor inside the component, so an unmodified
//! wasi-nn guest composed with it classifies on any host, no ML backend in the host needed.
//!
//! `provider` is the whole behaviour (graphs, tensors, errors), plain Rust tested natively;
//! `bindings` only converts the generated WIT types, in wasm32 builds.

pub mod provider;

#[cfg(target_arch = "wasm32")]
mod bindings;
