//! What `dist/classifier.wasm` asks of its host: nothing. It is built for `wasm32-unknown-unknown`
//! and its world exports `types` as well as `classifier`, so any import at all (above all
//! filesystem, sockets or HTTP) means a dependency pulled in something it should not have.

use crate::common::wasmtime;

#[test]
fn the_component_imports_nothing() {
    let imports = wasmtime().imports();
    let wasi: Vec<_> = imports
        .iter()
        .filter(|i| ["wasi:filesystem", "wasi:sockets", "wasi:http"].iter().any(|f| i.name.starts_with(f)))
        .collect();
    assert!(wasi.is_empty(), "the component imports filesystem, sockets or HTTP: {wasi:?}");
    assert!(imports.is_empty(), "the component has imports: {imports:?}");
}

#[test]
fn the_component_exports_the_classifier_interface() {
    let exports = wasmtime().exports();
    assert!(
        exports.iter().any(|e| e == "edge:classify/classifier@0.1.0"),
        "edge:classify/classifier@0.1.0 is not exported; exports: {exports:?}"
    );
}
