//! The golden data itself, checked without the component: every model file matches its sha256,
//! every `.npy` parses with the shape and dtype the manifest declares, and every photo and
//! labels file exists. A failure here is a data problem, not an executor problem.

use anyhow::{ensure, Result};
use host_tests::golden::{GoldenModel, TensorSpec};
use host_tests::npy::Npy;

use crate::common::golden;

fn check_npy(what: &str, npy: &Npy, spec: &TensorSpec) -> Result<()> {
    let shape: Vec<u32> = npy.shape.iter().map(|&d| d as u32).collect();
    ensure!(shape == spec.shape, "{what}: shape {shape:?}, manifest {:?}", spec.shape);
    ensure!(
        npy.data.element_type() == spec.dtype.element_type(),
        "{what}: dtype {:?}, manifest {:?}",
        npy.data.element_type(),
        spec.dtype
    );
    Ok(())
}

fn check_model(model: &GoldenModel) -> Result<()> {
    model.model_bytes()?;
    let labels = model.labels()?;
    let classes = model.output.shape.last().copied().unwrap_or(0) as usize;
    ensure!(labels.len() == classes, "{} labels for {classes} outputs", labels.len());
    ensure!(!model.cases.is_empty(), "no cases");
    for case in &model.cases {
        check_npy(&case.input, &case.input(golden())?, &model.input)?;
        check_npy(&case.output, &case.output(golden())?, &model.output)?;
        ensure!(case.image_path().is_file(), "missing photo {}", case.image_path().display());
        ensure!(!case.top5.is_empty(), "{}: empty top5", case.image);
    }
    Ok(())
}

#[test]
fn golden_files_match_the_manifest() {
    let failures: Vec<String> =
        golden().models().iter().filter_map(|m| check_model(m).err().map(|e| format!("{}: {e:#}", m.id))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
