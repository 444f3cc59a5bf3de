//! tract on the golden models, in the same wasmtime (Cranelift) as `bench`: the other side of issue 6.
//!
//! `bench-tract --component PATH --runs N [--onnx-dir DIR]`
//!
//! PATH is `bench_tract.wasm` built from `bench/tract` (see bench/tract/README.md). For each golden
//! model: 3 loads (each in a fresh instance, timed like `bench` times `model.load`: instantiate + load),
//! then on the last instance 1 warm-up run and N timed runs of the model's first photo case; medians.
//! Peak linear memory is the largest size the last instance's memory grew to. One JSON object per
//! line on stdout; progress on stderr. A model tract refuses gets a line with its error and null times.
//!
//! With `--onnx-dir`, `<DIR>/<model-id>.fp32.onnx` and `<DIR>/<model-id>.qdq.onnx` are run the same
//! way through tract-onnx where they exist (the component must be built with `--features onnx`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use host_tests::golden::{Dtype, Golden, GoldenModel};
use host_tests::wasmtime_rt::{Compiler, WasmtimeRuntime};
use host_tests::TensorData;
use serde_json::json;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "tract/wit",
    world: "bench",
});

use exports::edge::bench::runner::{ModelInfo, Tensor};

/// The same ceiling as the classifier's instances (`wasmtime_rt::MEMORY_LIMIT_BYTES`).
const MEMORY_LIMIT_BYTES: usize = 1 << 30;
const LOADS: usize = 3;
const TRACT_VERSION: &str = "0.23.9";

trait IntoAnyhow<T> {
    fn anyhow(self) -> Result<T>;
}

impl<T> IntoAnyhow<T> for wasmtime::Result<T> {
    fn anyhow(self) -> Result<T> {
        self.map_err(anyhow::Error::from)
    }
}

/// Allows growth up to [`MEMORY_LIMIT_BYTES`] and remembers the largest size any memory asked for.
#[derive(Default)]
struct PeakLimiter {
    peak_memory: usize,
}

impl ResourceLimiter for PeakLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MEMORY_LIMIT_BYTES {
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(current).max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: PeakLimiter,
    /// The guest's stderr: a panic's message, reported with the trap it ends in.
    stderr: MemoryOutputPipe,
}

