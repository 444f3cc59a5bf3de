//! A doorbell camera's decision: is a person at the door? Shipped as `dist/doorbell.wasm`, a
//! `wasi:cli/run` component composed with `dist/classifier.wasm`, with the Visual Wake Words
//! person detector (as TFLite Micro ships it) built in, as it would be on the device.
//!
//! ```text
//! wasmtime run --dir ../shared/images::/images dist/doorbell.wasm /images/person.bmp /images/no_person.bmp
//! /images/person.bmp: person (0.94)
//! /images/no_person.bmp: no person (0.72)
//! ```
//!
//! Camera frames are 96x96 8-bit BMPs whose pixel bytes are the model's int8 input, which is how
//! TFLite Micro's person-detection test feeds them; any other image (a PNG, a JPEG, a photo of
//! another size) goes through the classifier's own decode, gray conversion and resize.

// Used by `app` only, which the native build (its unit tests' host) leaves out.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod frame;

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(target_arch = "wasm32")]
fn main() {
    std::process::exit(app::main());
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("doorbell: this example runs as a component: build it with `cargo xtask dist`");
    std::process::exit(2);
}
