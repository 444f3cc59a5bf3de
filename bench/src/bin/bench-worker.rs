//! `cargo xtask bench worker`: the premise's experiment, reproduced. The same HTTP API served by
//! the Cloudflare Worker in workerd (`dist/worker/`) and by `dist/classify-http.wasm` behind the
//! `wasmtime serve`-like listener the tests use, one model and precision at a time, each server fresh:
//!
//! - cold start: spawn (workerd process / component load and listener) until the first
//!   `POST /classify` at this model and precision has answered 200;
//! - model load, the premise's "memory" time: workerd creates a model once per isolate, so it is the
//!   first request minus the median of the later ones; classify-http sets one up in every request's
//!   instance, so it is a request minus the guest's own `inference_ms` (instantiation, model setup
//!   and HTTP);
//! - inference: the median of `--runs` later requests timed by the client (workerd's clocks do not
//!   advance during a request), and classify-http's guest-timed `inference_ms` beside it.
//!
//! Rounds are interleaved: every round runs every (model, precision) on both servers, their order
//! swapped each round; the workerd / wasmtime ratio is the median of per-round ratios.
//!
//! `--cache DIR` is wasmtime's compile cache (warmed before the rounds); `--dog WORKER_DIR HTTP_WASM` adds the dog-breed model: the Worker and classify-http `xtask` built
//! with it baked in as the default model (it has no public source, so `dist/` cannot embed it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use host_tests::apps::{engine, http_request, HttpResponse, HttpServer, Upload};
use host_tests::paths;
use host_tests::workerd::{worker_dir, Workerd};
use wasmtime::Engine;

use edge_classify::model::Precision;

/// The precisions both servers are asked for (`precision=` in the query), in report order.
fn precisions() -> [&'static str; 3] {
    Precision::ALL.map(Precision::name)
}

/// One model as both servers serve it.
struct Case {
    label: &'static str,
    /// `model=` in the query (none: the server's default, the baked-in model).
    query: Option<&'static str>,
    photo: &'static str,
    worker: PathBuf,
    http: PathBuf,
    /// The premise's numbers for the model it compares with: (load ms, inference ms).
    premise: Option<(&'static str, f64, f64)>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Server {
    Workerd,
    WasmtimeServe,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Workerd => "workerd",
            Server::WasmtimeServe => "wasmtime",
        }
    }
}

