//! `cargo xtask bench load` (or `cargo run --release -p edge-classify-bench --bin load`): a bounded load run of
//! `dist/classify-http.wasm` behind the suite's `wasmtime serve`-like host (`apps::HttpServer`: one
//! instance per request, its limits), driven over 127.0.0.1 by `--connections` client threads for
//! `--seconds`, each request on a fresh connection, mixing good photos, garbage, truncated images,
//! oversized bodies and decompression bombs. Every answer must have the expected status; a connection
//! error or a wrong status fails the run. Prints p50/p99 latency per kind, throughput, and the
//! process's RSS (server and clients share it) before, at peak and after.
//!
//! Traffic goes only to the loopback address the server bound; the loop is bounded in time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use host_tests::apps::{self, http_request, HttpServer, Upload};
use host_tests::paths;

struct Kind {
    name: &'static str,
    path: &'static str,
    body: Vec<u8>,
    /// Sent as `Expect: 100-continue`, as curl sends large bodies: a 413 then goes out before the body.
    expect_continue: bool,
    status: u16,
}

fn kinds() -> Result<Vec<Kind>> {
    let photo = |name: &str| std::fs::read(paths::images_dir().join(name)).with_context(|| format!("reading {name}"));
    let jpeg = photo("hot_dog.jpg")?;
    // A 9000x9000 black PNG: 0.2 MB that decodes to 243 MB of pixels, streamed now.
    let mut png_bomb = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut png_bomb,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    );
    image::ImageEncoder::write_image(encoder, &vec![0u8; 9000 * 9000 * 3], 9000, 9000, image::ExtendedColorType::Rgb8)?;
    // A 54-byte BMP header claiming 60000 x 60000 x 24 bit.
    let bmp_bomb = host_tests::budget_images::bmp_header(60_000, 60_000);
    let mut noise = 0x9e37_79b9u32;
    let garbage = (0..64 << 10)
        .map(|_| {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            noise as u8
        })
        .collect();
    let kind = |name, path, body, status| Kind { name, path, body, expect_continue: false, status };
    Ok(vec![
        kind("photo bmp", "/classify?top=3", photo("grace_hopper.bmp")?, 200),
        kind("photo jpeg", "/classify?top=3", jpeg.clone(), 200),
        kind("photo png", "/classify?top=3", photo("coffee.png")?, 200),
        kind("garbage", "/classify", garbage, 400),
        kind("truncated jpeg", "/classify", jpeg[..jpeg.len() / 3].to_vec(), 400),
        Kind { expect_continue: true, ..kind("oversized body", "/classify", vec![0u8; 5 << 20], 413) },
        kind("png bomb 9000x9000", "/classify?top=1", png_bomb, 200),
        kind("bmp bomb 60000x60000", "/classify", bmp_bomb, 413),
    ])
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb << 10)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let mut seconds = 30u64;
    let mut connections = 16usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--seconds" => seconds = value.parse()?,
            "--connections" => connections = value.parse()?,
            _ => anyhow::bail!("unknown option {a} (--seconds N, --connections N)"),
        }
    }
    ensure!((1..=600).contains(&seconds) && (1..=64).contains(&connections), "1-600 s, 1-64 connections");

    let engine = apps::engine()?;
    let server = HttpServer::start(&engine, &paths::workspace_root().join("dist/classify-http.wasm"), None)?;
    let kinds = Arc::new(kinds()?);
    let addr = server.addr();
    // One request of each kind first: compiles and warms, and checks the statuses once.
    for k in kinds.iter() {
        let upload = if k.expect_continue { Upload::SizedExpectContinue(&k.body) } else { Upload::Sized(&k.body) };
        let r = http_request(addr, "POST", k.path, upload)?;
        ensure!(r.status == k.status, "{}: status {} (expected {})", k.name, r.status, k.status);
    }
    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let latencies: Arc<Mutex<Vec<Vec<f64>>>> = Arc::new(Mutex::new(vec![Vec::new(); kinds.len()]));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let (kinds, latencies, failures) = (kinds.clone(), latencies.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut i = c;
                while Instant::now() < deadline {
                    let at = i % kinds.len();
                    let k = &kinds[at];
                    i += 1;
                    let upload =
                        if k.expect_continue { Upload::SizedExpectContinue(&k.body) } else { Upload::Sized(&k.body) };
                    let t = Instant::now();
                    let outcome = http_request(addr, "POST", k.path, upload);
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    match outcome {
                        Ok(r) if r.status == k.status => latencies.lock().unwrap()[at].push(ms),
                        Ok(r) => failures.lock().unwrap().push(format!("{}: status {}", k.name, r.status)),
                        Err(e) => failures.lock().unwrap().push(format!("{}: {e:#}", k.name)),
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sampler.join().map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes();

    let latencies = latencies.lock().unwrap();
    let failures = failures.lock().unwrap();
    let total: usize = latencies.iter().map(Vec::len).sum();
    println!(
        "load: {connections} connections for {seconds} s on {addr} (dist/classify-http.wasm, instance per request)"
    );
    println!("  {:<22} {:>8} {:>10} {:>10}", "kind", "answers", "p50 ms", "p99 ms");
    let mut all = Vec::new();
    for (k, l) in kinds.iter().zip(latencies.iter()) {
        let mut l = l.clone();
        l.sort_by(f64::total_cmp);
        println!(
            "  {:<22} {:>8} {:>10.1} {:>10.1}   (all {})",
            k.name,
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            k.status
        );
        all.extend(l);
    }
    all.sort_by(f64::total_cmp);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "  all: {total} answers, {:.1} requests/s, p50 {:.1} ms, p99 {:.1} ms; {} wrong or failed",
        total as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        failures.len()
    );
    println!(
        "  RSS (server and clients in one process): before {:.0} MiB, peak {:.0} MiB, after {:.0} MiB",
        mib(before),
        mib(peak.load(Ordering::Relaxed)),
        mib(after)
    );
    for f in failures.iter().take(10) {
        println!("  FAILED: {f}");
    }
    ensure!(failures.is_empty(), "{} requests got a wrong status or failed", failures.len());
    Ok(())
}
