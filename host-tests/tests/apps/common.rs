//! Shared by the app tests: the engine, compiled components, the golden answers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use host_tests::apps::{self, HttpServer, WasiCommand};
use host_tests::golden::{Case, Golden, GoldenModel};
use host_tests::paths;
use wasmtime::Engine;

/// The model `classifier.embedded` carries (the build embeds it; see xtask/src/apps.rs).
pub const EMBEDDED_MODEL_ID: &str = "mobilenet_v2_1.0_224_quant";

pub fn dist(file: &str) -> PathBuf {
    paths::workspace_root().join("dist").join(file)
}

fn cache_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| apps::engine().expect("creating the wasmtime engine"))
}

/// Compiles once per test binary; a failure is remembered and reported by every test.
pub fn once<T>(cell: &'static OnceLock<Result<T, String>>, make: impl FnOnce() -> Result<T>) -> &'static T {
    match cell.get_or_init(|| make().map_err(|e| format!("{e:#}"))) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

pub fn classify_cli() -> &'static WasiCommand {
    static CELL: OnceLock<Result<WasiCommand, String>> = OnceLock::new();
    once(&CELL, || WasiCommand::new(engine(), &dist("classify.wasm"), Some(cache_dir())))
}

pub fn doorbell() -> &'static WasiCommand {
    static CELL: OnceLock<Result<WasiCommand, String>> = OnceLock::new();
    once(&CELL, || WasiCommand::new(engine(), &dist("doorbell.wasm"), Some(cache_dir())))
}

pub fn http_server() -> &'static HttpServer {
    static CELL: OnceLock<Result<HttpServer, String>> = OnceLock::new();
    once(&CELL, || HttpServer::start(engine(), &dist("classify-http.wasm"), Some(cache_dir())))
}

pub fn golden() -> &'static Golden {
    static CELL: OnceLock<Result<Golden, String>> = OnceLock::new();
    once(&CELL, Golden::load)
}

pub fn golden_model(id: &str) -> &'static GoldenModel {
    golden().model(id).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The indices the reference scores highest: its top-1 and anything tied with it (quantized
/// scores tie; either index is then a correct top-1).
pub fn reference_top1(case: &Case) -> Result<Vec<u32>> {
    let &(_, best) = case.top5.first().with_context(|| format!("golden case {} has no top5", case.image))?;
    Ok(case.top5.iter().filter(|(_, s)| *s == best).map(|&(i, _)| i).collect())
}

/// Checks that `label` (as an app printed it) is the label of a reference top-1 index.
pub fn check_top1_label(model: &GoldenModel, case: &Case, label: &str) -> Result<()> {
    let labels = model.labels()?;
    let allowed: Vec<&str> =
        reference_top1(case)?.iter().filter_map(|&i| labels.get(i as usize).map(String::as_str)).collect();
    ensure!(
        allowed.contains(&label),
        "{}: top-1 label {label:?}, the reference's is {}",
        case.image,
        allowed.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(" or ")
    );
    Ok(())
}

/// `(host dir, guest dir)` pairs for `--dir`.
pub fn images_dir() -> (PathBuf, String) {
    (paths::images_dir(), "/photos".to_owned())
}

pub fn models_dir() -> (PathBuf, String) {
    (paths::models_dir(), "/models".to_owned())
}

pub fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}
