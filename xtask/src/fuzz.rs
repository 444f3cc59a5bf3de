//! `cargo xtask fuzz`: libFuzzer (through cargo-fuzz) on the bodies in `fuzz/src/targets.rs`.
//!
//! Why libFuzzer by cargo-fuzz: it is the Rust ecosystem's default (rust-fuzz, OSS-Fuzz), its corpora
//! are plain files that our stable replay test (`fuzz/tests/replay.rs`) reads without a fuzzer, and
//! its merge mode minimises a corpus in place. AFL++ needs its own compiler wrapper and a fork server;
//! bolero and honggfuzz add layers over the same engines. cargo-fuzz needs nightly flags (sanitizer,
//! coverage passes), which the stable toolchain accepts under `RUSTC_BOOTSTRAP=1`: no second toolchain.
//!
//! - `fuzz [TARGET...] [--time S] [--runs N]`: each target in turn, from its committed corpus; new
//!   inputs go to a scratch corpus under the target dir, so a run never dirties the checkout.
//!   Prints executions, seconds and corpus size per target; any crash fails the command and leaves
//!   the input in `fuzz/libfuzzer/artifacts/TARGET/`.
//! - `--minimize`: after the run, merge scratch and committed inputs into a small set with the same
//!   coverage (libFuzzer `-set_cover_merge=1`, a third fewer files than `-merge=1` here) and write it
//!   back to `fuzz/corpus/TARGET/`.
//! - `--seed`: write the seed inputs (`fuzz/src/seeds.rs`, from the shared models and photos).
//! - `--list`: the targets and what each checks.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};

use crate::{cargo, Layout};

pub const CARGO_FUZZ: &str = "0.13.2";

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Targets to run (default: all).
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Stop each target after this many executions (whichever of --time and --runs comes first).
    #[arg(long)]
    runs: Option<u64>,
    /// Merge the run's new inputs into the committed corpus, minimised.
    #[arg(long)]
    minimize: bool,
    /// Write the seed inputs into fuzz/corpus/ and stop.
    #[arg(long)]
    seed: bool,
    /// List the targets and stop.
    #[arg(long)]
    list: bool,
}

pub fn fuzz(layout: &Layout, args: FuzzArgs) -> Result<()> {
    let corpus_root = layout.workspace_root.join("fuzz").join("corpus");
    if args.list {
        for t in edge_classify_fuzz::TARGETS {
            println!("{:<14} {}", t.name, t.about);
        }
        return Ok(());
    }
    if args.seed {
        return seed(layout, &corpus_root);
    }
    let targets: Vec<&str> = if args.targets.is_empty() {
        edge_classify_fuzz::TARGETS.iter().map(|t| t.name).collect()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    for t in &targets {
        ensure!(edge_classify_fuzz::by_name(t).is_some(), "no fuzz target {t} (see `cargo xtask fuzz --list`)");
    }
    install_cargo_fuzz()?;
    let fuzz_dir = layout.workspace_root.join("fuzz").join("libfuzzer");
    let target_dir = layout.target_dir.join("fuzz");
    // `cargo-fuzz fuzz SUB` is what `cargo fuzz SUB` runs; calling it directly needs no cargo alias.
    let fuzz_cmd = |sub: &str| {
        let mut c = Command::new("cargo-fuzz");
        c.current_dir(&layout.workspace_root)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", sub, "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg("--target-dir")
            .arg(&target_dir)
            // Overflow checks and debug assertions on: an arithmetic overflow is a finding too.
            .arg("--debug-assertions");
        c
    };
    // One build for all of them (`cargo fuzz build` takes one target or none).
    crate::run(fuzz_cmd("build")).context("building the fuzz targets")?;

    let mut rows = Vec::new();
    for t in &targets {
        let committed = corpus_root.join(t);
        let scratch = layout.target_dir.join("fuzz-corpus").join(t);
        std::fs::create_dir_all(&scratch)?;
        let mut run = fuzz_cmd("run");
        run.arg(t).arg(&scratch).arg(&committed).arg("--").args(libfuzzer_flags(args.time, args.runs));
        let start = Instant::now();
        let (ok, log) = run_logged(run)?;
        let secs = start.elapsed().as_secs_f64();
        let execs = stat(&log, "stat::number_of_executed_units").unwrap_or(0);
        if !ok {
            eprintln!("{}", tail(&log, 40));
            bail!(
                "fuzz target {t} failed after {execs} executions; the input is in {}",
                fuzz_dir.join("artifacts").join(t).display()
            );
        }
        if args.minimize {
            minimize(fuzz_cmd("run"), t, &committed, &scratch, &layout.target_dir)?;
        }
        let files = std::fs::read_dir(&committed).map(|d| d.count()).unwrap_or(0);
        eprintln!("xtask: {t}: {execs} executions in {secs:.0} s, 0 crashes, corpus {files} files");
        rows.push((t.to_string(), execs, secs, stat(&log, "stat::peak_rss_mb").unwrap_or(0), files));
    }
    println!(
        "\n{:<14} {:>12} {:>8} {:>10} {:>8} {:>7}",
        "target", "executions", "seconds", "exec/s", "rss MB", "corpus"
    );
    for (t, execs, secs, rss, files) in rows {
        println!("{t:<14} {execs:>12} {secs:>8.0} {:>10.0} {rss:>8} {files:>7}", execs as f64 / secs);
    }
    println!("0 crashes");
    Ok(())
}

fn libfuzzer_flags(time: u64, runs: Option<u64>) -> Vec<String> {
    let mut f = vec![
        format!("-max_total_time={time}"),
        // A model or image legitimately slow to process is not what we look for; 10 s per input is
        // a hang. 2 GiB: the executor's own budgets (256 MiB per tensor, 512 MiB of arenas) fit.
        "-timeout=10".into(),
        "-rss_limit_mb=2048".into(),
        "-max_len=65536".into(),
        "-print_final_stats=1".into(),
    ];
    if let Some(r) = runs {
        f.push(format!("-runs={r}"));
    }
    f
}

fn minimize(mut c: Command, target: &str, committed: &Path, scratch: &Path, target_dir: &Path) -> Result<()> {
    let merged = target_dir.join("fuzz-merged").join(target);
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged)?;
    c.arg(target).arg(&merged).arg(committed).arg(scratch).args(["--", "-set_cover_merge=1"]);
    let (ok, log) = run_logged(c)?;
    ensure!(ok, "merging the {target} corpus failed:\n{}", tail(&log, 20));
    std::fs::remove_dir_all(committed)?;
    std::fs::create_dir_all(committed)?;
    for e in std::fs::read_dir(&merged)? {
        let p = e?.path();
        std::fs::copy(&p, committed.join(p.file_name().context("file name")?))?;
    }
    Ok(())
}

