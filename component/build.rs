//! The model built into the component (`classifier.embedded`), chosen by the build: `cargo xtask
//! dist` sets `EDGE_CLASSIFY_EMBEDDED` to the prepared model file (see `src/plan/persist.rs`)
//! and `EDGE_CLASSIFY_EMBEDDED_LABELS` to its labels. Without them (native builds, a plain
//! `cargo build`) the component has no embedded model and `embedded` says so.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    // 8-byte aligned, so the prepared model's weight arrays can be borrowed in place.
    let file = |var: &str| -> String {
        println!("cargo:rerun-if-env-changed={var}");
        match std::env::var(var) {
            Ok(path) if !path.is_empty() => {
                println!("cargo:rerun-if-changed={path}");
                format!("Some({{ static A: &Aligned<[u8]> = &Aligned(*include_bytes!({path:?})); &A.0 }})")
            }
            _ => "None".to_owned(),
        }
    };
    let code = format!(
        "#[repr(C, align(8))]\n#[allow(dead_code)] // unused in builds without an embedded model\nstruct Aligned<B: ?Sized>(B);\n\
         /// The prepared model, if this build has one.\npub static MODEL: Option<&[u8]> = {};\n\
         /// Its labels, one per line.\npub static LABELS: Option<&[u8]> = {};\n",
        file("EDGE_CLASSIFY_EMBEDDED"),
        file("EDGE_CLASSIFY_EMBEDDED_LABELS"),
    );
    std::fs::write(&out, code).expect("writing embedded.rs");
}