/// One server's measurements in one round.
struct Round {
    cold_ms: f64,
    first_ms: f64,
    warm_ms: f64,
    guest_ms: Option<f64>,
    memory_bytes: Option<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg_after(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

fn post(addr: std::net::SocketAddr, path: &str, photo: &[u8]) -> Result<(Duration, HttpResponse)> {
    let t = Instant::now();
    let r = http_request(addr, "POST", path, Upload::Sized(photo))?;
    let took = t.elapsed();
    ensure!(r.status == 200, "POST {path} answered {}: {}", r.status, String::from_utf8_lossy(&r.body));
    Ok((took, r))
}

fn measure(
    engine: &Engine,
    cache: &Path,
    server: Server,
    case: &Case,
    precision: &str,
    runs: usize,
    photo: &[u8],
) -> Result<Round> {
    let mut path = format!("/classify?top=1&precision={precision}");
    if let Some(m) = case.query {
        path.push_str(&format!("&model={m}"));
    }
    // Held until the round is measured: dropping one stops it.
    let (addr, spawned, _workerd, _http) = match server {
        Server::Workerd => {
            let w = Workerd::start_in(&case.worker)?;
            (w.addr(), w.spawned(), Some(w), None)
        }
        Server::WasmtimeServe => {
            let spawned = Instant::now();
            let s = HttpServer::start(engine, &case.http, Some(cache))?;
            (s.addr(), spawned, None, Some(s))
        }
    };
    let (first, _) = post(addr, &path, photo)?;
    let cold = spawned.elapsed();
    let mut warm = Vec::with_capacity(runs);
    let mut guest = Vec::with_capacity(runs);
    let mut memory = None;
    for _ in 0..runs {
        let (took, r) = post(addr, &path, photo)?;
        warm.push(ms(took));
        if let Some(g) = r.json()?["inference_ms"].as_f64() {
            guest.push(g);
        }
        memory = r.header("x-wasm-memory-bytes").and_then(|m| m.parse().ok());
    }
    Ok(Round {
        cold_ms: ms(cold),
        first_ms: ms(first),
        warm_ms: median(warm),
        guest_ms: (!guest.is_empty()).then(|| median(guest)),
        memory_bytes: memory,
    })
}

fn main() -> Result<()> {
    let rounds: usize = arg_after("--rounds").map(|r| r.parse()).transpose()?.unwrap_or(3);
    let runs: usize = arg_after("--runs").map(|r| r.parse()).transpose()?.unwrap_or(10);
    ensure!(rounds > 0 && runs > 0, "--rounds and --runs must be at least 1");
    let json_out = arg_after("--json").map(PathBuf::from);
    let dist = paths::workspace_root().join("dist");
    let http = dist.join("classify-http.wasm");
    let mut cases = vec![
        Case {
            label: "ImageNet MobileNetV2 224 uint8",
            query: Some("imagenet"),
            photo: "grace_hopper.bmp",
            worker: worker_dir(),
            http: http.clone(),
            premise: None,
        },
        Case {
            label: "VWW person 96 int8",
            query: Some("person"),
            photo: "person.bmp",
            worker: worker_dir(),
            http: http.clone(),
            premise: Some(("2-class COCO person", 159.0, 15.0)),
        },
    ];
    let dog = std::env::args().skip_while(|a| a != "--dog").skip(1).take(2).collect::<Vec<_>>();
    if let [worker, http] = &dog[..] {
        cases.push(Case {
            label: "dog breeds MobileNetV2 160 int8",
            query: None,
            photo: "dog_segmentation_256.bmp",
            worker: worker.into(),
            http: http.into(),
            premise: Some(("10-class ImageNet-derived", 110.0, 189.0)),
        });
    }
    // Warm wasmtime's compile cache, so that cold start is what `wasmtime serve` (cache on by
    // default) pays once a component has been compiled: loading it, not compiling it.
    let engine = engine()?;
    let cache = arg_after("--cache")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("edge-classify-bench-worker-cwasm"));
    for case in &cases {
        host_tests::apps::compile(&engine, &case.http, Some(&cache))?;
    }

    let mut results: BTreeMap<(usize, usize, Server), Vec<Round>> = BTreeMap::new();
    for round in 0..rounds {
        let mut order = [Server::Workerd, Server::WasmtimeServe];
        if round % 2 == 1 {
            order.reverse();
        }
        for (c, case) in cases.iter().enumerate() {
            let photo = std::fs::read(paths::images_dir().join(case.photo))
                .with_context(|| format!("reading {}", case.photo))?;
            for (p, precision) in precisions().iter().enumerate() {
                for server in order {
                    let r = measure(&engine, &cache, server, case, precision, runs, &photo)
                        .with_context(|| format!("{} at {precision} in {}", case.label, server.name()))?;
                    results.entry((c, p, server)).or_default().push(r);
                }
            }
        }
        eprintln!("bench-worker: round {}/{rounds} done", round + 1);
    }
    report(&cases, &results, rounds, runs, json_out.as_deref())
}

fn report(
    cases: &[Case],
    results: &BTreeMap<(usize, usize, Server), Vec<Round>>,
    rounds: usize,
    runs: usize,
    json_out: Option<&Path>,
) -> Result<()> {
    let mut json = String::new();
    println!();
    println!(
        "The premise, reproduced: medians of {rounds} interleaved rounds, {runs} requests each after the first, \
         over 127.0.0.1 (ms)"
    );
    println!(
        "{:<32}{:<7}{:<16}{:>8}{:>8}{:>9}{:>8}{:>9}{:>10}",
        "model", "prec", "server", "cold", "load", "request", "guest", "wd/wt", "wasm MiB"
    );
    for (c, case) in cases.iter().enumerate() {
        for (p, precision) in precisions().iter().enumerate() {
            let wd = &results[&(c, p, Server::Workerd)];
            let wt = &results[&(c, p, Server::WasmtimeServe)];
            let ratio = median(wd.iter().zip(wt).map(|(a, b)| a.warm_ms / b.warm_ms).collect());
            for (server, rs) in [(Server::Workerd, wd), (Server::WasmtimeServe, wt)] {
                let cold = median(rs.iter().map(|r| r.cold_ms).collect());
                let request = median(rs.iter().map(|r| r.warm_ms).collect());
                let guest = rs.iter().map(|r| r.guest_ms).collect::<Option<Vec<_>>>().map(median);
                // workerd keeps the model: its first request pays for it. classify-http sets one up
                // in every request: what a request takes besides the guest's own inference.
                let load = match (server, guest) {
                    (Server::Workerd, _) => median(rs.iter().map(|r| r.first_ms - r.warm_ms).collect()),
                    (_, Some(_)) => median(rs.iter().filter_map(|r| Some(r.warm_ms - r.guest_ms?)).collect()),
                    (_, None) => f64::NAN,
                };
                let memory = rs.iter().filter_map(|r| r.memory_bytes).max();
                println!(
                    "{:<32}{:<7}{:<16}{cold:>8.1}{load:>8.1}{request:>9.2}{:>8}{:>9}{:>10}",
                    case.label,
                    precision,
                    server.name(),
                    guest.map(|g| format!("{g:.2}")).unwrap_or_else(|| "-".into()),
                    if server == Server::Workerd { format!("{ratio:.2}") } else { String::new() },
                    memory.map(|m| format!("{:.1}", m as f64 / (1 << 20) as f64)).unwrap_or_else(|| "-".into()),
                );
                json.push_str(
                    &serde_json::json!({
                        "model": case.label, "precision": precision, "server": server.name(),
                        "cold_ms": cold, "load_ms": load, "request_ms": request, "guest_inference_ms": guest,
                        "workerd_over_wasmtime": ratio, "wasm_memory_bytes": memory,
                        "rounds": rounds, "runs": runs,
                    })
                    .to_string(),
                );
                json.push('\n');
            }
        }
        if let Some((what, load, inference)) = case.premise {
            println!(
                "{:<32}the premise's {what} model in Cloudflare Workers: load {load:.0} ms, inference \
                 {inference:.0} ms (TF.js: ~1500 ms)",
                ""
            );
        }
    }
    println!(
        "workerd: dist/worker (the Worker); wasmtime: dist/classify-http.wasm behind host-tests' wasi:http \
         listener (wasmtime 48, a fresh instance per request as `wasmtime serve` makes)\n\
         cold: spawn to the first 200; load: workerd first request - later median (the model is created \
         once per isolate), wasmtime request - guest inference_ms (every request sets the model up); \
         request: client-timed (decode, preprocess, inference, HTTP); guest: classify-http's own \
         inference_ms; wd/wt: workerd / wasmtime request, median of per-round ratios; fp32 of a uint8 or \
         int8 file is converted from it at load"
    );
    if let Some(path) = json_out {
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