/// A failed call as one line: a trap becomes the guest's panic message plus the trap's cause
/// (the wasm backtrace is left out).
fn call_error(e: wasmtime::Error, store: &Store<HostState>) -> anyhow::Error {
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
    let panic: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .skip(1)
        .take_while(|l| !l.starts_with("note: "))
        .collect();
    if panic.is_empty() {
        return anyhow::Error::from(e);
    }
    let cause = e.root_cause().to_string();
    anyhow::anyhow!("guest panicked: {} ({cause})", panic.join(" "))
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

struct Runner {
    engine: Engine,
    pre: BenchPre<HostState>,
}

impl Runner {
    fn new(component_path: &Path) -> Result<Runner> {
        // The very configuration our own bench runs the classifier with.
        let config = WasmtimeRuntime::config(Compiler::Cranelift)?;
        let engine = Engine::new(&config).anyhow().context("creating the wasmtime cranelift engine")?;
        let bytes = std::fs::read(component_path)
            .with_context(|| format!("reading the component {}", component_path.display()))?;
        let component = Component::new(&engine, &bytes)
            .anyhow()
            .with_context(|| format!("compiling {} with cranelift", component_path.display()))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).anyhow().context("adding WASI Preview 2 to the linker")?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .anyhow()
            .with_context(|| format!("linking {}", component_path.display()))?;
        let pre = BenchPre::new(instance_pre)
            .anyhow()
            .context("the component does not export the edge:bench `bench` world")?;
        Ok(Runner { engine, pre })
    }

    /// A fresh instance whose WASI context grants nothing but stderr (for guest panic messages).
    fn instantiate(&self) -> Result<(Store<HostState>, Bench)> {
        let stderr = MemoryOutputPipe::new(64 << 10);
        let state = HostState {
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .stderr(stderr.clone())
                .build(),
            table: ResourceTable::new(),
            limiter: PeakLimiter::default(),
            stderr,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let bindings = self.pre.instantiate(&mut store).anyhow().context("instantiating the tract component")?;
        Ok((store, bindings))
    }
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

/// What one (model, file) pair measured; `Err` is a refusal or failure, reported in the JSON line.
struct Measured {
    load_ms: f64,
    median_ms: f64,
    peak_mem_bytes: usize,
    top1_matches: bool,
    info: ModelInfo,
}

/// The input tensor in the storage type and layout the loaded model asks for.
fn input_for(model: &GoldenModel, data: &TensorData, shape: &[u32], info: &ModelInfo) -> Result<Tensor> {
    let golden_dtype = dtype_name(model.input.dtype);
    // ONNX QDQ exports take float: dequantize the golden integer input with the model's own parameters.
    let (dtype, values): (&str, Vec<u8>) = if info.input_dtype == golden_dtype {
        (golden_dtype, le_bytes(data))
    } else if info.input_dtype == "float32" {
        let scale = model.input.scale.context("the golden input has no scale to dequantize with")?;
        let zp = model.input.zero_point.unwrap_or(0) as f32;
        let real: Vec<f32> = match data {
            TensorData::Uint8(v) => v.iter().map(|&q| scale * (q as f32 - zp)).collect(),
            TensorData::Int8(v) => v.iter().map(|&q| scale * (q as f32 - zp)).collect(),
            TensorData::Int16(v) => v.iter().map(|&q| scale * (q as f32 - zp)).collect(),
            TensorData::Float32(v) => v.clone(),
        };
        ("float32", real.iter().flat_map(|x| x.to_le_bytes()).collect())
    } else {
        bail!("the model takes {} input, the golden input is {golden_dtype}", info.input_dtype)
    };
    // NHWC golden input to an NCHW model input (channels-first ONNX export).
    let (values, shape) = if info.input_shape.as_slice() != shape {
        ensure!(
            shape.len() == 4 && info.input_shape == [shape[0], shape[3], shape[1], shape[2]],
            "the model takes shape {:?}, the golden input is {shape:?}",
            info.input_shape
        );
        let (n, h, w, c) = (shape[0] as usize, shape[1] as usize, shape[2] as usize, shape[3] as usize);
        let size = values.len() / (n * h * w * c);
        let mut out = vec![0u8; values.len()];
        for b in 0..n {
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let src = (((b * h + y) * w + x) * c + ch) * size;
                        let dst = (((b * c + ch) * h + y) * w + x) * size;
                        out[dst..dst + size].copy_from_slice(&values[src..src + size]);
                    }
                }
            }
        }
        (out, info.input_shape.clone())
    } else {
        (values, shape.to_vec())
    };
    Ok(Tensor { dtype: dtype.to_owned(), shape, data: values })
}

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::Uint8 => "uint8",
        Dtype::Int8 => "int8",
        Dtype::Int16 => "int16",
        Dtype::Float32 => "float32",
    }
}

fn le_bytes(data: &TensorData) -> Vec<u8> {
    match data {
        TensorData::Uint8(v) => v.clone(),
        TensorData::Int8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::Int16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Index of the largest output element (the first on ties, as the golden top-5 orders them).
fn argmax(out: &Tensor) -> Result<usize> {
    let values: Vec<f64> = match out.dtype.as_str() {
        "uint8" => out.data.iter().map(|&b| b as f64).collect(),
        "int8" => out.data.iter().map(|&b| b as i8 as f64).collect(),
        "int16" => out.data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f64).collect(),
        "int32" => out.data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
        "float32" => out.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(),
        other => bail!("output dtype {other:?}"),
    };
    ensure!(!values.is_empty(), "empty output");
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    Ok(best)
}

fn measure(
    runner: &Runner,
    format: &str,
    bytes: &[u8],
    golden: &Golden,
    model: &GoldenModel,
    runs: usize,
) -> Result<Measured> {
    let case = model.photo_cases().next().context("the model has no photo case")?;
    let npy = case.input(golden).with_context(|| format!("reading the golden input {}", case.input))?;
    let golden_shape: Vec<u32> = npy.shape.iter().map(|&d| d as u32).collect();

    let mut load_times = Vec::with_capacity(LOADS);
    let mut loaded = None;
    for _ in 0..LOADS {
        let t = Instant::now();
        let (mut store, bindings) = runner.instantiate()?;
        let info = bindings
            .edge_bench_runner()
            .call_load(&mut store, format, bytes, &golden_shape)
            .map_err(|e| call_error(e, &store))
            .with_context(|| format!("calling runner.load ({} bytes)", bytes.len()))?
            .map_err(anyhow::Error::msg)?;
        load_times.push(t.elapsed());
        loaded = Some((store, bindings, info));
    }
    let (mut store, bindings, info) = loaded.context("at least one load")?;
    let input = input_for(model, &npy.data, &golden_shape, &info)?;
    let runner_api = bindings.edge_bench_runner();
    let run = |store: &mut Store<HostState>| -> Result<Tensor> {
        runner_api
            .call_run(&mut *store, &input)
            .map_err(|e| call_error(e, store))
            .context("calling runner.run")?
            .map_err(anyhow::Error::msg)
    };
    let first = run(&mut store).context("warm-up run")?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        run(&mut store).with_context(|| format!("timed run {i}"))?;
        times.push(t.elapsed());
    }
    let expected = case.top5.first().map(|&(index, _)| index as usize).context("the golden case has no top-5")?;
    let top1 = argmax(&first)?;
    Ok(Measured {
        load_ms: median_ms(load_times),
        median_ms: median_ms(times),
        peak_mem_bytes: store.data().limiter.peak_memory,
        top1_matches: top1 == expected,
        info,
    })
}

