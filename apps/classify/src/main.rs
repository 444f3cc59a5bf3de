//! `classify`: the command-line front end, shipped as `dist/classify.wasm` (a `wasi:cli/run`
//! component composed with `dist/classifier.wasm`).
//!
//! ```text
//! wasmtime run --dir ./photos::/photos dist/classify.wasm /photos/cat.jpg
//! wasmtime run --dir .::/ dist/classify.wasm --model /m.tflite --labels /l.txt --top 3 --json a.png
//! ```
//!
//! Argument parsing and output formatting are plain Rust, unit-tested natively; only `app`
//! (reading files, calling the classifier) needs the wasm32 build.

// Used by `app` only, which the native build (its unit tests' host) leaves out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod args;

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(target_arch = "wasm32")]
fn main() {
    std::process::exit(app::main());
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "classify: this program runs as a component: build it with `cargo xtask dist` and run dist/classify.wasm"
    );
    std::process::exit(2);
}
