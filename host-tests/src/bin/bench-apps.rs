//! `cargo xtask bench`, second table: what the apps pay per instance.
//!
//! - ready: a fresh instance of `dist/classifier.wasm` until it holds a model that can infer:
//!   `embedded()` (the model baked in at build time) versus `model.load` of the same TFLite
//!   bytes and labels. Both include instantiation, as every `wasmtime serve` request does.
//! - request: `dist/classify-http.wasm` behind the same HTTP listener the tests use (one instance
//!   per request, as `wasmtime serve`), wall-clock from the client: `GET /` (instantiate, get
//!   the embedded model, describe it) and `POST /classify` of a photo, with the guest's own
//!   `inference_ms` for the part that is classification.

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

fn time<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    f()?; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    Ok(median_ms(times))
}

fn main() -> Result<()> {
    let runs: usize =
        std::env::args().skip_while(|a| a != "--runs").nth(1).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let golden = Golden::load()?;
    let model = golden.model(EMBEDDED_MODEL_ID)?;
    let tflite = model.model_bytes()?;
    let options = model.load_options(true)?;

    let classifier = WasmtimeRuntime::cranelift(&paths::component_path()?, None)?;
    let embedded =
        time(runs, || classifier.embedded(&LoadOptions::default())?.map_err(|e| anyhow::anyhow!("embedded: {e}")))?;
    let loaded = time(runs, || classifier.load(&tflite, &options)?.map_err(|e| anyhow::anyhow!("load: {e}")))?;
    println!();
    println!(
        "instantiate-to-ready, {EMBEDDED_MODEL_ID} in dist/classifier.wasm (median of {runs}, wasmtime Cranelift):"
    );
    println!("  embedded()          {embedded:>9.2} ms");
    println!("  model.load(tflite)  {loaded:>9.2} ms   ({:.1}x the embedded model)", loaded / embedded);

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
