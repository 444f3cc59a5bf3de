//! What `dist/classifier.wasm` asks of its host: no capability at all. It is built for
//! `wasm32-unknown-unknown`, so any import with functions (above all filesystem, sockets or
//! HTTP) means a dependency pulled in something it should not have.
//!
//! The one import it does have is `edge:classify/types`: in WIT, a world that exports
//! `classifier` without also exporting `types` (which `classifier` `use`s) imports `types`. It
//! holds type definitions only and gives the guest nothing, so it is allowed here, and only it.
//! (Adding `export types;` to the world would turn it into an export.)

use crate::common::wasmtime;

const OWN_TYPES: &str = "edge:classify/types@";

#[test]
fn the_component_imports_no_wasi_interface() {
    let imports = wasmtime().imports();
    for forbidden in ["wasi:filesystem", "wasi:sockets", "wasi:http", "wasi:"] {
        let hits: Vec<_> = imports
            .iter()
            .filter(|i| i.name.starts_with(forbidden))
            .collect();
        assert!(
            hits.is_empty(),
            "the component imports {forbidden}: {hits:?}"
        );
    }
}

#[test]
fn the_component_imports_nothing_but_its_own_type_definitions() {
    let imports = wasmtime().imports();
    let unexpected: Vec<_> = imports
        .iter()
        .filter(|i| !i.capabilities.is_empty() || !i.name.starts_with(OWN_TYPES))
        .collect();
    assert!(
        unexpected.is_empty(),
        "the component imports more than the edge:classify/types definitions: {unexpected:?}"
    );
}

#[test]
fn the_component_exports_the_classifier_interface() {
    let exports = wasmtime().exports();
    assert!(
        exports
            .iter()
            .any(|e| e == "edge:classify/classifier@0.1.0"),
        "edge:classify/classifier@0.1.0 is not exported; exports: {exports:?}"
    );
}
