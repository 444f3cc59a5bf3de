//! `cargo xtask bench`: every runtime of issue 6's comparison in one invocation, one table.
//!
//! 1. ours: `host-tests`' `bench` (native, scalar and SIMD components in wasmtime Cranelift);
//! 2. tract 0.23.9 compiled into a wasm32-wasip2 component (`bench/tract`), in the same wasmtime;
//! 3. when Python 3 is on the PATH: TFLite (XNNPACK, builtin, reference kernels), ONNX Runtime native
//!    and ONNX Runtime Web in Node on tf2onnx exports (`bench/compare/run.py`, its own pinned venv).
//!
//! Each writes one JSON object per measurement into `<target>/bench/`; the table puts every other
//! runtime's median next to ours (the SIMD component in wasmtime) for the same model and precision.
//!
//! `bench --browser` ([`browser`]) is issue 16's browser benchmark instead: tfjs-tflite and LiteRT.js
//! next to `dist/classifier-simd.wasm` (through jco) in one headless Chromium page (`bench/browser`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{cargo, run, Layout};

const OURS: &str = "edge-classify simd128 (wasmtime cranelift)";

pub fn bench(layout: &Layout, runs: u32, rounds: u32, compare: bool) -> Result<()> {
    let dir = layout.target_dir.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ours = dir.join("ours.jsonl");
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .args(["run", "--quiet", "--release", "-p", "host-tests", "--bin", "bench", "--", "--runs"])
        .arg(runs.to_string())
        .arg("--rounds")
        .arg(rounds.to_string())
        .arg("--json")
        .arg(&ours);
    run(command).context("running our benchmark")?;
    let mut files = vec![ours];
    if compare {
        files.push(tract(layout, &dir, runs)?);
        match python() {
            Some(python) => files.push(baselines(layout, &dir, runs, &python)?),
            None => eprintln!("xtask: no python3 on the PATH: the TFLite / ONNX Runtime rows are left out"),
        }
    }
    let report = table(&files)?;
    print!("{report}");
    let path = dir.join("report.txt");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: table written to {}", path.display());
    Ok(())
}

/// Builds tract's bench component (its own workspace, `+simd128`) and runs it in wasmtime.
fn tract(layout: &Layout, dir: &Path, runs: u32) -> Result<std::path::PathBuf> {
    let target = layout.target_dir.join("tract");
    let mut build = cargo();
    build
        .current_dir(&layout.workspace_root)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128")
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path", "bench/tract/Cargo.toml"])
        .arg("--target-dir")
        .arg(&target);
    run(build).context("building tract's bench component (bench/tract)")?;
    let out = dir.join("tract.jsonl");
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .args(["run", "--quiet", "--release", "-p", "host-tests", "--bin", "bench-tract", "--", "--runs"])
        .arg(runs.to_string())
        .arg("--component")
        .arg(target.join("wasm32-wasip2").join("release").join("bench_tract.wasm"))
        .stdout(Stdio::from(File::create(&out).with_context(|| format!("creating {}", out.display()))?));
    run(command).context("running tract's benchmark")?;
    Ok(out)
}

fn python() -> Option<String> {
    let ok = |p: &str| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
    ["python3", "python"].into_iter().find(|p| ok(p)).map(str::to_owned)
}

/// TFLite, ONNX Runtime and ONNX Runtime Web (`bench/compare/run.py`, which makes its own venv).
fn baselines(layout: &Layout, dir: &Path, runs: u32, python: &str) -> Result<std::path::PathBuf> {
    let out = dir.join("compare.jsonl");
    let mut command = Command::new(python);
    command
        .current_dir(&layout.workspace_root)
        .arg("bench/compare/run.py")
        .arg("--work")
        .arg(dir.join("compare"))
        .arg("--runs")
        .arg(runs.to_string())
        .stdout(Stdio::from(File::create(&out).with_context(|| format!("creating {}", out.display()))?));
    run(command).context("running the TFLite / ONNX Runtime baselines (bench/compare/run.py)")?;
    Ok(out)
}

