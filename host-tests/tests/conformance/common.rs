//! Shared state for the suite: the runtimes (compiled once) and the golden manifest.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};
use host_tests::golden::{Golden, GoldenModel};
use host_tests::native_rt::NativeRuntime;
use host_tests::npy::Npy;
use host_tests::wasmtime_rt::WasmtimeRuntime;
use host_tests::{paths, LoadOptions, Model, Runtime, Tensor, TensorData};

/// The wasmtime (Cranelift) runtime, compiled on first use and shared by all tests.
///
/// A failure (e.g. no `dist/classifier.wasm`) is remembered, so every test reports it without
/// trying to compile again.
pub fn wasmtime() -> &'static WasmtimeRuntime {
    static RUNTIME: OnceLock<Result<WasmtimeRuntime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let compile = || -> Result<WasmtimeRuntime> {
            let component = paths::component_path()?;
            // Compiled artifacts are cached under the target dir, keyed by the component's hash.
            let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-classify-cwasm");
            WasmtimeRuntime::cranelift(&component, Some(&cache))
        };
        compile().map_err(|e| format!("{e:#}"))
    });
    match runtime {
        Ok(runtime) => runtime,
        Err(e) => panic!("{e}"),
    }
}

/// Every runtime the suite runs on. Tests loop over this, so a new engine is one line here.
/// `native` is the same crate linked into this process: every golden check holds for it too, and
/// the classify snapshots (shared by name) must come out identical on both.
pub fn runtimes() -> Vec<&'static dyn Runtime> {
    static NATIVE: NativeRuntime = NativeRuntime;
    vec![wasmtime(), &NATIVE]
}

pub fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Result<Golden, String>> = OnceLock::new();
    match GOLDEN.get_or_init(|| Golden::load().map_err(|e| format!("{e:#}"))) {
        Ok(golden) => golden,
        Err(e) => panic!("{e}"),
    }
}

/// Write a line to the real stderr, bypassing libtest's capture, so per-model summaries show in
/// CI logs even when the test passes.
pub fn report(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "{}", line.as_ref());
}

/// Load a golden model; any error (engine or component) is returned with context.
pub fn load(runtime: &dyn Runtime, model: &GoldenModel, options: &LoadOptions) -> Result<Box<dyn Model>> {
    let bytes = model.model_bytes()?;
    runtime
        .load(&bytes, options)
        .with_context(|| format!("{}: model.load of {} trapped", runtime.name(), model.file))?
        .with_context(|| format!("{}: model.load of {} returned an error", runtime.name(), model.file))
}

/// Element-wise comparison of an output tensor against a golden `.npy`.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub elements: usize,
    pub differing: usize,
    /// Largest |ours - golden|: in LSB for integer tensors, absolute for float.
    pub max: f64,
}

impl Diff {
    pub fn merge(&mut self, other: &Diff) {
        self.elements += other.elements;
        self.differing += other.differing;
        self.max = self.max.max(other.max);
    }
}

pub fn diff(ours: &Tensor, golden: &Npy) -> Result<Diff> {
    let golden_shape: Vec<u32> = golden.shape.iter().map(|&d| d as u32).collect();
    ensure!(ours.shape == golden_shape, "output shape {:?}, golden {:?}", ours.shape, golden_shape);
    ensure!(
        ours.data.element_type() == golden.data.element_type(),
        "output element type {:?}, golden {:?}",
        ours.data.element_type(),
        golden.data.element_type()
    );
    ensure!(
        ours.data.len() == golden.data.len(),
        "output has {} elements for shape {:?}, golden {}",
        ours.data.len(),
        ours.shape,
        golden.data.len()
    );
    let pairs: Vec<(f64, f64)> = match (&ours.data, &golden.data) {
        (TensorData::Float32(a), TensorData::Float32(b)) => {
            a.iter().zip(b).map(|(&x, &y)| (x as f64, y as f64)).collect()
        }
        _ => {
            let a = ours.data.to_i32().context("integer output")?;
            let b = golden.data.to_i32().context("integer golden")?;
            a.into_iter().zip(b).map(|(x, y)| (x as f64, y as f64)).collect()
        }
    };
    let mut d = Diff { elements: pairs.len(), ..Diff::default() };
    for (x, y) in pairs {
        if x.is_nan() || y.is_nan() {
            if x.is_nan() != y.is_nan() {
                d.differing += 1;
                d.max = f64::INFINITY;
            }
            continue;
        }
        let e = (x - y).abs();
        if e != 0.0 {
            d.differing += 1;
            d.max = d.max.max(e);
        }
    }
    Ok(d)
}

/// Run every golden case of `model` through `infer` and compare with the reference output.
/// Returns the total diff and a per-case breakdown (only cases that differ at all).
pub fn infer_all_cases(runtime: &dyn Runtime, model: &GoldenModel) -> Result<(Diff, String)> {
    let golden = golden();
    let mut instance = load(runtime, model, &model.load_options(false)?)?;
    let mut total = Diff::default();
    let mut detail = String::new();
    if model.cases.is_empty() {
        bail!("{}: the manifest lists no cases", model.id);
    }
    for case in &model.cases {
        let input = case.input(golden)?.to_tensor()?;
        let expected = case.output(golden)?;
        let output = instance
            .infer(&input)
            .with_context(|| format!("{}: infer on {} trapped", model.id, case.input))?
            .with_context(|| format!("{}: infer on {} returned an error", model.id, case.input))?;
        let d = diff(&output, &expected).with_context(|| format!("{}: {}", model.id, case.output))?;
        if d.differing > 0 {
            let _ = writeln!(detail, "    {}: {} of {} differ, max {}", case.image, d.differing, d.elements, d.max);
        }
        total.merge(&d);
    }
    Ok((total, detail))
}
