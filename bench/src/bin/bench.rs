//! `cargo xtask bench native`: median latency of every golden model at every precision the native build
//! loads it at, natively and in wasmtime (Cranelift) for both component builds (scalar
//! `classifier.wasm`, `classifier-simd.wasm`), measured in this one process so the ratios compare
//! like with like.
//!
//! Interleaved: each model is loaded once per runtime, then `--rounds R` rounds run every runtime in
//! turn (the order rotates each round), 1 warm-up and `--runs N` timed calls each. A runtime's time is
//! the median over all its timed calls; a ratio is the median over rounds of the two runtimes' round
//! medians, so a drift of the machine between minutes (up to 50% on the CI VM) moves both sides.
//!
//! Load = `model.load` of the TFLite bytes (instantiate, parse, validate, pre-pack, plan). Infer =
//! `model.infer` on the model's first golden photo input. Peak memory = the largest linear memory the
//! SIMD instance grew to.
//!
//! `--runs N` (per round, default 5), `--rounds R` (default 3), `--loads N` (default 3), `--model
//! SUBSTRING` and `--precision int8|int16|fp32` (both repeatable), `--simd-only` (skip the native and
//! scalar columns, for profiling), `--baseline FILE` (another SIMD component, e.g. main's, measured
//! interleaved with ours: the `simd/base` column), `--no-kernels` (leave out the line under each row
//! that names the micro-kernels the SIMD build runs for it, `kernels::select`'s choice), `--json FILE` (one JSON object per SIMD and native
//! measurement, the format the comparison runners in `bench/` write, for `cargo xtask bench native`'s
//! combined table).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use host_tests::golden::Golden;
use host_tests::native_rt::NativeRuntime;
use host_tests::wasmtime_rt::WasmtimeRuntime;
use host_tests::{paths, LoadOptions, Model, Precision, Runtime, Tensor};
use serde_json::json;

fn median_ms(v: &[Duration]) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One runtime's model under measurement: its load times and, per round, its timed calls.
struct Subject {
    model: Box<dyn Model>,
    load_ms: f64,
    rounds: Vec<Vec<Duration>>,
}

impl Subject {
    fn load(rt: &dyn Runtime, tflite: &[u8], options: &LoadOptions, loads: usize) -> Result<Self> {
        let mut times = Vec::with_capacity(loads);
        let mut model = None;
        for _ in 0..loads.max(1) {
            let t = Instant::now();
            let m = rt.load(tflite, options)?.map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(t.elapsed());
            model = Some(m);
        }
        let model = model.context("at least one load")?;
        Ok(Self { model, load_ms: median_ms(&times), rounds: Vec::new() })
    }

    fn round(&mut self, input: &Tensor, runs: usize) -> Result<()> {
        self.model.infer(input)?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            self.model.infer(input)?.map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(t.elapsed());
        }
        self.rounds.push(times);
        Ok(())
    }

    fn infer_ms(&self) -> f64 {
        median_ms(&self.rounds.concat())
    }

    /// Median over rounds of (this round's median / `other`'s).
    fn ratio(&self, other: &Subject) -> f64 {
        median(self.rounds.iter().zip(&other.rounds).map(|(a, b)| median_ms(a) / median_ms(b)).collect())
    }
}

fn args_after(flag: &str) -> Vec<String> {
    std::env::args().collect::<Vec<_>>().windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect()
}

fn number(flag: &str, default: usize) -> Result<usize> {
    Ok(args_after(flag).first().map(|r| r.parse()).transpose().with_context(|| flag.to_string())?.unwrap_or(default))
}

