//! `cargo xtask bench native`, second table: what the apps pay per instance.
//!
//! - ready: a fresh instance of `dist/classifier-simd.wasm` (what the apps are composed with) until it
//!   holds a model that can infer:
//!   `embedded()` (the model baked in at build time) versus `model.load` of the same TFLite
//!   bytes and labels. Both include instantiation, as every `wasmtime serve` request does.
//! - request: `dist/classify-http.wasm` behind the same HTTP listener the tests use (one instance
//!   per request, as `wasmtime serve`), wall-clock from the client: `GET /` (instantiate, get
//!   the embedded model, describe it) and `POST /classify` of a photo, with the guest's own
//!   `inference_ms` for the part that is classification.
//!
//! `--runs N`; `--only embedded|load|http` measures one part (for profiling one path with perf).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use host_tests::apps::{engine, http_request, HttpServer, Upload};
use host_tests::golden::Golden;
use host_tests::wasmtime_rt::WasmtimeRuntime;
use host_tests::{paths, LoadOptions, Runtime};

/// The model the build embeds (xtask/src/apps.rs) and the photo the requests carry.
const EMBEDDED_MODEL_ID: &str = "mobilenet_v2_1.0_224_quant";
const PHOTO: &str = "grace_hopper.bmp";

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

/// Median of `runs` calls after one warm-up. What `f` returns is dropped after the clock stops:
/// tearing down the previous instance is not part of getting the next one ready.
fn time<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    f()?; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = f()?;
        times.push(t.elapsed());
        drop(out);
    }
    Ok(median_ms(times))
}

fn main() -> Result<()> {
    let runs: usize =
        std::env::args().skip_while(|a| a != "--runs").nth(1).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if let Some(o) = only.as_deref() {
        ensure!(["embedded", "load", "http"].contains(&o), "--only takes embedded, load or http, not {o}");
    }
    if part("embedded") || part("load") {
        ready(runs, part("embedded"), part("load"))?;
    }
    if part("http") {
        http(runs)?;
    }
    Ok(())
}

fn ready(runs: usize, embedded: bool, load: bool) -> Result<()> {
    let golden = Golden::load()?;
    let model = golden.model(EMBEDDED_MODEL_ID)?;
    let tflite = model.model_bytes()?;
    let options = model.load_options(true)?;

    let simd = paths::component_path()?.with_file_name("classifier-simd.wasm");
    let classifier = WasmtimeRuntime::cranelift(&simd, None)?;
    println!();
    println!(
        "instantiate-to-ready, {EMBEDDED_MODEL_ID} in dist/classifier-simd.wasm (median of {runs}, wasmtime Cranelift):"
    );
    let embedded = if embedded {
        let ms =
            time(runs, || classifier.embedded(&LoadOptions::default())?.map_err(|e| anyhow::anyhow!("embedded: {e}")))?;
        println!("  {:<26}{ms:>9.2} ms", "embedded()");
        // The activation arenas are allocated by the first inference: show what that adds.
        let mut warm = classifier.embedded(&LoadOptions::default())?.map_err(|e| anyhow::anyhow!("embedded: {e}"))?;
        let case = model.photo_cases().next().context("a photo case")?;
        let input = model.input_for(&warm.info()?, case.input(&golden)?.to_tensor()?)?;
        let first = time(runs, || {
            let mut m = classifier.embedded(&LoadOptions::default())?.map_err(|e| anyhow::anyhow!("embedded: {e}"))?;
            m.infer(&input)?.map_err(|e| anyhow::anyhow!("infer: {e}"))?;
            Ok(m)
        })?;
        let infer = time(runs, || warm.infer(&input)?.map_err(|e| anyhow::anyhow!("infer: {e}")))?;
        println!(
            "  {:<26}{first:>9.2} ms   (a later infer: {infer:.2} ms; the first also touches the activation arenas)",
            "embedded() + first infer"
        );
        // Each precision: prepared ones restore in place, the others convert the embedded file.
        for precision in [host_tests::Precision::Int8, host_tests::Precision::Int16, host_tests::Precision::Fp32] {
            let options = LoadOptions { precision: Some(precision), ..LoadOptions::default() };
            let ms = time(runs, || classifier.embedded(&options)?.map_err(|e| anyhow::anyhow!("embedded: {e}")))?;
            println!("  {:<26}{ms:>9.2} ms", format!("embedded({})", precision.name()));
        }
        Some(ms)
    } else {
        None
    };
    if load {
        let ms = time(runs, || classifier.load(&tflite, &options)?.map_err(|e| anyhow::anyhow!("load: {e}")))?;
        let ratio = embedded.map(|e| format!("   ({:.1}x the embedded model)", ms / e)).unwrap_or_default();
        println!("  {:<26}{ms:>9.2} ms{ratio}", "model.load(tflite)");
    }
    Ok(())
}

fn http(runs: usize) -> Result<()> {
    let http = paths::workspace_root().join("dist").join("classify-http.wasm");
    let server = HttpServer::start(&engine()?, &http, None)?;
    let photo = std::fs::read(paths::images_dir().join(PHOTO)).with_context(|| format!("reading {PHOTO}"))?;
    let get = time(runs, || {
        let r = http_request(server.addr(), "GET", "/", Upload::None)?;
        ensure!(r.status == 200, "GET / answered {}", r.status);
        Ok(())
    })?;
    let mut inference = Vec::new();
    let post = time(runs, || {
        let r = http_request(server.addr(), "POST", "/classify", Upload::Sized(&photo))?;
        ensure!(r.status == 200, "POST /classify answered {}", r.status);
        inference.push(r.json()?["inference_ms"].as_f64().context("inference_ms")?);
        Ok(())
    })?;
    inference.sort_by(f64::total_cmp);
    let inference = inference[inference.len() / 2];
    println!();
    println!("dist/classify-http.wasm per request (instance per request, median of {runs}, over 127.0.0.1):");
    println!("  GET /                {get:>9.2} ms");
    println!(
        "  POST /classify       {post:>9.2} ms   (guest inference_ms {inference:.2}; the rest, {:.2} ms, is \
         instantiation, model setup and HTTP)",
        post - inference
    );
    Ok(())
}
