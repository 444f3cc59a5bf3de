//! `cargo xtask bench`: median latency of every golden model at every precision the native build
//! loads it at, natively and in wasmtime (Cranelift) for both component builds (scalar
//! `classifier.wasm`, `classifier-simd.wasm`), measured in this one process so the ratios compare
//! like with like.
//!
//! Load = `model.load` of the TFLite bytes (instantiate, parse, validate, pre-pack, plan). Infer =
//! `model.infer` on the model's first golden photo input, after one warm-up run. Peak memory = the
//! largest linear memory the SIMD instance grew to.
//!
//! `--runs N`, `--loads N` (default 3), `--model SUBSTRING` and `--precision int8|int16|fp32` (both repeatable), `--simd-only` (skip the native and scalar columns,
//! for profiling), `--json FILE` (one JSON object per SIMD and native measurement, the format the
//! comparison runners in `bench/` write, for `cargo xtask bench`'s combined table).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use host_tests::golden::Golden;
use host_tests::native_rt::NativeRuntime;
use host_tests::wasmtime_rt::WasmtimeRuntime;
use host_tests::{paths, LoadOptions, Precision, Runtime, Tensor};
use serde_json::json;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

struct Measured {
    load_ms: f64,
    infer_ms: f64,
    peak_memory: Option<u64>,
}

/// Median load and infer times.
fn measure(
    rt: &dyn Runtime,
    tflite: &[u8],
    options: &LoadOptions,
    input: &Tensor,
    loads: usize,
    runs: usize,
) -> Result<Measured> {
    let mut load_times = Vec::with_capacity(loads);
    let mut model = None;
    for _ in 0..loads.max(1) {
        let t = Instant::now();
        let m = rt.load(tflite, options)?.map_err(|e| anyhow::anyhow!("{e}"))?;
        load_times.push(t.elapsed());
        model = Some(m);
    }
    let mut model = model.context("at least one load")?;
    model.infer(input)?.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut infer_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        model.infer(input)?.map_err(|e| anyhow::anyhow!("{e}"))?;
        infer_times.push(t.elapsed());
    }
    Ok(Measured { load_ms: median(load_times), infer_ms: median(infer_times), peak_memory: model.peak_memory_bytes() })
}

fn args_after(flag: &str) -> Vec<String> {
    std::env::args().collect::<Vec<_>>().windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
}

fn main() -> Result<()> {
    let runs: usize = args_after("--runs").first().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let loads: usize = args_after("--loads").first().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let filters = args_after("--model");
    let precisions = args_after("--precision");
    let simd_only = std::env::args().any(|a| a == "--simd-only");
    let mut json_out = match args_after("--json").first() {
        Some(path) => Some(std::fs::File::create(path).with_context(|| format!("creating {path}"))?),
        None => None,
    };
    let golden = Golden::load()?;
    let component = paths::component_path()?;
    let simd_component = component.with_file_name("classifier-simd.wasm");
    let wasm = WasmtimeRuntime::cranelift(&component, None)?;
    let simd = WasmtimeRuntime::cranelift(&simd_component, None)?;
    let native = NativeRuntime;
    println!(
        "edge-classify bench: median of {runs} runs (1 warm-up), {loads} loads; 1 thread; {} and {}",
        component.display(),
        simd_component.display()
    );
    println!(
        "{:<36} {:>6} {:>7} | {:>11} {:>11} | {:>11} {:>11} | {:>11} {:>11} {:>9} | {:>11} {:>11}",
        "model",
        "prec",
        "MMACs",
        "native load",
        "native inf",
        "scalar load",
        "scalar inf",
        "simd load",
        "simd inf",
        "simd mem",
        "simd/scalar",
        "simd/native"
    );
    for model in golden.models() {
        if !filters.is_empty() && !filters.iter().any(|f| model.id.contains(f.as_str())) {
            continue;
        }
        let tflite = model.model_bytes()?;
        let case = model.photo_cases().next().context("a photo case")?;
        for precision in [Precision::Int8, Precision::Int16, Precision::Fp32] {
            if !precisions.is_empty() && !precisions.iter().any(|p| p == precision.name()) {
                continue;
            }
            let options = LoadOptions { precision: Some(precision), ..model.load_options(false)? };
            let mut m = match native.load(&tflite, &options)? {
                Ok(m) => m,
                Err(e) => {
                    println!("{:<36} {:>6} not loadable at this precision: {e}", model.id, precision.name());
                    continue;
                }
            };
            let info = m.info()?;
            let input = model.input_for(&info, case.input(&golden)?.to_tensor()?)?;
            let what = || format!("{} at {}", model.id, precision.name());
            let s =
                measure(&simd, &tflite, &options, &input, loads, runs).with_context(|| format!("simd {}", what()))?;
            let (n, w) = if simd_only {
                (None, None)
            } else {
                let n = measure(&native, &tflite, &options, &input, loads, runs)
                    .with_context(|| format!("native {}", what()))?;
                let w = measure(&wasm, &tflite, &options, &input, loads, runs)
                    .with_context(|| format!("scalar {}", what()))?;
                (Some(n), Some(w))
            };
            let ms = |m: &Option<Measured>, f: fn(&Measured) -> f64| m.as_ref().map_or(f64::NAN, f);
            println!(
                "{:<36} {:>6} {:>7.1} | {:>8.2} ms {:>8.2} ms | {:>8.2} ms {:>8.2} ms | {:>8.2} ms {:>8.2} ms {:>6.1} MB | {:>11.2} {:>11.2}",
                model.id,
                precision.name(),
                info.macs as f64 / 1e6,
                ms(&n, |m| m.load_ms),
                ms(&n, |m| m.infer_ms),
                ms(&w, |m| m.load_ms),
                ms(&w, |m| m.infer_ms),
                s.load_ms,
                s.infer_ms,
                s.peak_memory.unwrap_or(0) as f64 / 1e6,
                s.infer_ms / ms(&w, |m| m.infer_ms),
                s.infer_ms / ms(&n, |m| m.infer_ms),
            );
            if let Some(out) = json_out.as_mut() {
                let line = |runtime: &str, m: &Measured| {
                    json!({
                        "runtime": runtime,
                        "model": model.id,
                        "precision": precision.name(),
                        "load_ms": m.load_ms,
                        "median_ms": m.infer_ms,
                        "runs": runs,
                        "peak_mem_bytes": m.peak_memory,
                        "error": null,
                    })
                };
                writeln!(out, "{}", line("edge-classify simd128 (wasmtime cranelift)", &s))?;
                if let Some(n) = &n {
                    writeln!(out, "{}", line("edge-classify (native)", n))?;
                }
            }
        }
    }
    Ok(())
}