fn main() -> Result<()> {
    let runs = number("--runs", 5)?;
    let rounds = number("--rounds", 3)?.max(1);
    let loads = number("--loads", 3)?;
    let filters = args_after("--model");
    let precisions = args_after("--precision");
    let simd_only = std::env::args().any(|a| a == "--simd-only");
    let show_kernels = !std::env::args().any(|a| a == "--no-kernels");
    let baseline_path = args_after("--baseline").first().map(PathBuf::from);
    let mut json_out = match args_after("--json").first() {
        Some(path) => Some(std::fs::File::create(path).with_context(|| format!("creating {path}"))?),
        None => None,
    };
    let golden = Golden::load()?;
    let component = paths::component_path()?;
    let simd_component = component.with_file_name("classifier-simd.wasm");
    let wasm = WasmtimeRuntime::cranelift(&component, None)?;
    let simd = WasmtimeRuntime::cranelift(&simd_component, None)?;
    let baseline = baseline_path.as_deref().map(|p| WasmtimeRuntime::cranelift(p, None)).transpose()?;
    let native = NativeRuntime;
    println!(
        "edge-classify bench: {rounds} interleaved rounds x {runs} runs (1 warm-up each), {loads} loads; 1 thread; {} and {}{}",
        component.display(),
        simd_component.display(),
        baseline_path.as_ref().map(|p| format!("; baseline {}", p.display())).unwrap_or_default(),
    );
    println!(
        "{:<36} {:>6} {:>7} | {:>11} {:>11} | {:>11} {:>11} | {:>11} {:>11} {:>9} | {:>11} {:>11} {:>9}",
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
        "simd/native",
        "simd/base"
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
            let what = |rt: &str| format!("{rt} {} at {}", model.id, precision.name());
            let load =
                |rt: &dyn Runtime, name: &str| Subject::load(rt, &tflite, &options, loads).with_context(|| what(name));
            // Index 0 is ours (SIMD); the others are what it is compared with.
            let mut subjects = vec![load(&simd, "simd")?];
            let mut add = |rt: &dyn Runtime, name: &str| -> Result<usize> {
                subjects.push(load(rt, name)?);
                Ok(subjects.len() - 1)
            };
            let native_at = if simd_only { None } else { Some(add(&native, "native")?) };
            let scalar_at = if simd_only { None } else { Some(add(&wasm, "scalar")?) };
            let base_at = baseline.as_ref().map(|b| add(b, "baseline")).transpose()?;
            for round in 0..rounds {
                let n = subjects.len();
                for k in 0..n {
                    let s = &mut subjects[(round + k) % n];
                    s.round(&input, runs).with_context(|| what("round"))?;
                }
            }
            let peak_memory = subjects[0].model.peak_memory_bytes();
            let s = &subjects[0];
            let at = |i: Option<usize>| i.map(|i| &subjects[i]);
            let ms = |m: Option<&Subject>, f: fn(&Subject) -> f64| m.map_or(f64::NAN, f);
            let ratio = |m: Option<&Subject>| m.map_or(f64::NAN, |m| s.ratio(m));
            println!(
                "{:<36} {:>6} {:>7.1} | {:>8.2} ms {:>8.2} ms | {:>8.2} ms {:>8.2} ms | {:>8.2} ms {:>8.2} ms {:>6.1} MB | {:>11.2} {:>11.2} {:>9.3}",
                model.id,
                precision.name(),
                info.macs as f64 / 1e6,
                ms(at(native_at), |m| m.load_ms),
                ms(at(native_at), Subject::infer_ms),
                ms(at(scalar_at), |m| m.load_ms),
                ms(at(scalar_at), Subject::infer_ms),
                s.load_ms,
                s.infer_ms(),
                peak_memory.unwrap_or(0) as f64 / 1e6,
                ratio(at(scalar_at)),
                ratio(at(native_at)),
                ratio(at(base_at)),
            );
            if show_kernels {
                match host_tests::native_rt::simd_kernel_summary(&tflite, &options) {
                    Ok(k) => println!("    kernels (SIMD build): {k}"),
                    Err(e) => println!("    kernels: {e}"),
                }
            }
            if let Some(out) = json_out.as_mut() {
                let line = |runtime: &str, m: &Subject, peak: Option<u64>| {
                    json!({
                        "runtime": runtime,
                        "model": model.id,
                        "precision": precision.name(),
                        "load_ms": m.load_ms,
                        "median_ms": m.infer_ms(),
                        "runs": runs * rounds,
                        "peak_mem_bytes": peak,
                        "error": null,
                    })
                };
                writeln!(out, "{}", line("edge-classify simd128 (wasmtime cranelift)", s, peak_memory))?;
                if let Some(n) = at(native_at) {
                    writeln!(out, "{}", line("edge-classify (native)", n, None))?;
                }
            }
        }
    }
    Ok(())
}