fn report(runtime: &str, model: &GoldenModel, precision: &str, runs: usize, result: Result<Measured>) {
    let line = match result {
        Ok(m) => {
            eprintln!(
                "  {runtime} {}: load {:.2} ms, run {:.2} ms, peak {} MiB, top-1 {} (input {}, output {})",
                model.id,
                m.load_ms,
                m.median_ms,
                m.peak_mem_bytes >> 20,
                if m.top1_matches { "matches" } else { "DIFFERS" },
                m.info.input_fact,
                m.info.output_fact
            );
            if !m.top1_matches {
                eprintln!("  warning: {runtime} {}: top-1 differs from the golden reference", model.id);
            }
            json!({
                "runtime": runtime, "model": model.id, "precision": precision,
                "load_ms": m.load_ms, "median_ms": m.median_ms, "runs": runs,
                "peak_mem_bytes": m.peak_mem_bytes, "top1_matches": m.top1_matches, "error": null,
            })
        }
        Err(e) => {
            // tract's messages carry multi-line Debug dumps of the operator: one line is enough here.
            let error = format!("{e:#}").split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("  {runtime} {}: error: {error}", model.id);
            json!({
                "runtime": runtime, "model": model.id, "precision": precision,
                "load_ms": null, "median_ms": null, "runs": runs,
                "peak_mem_bytes": null, "top1_matches": null, "error": error,
            })
        }
    };
    println!("{line}");
}

struct Args {
    component: PathBuf,
    runs: usize,
    onnx_dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut component = None;
    let mut runs = 5;
    let mut onnx_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--component" => component = Some(PathBuf::from(value()?)),
            "--runs" => runs = value()?.parse().context("--runs takes a positive integer")?,
            "--onnx-dir" => onnx_dir = Some(PathBuf::from(value()?)),
            other => {
                bail!("unknown argument {other:?} (usage: bench-tract --component PATH --runs N [--onnx-dir DIR])")
            }
        }
    }
    ensure!(runs > 0, "--runs must be at least 1");
    Ok(Args { component: component.context("--component PATH is required")?, runs, onnx_dir })
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let golden = Golden::load().context("loading the golden manifest")?;
    eprintln!("bench-tract: compiling {} with cranelift", args.component.display());
    let runner = Runner::new(&args.component)?;
    eprintln!(
        "bench-tract: {} loads, 1 warm-up, median of {} runs; first photo case of each golden model",
        LOADS, args.runs
    );
    let tflite_runtime = format!("tract-tflite {TRACT_VERSION} (wasmtime cranelift)");
    let onnx_runtime = format!("tract-onnx {TRACT_VERSION} (wasmtime cranelift)");
    for model in golden.models() {
        let precision = format!("{:?}", model.input.dtype.default_precision()).to_lowercase();
        let result =
            model.model_bytes().and_then(|bytes| measure(&runner, "tflite", &bytes, &golden, model, args.runs));
        report(&tflite_runtime, model, &precision, args.runs, result);
        if let Some(dir) = &args.onnx_dir {
            for (suffix, precision) in [("fp32", "fp32".to_owned()), ("qdq", precision.clone())] {
                if suffix == "qdq" && !model.is_integer() {
                    continue;
                }
                let path = dir.join(format!("{}.{suffix}.onnx", model.id));
                if !path.exists() {
                    eprintln!("  {onnx_runtime} {}: no {}", model.id, path.display());
                    continue;
                }
                let result = std::fs::read(&path)
                    .with_context(|| format!("reading {}", path.display()))
                    .and_then(|bytes| measure(&runner, "onnx", &bytes, &golden, model, args.runs));
                report(&onnx_runtime, model, &precision, args.runs, result);
            }
        }
    }
    Ok(())
}
