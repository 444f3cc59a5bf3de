//! The fp32 model: `infer(golden input)` against the reference within 1e-5 absolute on the
//! output probabilities (the float kernels need not reproduce TFLite's summation order exactly).

use crate::common::{golden, infer_all_cases, report, runtimes};
use host_tests::golden::Dtype;

const MAX_ABS: f64 = 1e-5;

#[test]
fn float_model_matches_the_reference_within_1e_5() {
    let models: Vec<_> = golden().models().iter().filter(|m| m.input.dtype == Dtype::Float32).collect();
    assert!(!models.is_empty(), "the golden manifest has no float32 model");
    let mut failures = Vec::new();
    for runtime in runtimes() {
        for model in &models {
            match infer_all_cases(runtime, model) {
                Ok((diff, _)) => {
                    report(format!(
                        "float [{}] {}: {} cases, {} of {} elements differ, max |diff| {:.3e}",
                        runtime.name(),
                        model.id,
                        model.cases.len(),
                        diff.differing,
                        diff.elements,
                        diff.max
                    ));
                    if diff.max > MAX_ABS {
                        failures.push(format!(
                            "[{}] {}: max |diff| {:.3e} > {MAX_ABS:e}",
                            runtime.name(),
                            model.id,
                            diff.max
                        ));
                    }
                }
                Err(e) => failures.push(format!("[{}] {}: {e:#}", runtime.name(), model.id)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