/// Ours next to every other runtime, per model and precision.
fn table(files: &[std::path::PathBuf]) -> Result<String> {
    let mut rows: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut order = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let v: Value =
                serde_json::from_str(line).with_context(|| format!("a result line of {}", file.display()))?;
            let key =
                (v["model"].as_str().unwrap_or("?").to_owned(), v["precision"].as_str().unwrap_or("?").to_owned());
            if !order.contains(&key) {
                order.push(key.clone());
            }
            rows.entry(key).or_default().push(v);
        }
    }
    let ms = |v: &Value| v["median_ms"].as_f64();
    let mb = |v: &Value| v["peak_mem_bytes"].as_f64().map(|b| format!("{:.1} MB", b / 1e6)).unwrap_or_default();
    let mut out = String::new();
    writeln!(out, "{:<62} {:>10} {:>9} {:>10}  memory", "model / precision / runtime", "median", "ours/this", "load")?;
    // Models in the order ours listed them, then any only the others ran.
    order.sort_by_key(|k| !rows[k].iter().any(|v| v["runtime"] == OURS));
    for key in &order {
        let lines = &rows[key];
        let ours = lines.iter().find(|v| v["runtime"] == OURS).and_then(ms);
        writeln!(out, "{} {}", key.0, key.1)?;
        for v in lines {
            let mut name = v["runtime"].as_str().unwrap_or("?").to_owned();
            if let Some(onnx) = v["onnx"].as_str() {
                // `<model>.fp32.onnx` or `<model>.qdq.onnx`: which export ran.
                let kind = onnx.trim_end_matches(".onnx").rsplit('.').next().unwrap_or(onnx);
                let _ = write!(name, " [{kind}]");
            }
            match (ms(v), v["error"].as_str()) {
                (Some(t), _) => {
                    let ratio = match ours {
                        Some(o) if v["runtime"] != OURS => format!("{:.2}", o / t),
                        _ => String::new(),
                    };
                    let load = v["load_ms"].as_f64().map(|l| format!("{l:.1} ms")).unwrap_or_default();
                    writeln!(out, "    {name:<58} {t:>7.2} ms {ratio:>9} {load:>10}  {}", mb(v))?;
                }
                (None, error) => {
                    // The innermost cause is the informative part of a nested error.
                    let error = error.unwrap_or("no time").lines().next().unwrap_or_default();
                    let tail: Vec<char> = error.chars().collect();
                    let tail: String = tail[tail.len().saturating_sub(100)..].iter().collect();
                    writeln!(out, "    {name:<58} refused: …{tail}")?;
                }
            }
        }
    }
    writeln!(out, "ours/this < 1: ours is faster. Ours = {OURS}; memory: linear memory for wasm rows, peak RSS of the process for native TFLite / ONNX Runtime rows.")?;
    Ok(out)
}

/// `bench --browser` (after `dist`): `npm ci` in `bench/browser` when its `node_modules` is missing
/// or older than the lock, `jco transpile` of `dist/classifier-simd.wasm` into
/// `<target>/bench/browser-jco/`, then `bench/browser/run.mjs`, which prints its table and writes
/// `<target>/bench/browser.jsonl`.
pub fn browser(layout: &Layout, rounds: u32, runs: u32) -> Result<()> {
    let root = &layout.workspace_root;
    let component = root.join("dist").join("classifier-simd.wasm");
    let project = root.join("bench").join("browser");
    crate::npm_ci_if_stale(&project, "bench/browser")?;
    let dir = layout.target_dir.join("bench");
    let jco = dir.join("browser-jco");
    if jco.exists() {
        std::fs::remove_dir_all(&jco).with_context(|| format!("removing {}", jco.display()))?;
    }
    std::fs::create_dir_all(&jco).with_context(|| format!("creating {}", jco.display()))?;
    let mut transpile = Command::new("node");
    transpile
        .arg(project.join("node_modules/@bytecodealliance/jco/dist/jco.js"))
        .args(["transpile", "--quiet", "--name", "classifier", "-o"])
        .arg(&jco)
        .arg(&component);
    run(transpile).context("jco transpile of dist/classifier-simd.wasm")?;
    let json = dir.join("browser.jsonl");
    let mut bench = Command::new("node");
    bench
        .current_dir(root)
        .arg(project.join("run.mjs"))
        .arg("--jco")
        .arg(&jco)
        .args(["--rounds", &rounds.to_string(), "--runs", &runs.to_string()])
        .arg("--json")
        .arg(&json);
    run(bench).context("the browser benchmark (bench/browser/run.mjs)")?;
    eprintln!("xtask: results written to {}", json.display());
    Ok(())
}