fn run_logged(mut c: Command) -> Result<(bool, String)> {
    eprintln!("xtask: running {c:?}");
    let out = c.output().context("starting cargo-fuzz")?;
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), log))
}

fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| l.strip_prefix(key)?.trim_start_matches(':').trim().parse().ok())
}

/// The last `n` lines, leaving out libFuzzer's byte dumps of the input (it is in the artifact file).
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| l.len() < 400).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn install_cargo_fuzz() -> Result<()> {
    let have = Command::new("cargo-fuzz").arg("--version").output().ok().filter(|o| o.status.success());
    if have.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ)) {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ} (once per machine, ~2 min)");
    let mut c = cargo();
    c.args(["install", "--locked", "cargo-fuzz", "--version", CARGO_FUZZ]);
    crate::run(c)
}

fn seed(layout: &Layout, corpus_root: &Path) -> Result<()> {
    let shared = crate::fetch::shared_dir(layout);
    let images = edge_classify_fuzz::seeds::images(&shared.join("images")).context("the shared photos")?;
    let models = edge_classify_fuzz::seeds::models();
    let meta_model = std::fs::read(shared.join("models").join("mobilenet_v2_1.0_224_quant.tflite"))
        .context("the shared ImageNet model (its metadata seeds the metadata target)")?;
    let mut metadata = edge_classify_fuzz::seeds::metadata_seeds(&meta_model);
    ensure!(!metadata.is_empty(), "the shared ImageNet model has no metadata with labels");
    // The whole-file form too: the tiny model with a metadata buffer and zip of its own.
    metadata.extend(models.iter().take(1).cloned());
    let requests = edge_classify_fuzz::seeds::requests(&images);
    let nn = edge_classify_fuzz::seeds::nn_inputs();
    let sets: [(&str, &edge_classify_fuzz::seeds::Inputs); 6] = [
        ("tflite_load", &models),
        ("quantize", &models),
        ("metadata", &metadata),
        ("image_decode", &images),
        ("http_request", &requests),
        ("wasi_nn", &nn),
    ];
    for (target, inputs) in sets {
        let dir = corpus_root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in inputs {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{target}: {} seeds in {}", inputs.len(), dir.display());
    }
    Ok(())
}
