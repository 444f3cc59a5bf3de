//! The apps in `dist/`, run as a user runs them: `classify.wasm` through wasmtime-wasi exactly as
//! `wasmtime run` would (arguments, preopened directories, stdout, stderr, exit code),
//! `classify-http.wasm` through wasmtime-wasi-http behind a real HTTP listener on 127.0.0.1, and
//! `doorbell.wasm` like `classify.wasm`, and `dist/worker/` (the Cloudflare Worker) in workerd. Expected answers come from `golden/` (TFLite's reference
//! outputs), never from a previous run of ours.
//!
//! Without the `dist/` files (built by `cargo xtask dist`, which `cargo xtask test` runs first),
//! every test fails and says so.

mod common;

mod bake;
mod cli;
mod doorbell;
mod http;
mod http_contract;
mod prepared;
mod wasi_nn;
mod worker;
