//! Which kernel runs each layer (`kernels::select`, the one table): for every golden model at every
//! precision, the kernel sequence the SIMD component binds at load, listed natively by
//! `Model::kernels(Some(Arch::Simd128))` from the same plan and the same table. Pinned by a snapshot
//! (a change of dispatch shows up as a diff to review), and checked: no convolution of a golden model
//! runs a scalar kernel in the SIMD build, i.e. a silent fallback is a failure. No component involved;
//! the SIMD build's own binding is covered by the kernel tests `cargo xtask test` runs in wasm32 with
//! simd128 (they assert that the arch they ran is simd128).

use edge_classify::graph::Precision;
use edge_classify::kernels::Arch;
use edge_classify::model::{LoadOptions, Model};

use crate::common::golden;

/// `a, b x3, c`: the kernel sequence with repeats folded, order kept.
fn folded(kernels: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < kernels.len() {
        let n = kernels[i..].iter().take_while(|k| **k == kernels[i]).count();
        out.push(if n > 1 { format!("{} x{n}", kernels[i]) } else { kernels[i].clone() });
        i += n;
    }
    out.join(", ")
}

const CONV_LOOPS: [&str; 5] = ["/conv/", "/conv-packed/", "/pointwise/", "/depthwise/", "/depthwise-general/"];

#[test]
fn every_golden_layer_runs_its_pinned_kernel() {
    let mut listing = String::new();
    let mut failures = Vec::new();
    for model in golden().models() {
        let bytes = model.model_bytes().expect("golden model");
        for precision in [Precision::Fp32, Precision::Int16, Precision::Int8] {
            let options = LoadOptions { precision: Some(precision), ..LoadOptions::default() };
            let m = match Model::load(&bytes, &options) {
                Ok(m) => m,
                Err(e) => {
                    listing.push_str(&format!("{} {precision:?}: refused ({e})\n", model.id));
                    continue;
                }
            };
            let simd = m.kernels(Some(Arch::Simd128));
            let here = m.kernels(None);
            assert_eq!(here.len(), simd.len());
            // This (native) build binds the scalar kernel of the same loop everywhere.
            for (h, s) in here.iter().zip(&simd) {
                assert_eq!(h, &s.replace("/simd128", "/scalar"), "{} {precision:?}", model.id);
            }
            for (step, k) in simd.iter().enumerate() {
                if CONV_LOOPS.iter().any(|l| k.contains(l)) && !k.ends_with("/simd128") {
                    failures.push(format!("{} {precision:?} step {step}: {k}", model.id));
                }
            }
            listing.push_str(&format!("{} {precision:?}: {}\n", model.id, folded(&simd)));
        }
    }
    insta::assert_snapshot!("dispatch", listing);
    assert!(failures.is_empty(), "convolutions on a scalar kernel in the SIMD build:\n{}", failures.join("\n"));
}
