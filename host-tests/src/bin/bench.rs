//! `cargo xtask bench`: median latency of every golden model, natively and in wasmtime (Cranelift) for
//! both component builds (scalar `classifier.wasm`, `classifier-simd.wasm`), measured in this one
//! process so the ratios compare like with like.
//!
//! Load = `model.load` of the TFLite bytes (parse, validate, pre-pack, plan). Infer = `model.infer`
//! on the model's first golden photo input, after one warm-up run.

use anyhow::{Context, Result};
use host_tests::golden::Golden;
use host_tests::native_rt::NativeRuntime;
use host_tests::wasmtime_rt::WasmtimeRuntime;
use host_tests::{paths, LoadOptions, Runtime};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

/// Median load and infer times in ms.
fn measure(
    rt: &dyn Runtime,
    tflite: &[u8],
    input: &host_tests::Tensor,
    loads: usize,
    runs: usize,
) -> Result<(f64, f64)> {
    let mut load_times = Vec::with_capacity(loads);
    let mut model = None;
    for _ in 0..loads {
        let t = Instant::now();
        let m = rt.load(tflite, &LoadOptions::default())?.map_err(|e| anyhow::anyhow!("{e}"))?;
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
    Ok((median(load_times), median(infer_times)))
}

fn main() -> Result<()> {
    let runs: usize =
        std::env::args().skip_while(|a| a != "--runs").nth(1).map(|r| r.parse()).transpose()?.unwrap_or(5);
    // `--model SUBSTRING` (repeatable) keeps only the models whose id contains one of them.
    let filters: Vec<String> =
        std::env::args().collect::<Vec<_>>().windows(2).filter(|w| w[0] == "--model").map(|w| w[1].clone()).collect();
    // `--simd-only` skips the native and scalar columns (for profiling the SIMD build alone).
    let simd_only = std::env::args().any(|a| a == "--simd-only");
    let golden = Golden::load()?;
    let component = paths::component_path()?;
    let simd_component = component.with_file_name("classifier-simd.wasm");
    let wasm = WasmtimeRuntime::cranelift(&component, None)?;
    let simd = WasmtimeRuntime::cranelift(&simd_component, None)?;
    let native = NativeRuntime;
    println!(
        "edge-classify bench: median of {runs} runs (1 warm-up), 3 loads; 1 thread; {} and {}",
        component.display(),
        simd_component.display()
    );
    println!(
        "{:<36} {:>6} {:>8} | {:>11} {:>11} | {:>11} {:>11} | {:>11} {:>11} | {:>11} {:>11}",
        "model",
        "prec",
        "MMACs",
        "native load",
        "native inf",
        "scalar load",
        "scalar inf",
        "simd load",
        "simd inf",
        "simd/scalar",
        "simd/native"
    );
    for model in golden.models() {
        if !filters.is_empty() && !filters.iter().any(|f| model.id.contains(f.as_str())) {
            continue;
        }
        let tflite = model.model_bytes()?;
        let case = model.photo_cases().next().context("a photo case")?;
        let input = case.input(&golden)?.to_tensor()?;
        let mut m = native.load(&tflite, &LoadOptions::default())?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let info = m.info()?;
        let (nl, ni, wl, wi) = if simd_only {
            (f64::NAN, f64::NAN, f64::NAN, f64::NAN)
        } else {
            let (nl, ni) =
                measure(&native, &tflite, &input, 3, runs).with_context(|| format!("native {}", model.id))?;
            let (wl, wi) =
                measure(&wasm, &tflite, &input, 3, runs).with_context(|| format!("wasmtime {}", model.id))?;
            (nl, ni, wl, wi)
        };
        let (sl, si) = measure(&simd, &tflite, &input, 3, runs).with_context(|| format!("simd {}", model.id))?;
        println!(
            "{:<36} {:>6} {:>8.1} | {:>8.2} ms {:>8.2} ms | {:>8.2} ms {:>8.2} ms | {:>8.2} ms {:>8.2} ms | {:>11.2} {:>11.2}",
            model.id,
            format!("{:?}", info.precision).to_lowercase(),
            info.macs as f64 / 1e6,
            nl,
            ni,
            wl,
            wi,
            sl,
            si,
            si / wi,
            si / ni
        );
    }
    Ok(())
}
