//! Kind 1 of conformance, "exact": for every integer model (input dtype other than float32) and
//! every golden case, `infer(golden input)` against TFLite's reference kernels (`BUILTIN_REF`).
//! Tolerance 1 LSB per element; the goal, reported per model, is 0 elements differing.

use crate::common::{golden, infer_all_cases, report, runtimes};

const MAX_LSB: f64 = 1.0;

#[test]
fn integer_models_match_the_reference_within_one_lsb() {
    let models: Vec<_> = golden().models().iter().filter(|m| m.is_integer()).collect();
    assert!(!models.is_empty(), "the golden manifest has no integer models");
    let mut failures = Vec::new();
    for runtime in runtimes() {
        for model in &models {
            match infer_all_cases(runtime, model) {
                Ok((diff, detail)) => {
                    report(format!(
                        "exactness [{}] {}: {} cases, {} of {} elements differ, max |diff| {} LSB",
                        runtime.name(),
                        model.id,
                        model.cases.len(),
                        diff.differing,
                        diff.elements,
                        diff.max
                    ));
                    if !detail.is_empty() {
                        report(&detail);
                    }
                    if diff.max > MAX_LSB {
                        failures.push(format!(
                            "[{}] {}: max |diff| {} LSB > {MAX_LSB}\n{detail}",
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
