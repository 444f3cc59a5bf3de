//! `dist/worker/`, the Cloudflare Worker (`cargo xtask worker`), in workerd on a free loopback port,
//! over real TCP: classify-http's HTTP contract (`http_contract.rs`), then requests served
//! concurrently by one isolate's cached models. workerd that
//! cannot start fails these tests; nothing here skips.

use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use host_tests::apps::Upload;
use host_tests::workerd::Workerd;

use crate::http_contract::{http_contract, json, request, Timing};

fn workerd() -> &'static Workerd {
    static CELL: OnceLock<Result<Workerd, String>> = OnceLock::new();
    match CELL.get_or_init(|| Workerd::start().map_err(|e| format!("{e:#}"))) {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    }
}

fn addr() -> std::net::SocketAddr {
    workerd().addr()
}

http_contract!(addr, Timing::Null);

/// Eight clients at once on one isolate (whose models are created once and shared): every answer is
/// the one a lone request gets.
#[test]
fn concurrent_requests_get_the_answers_of_lone_ones() -> Result<()> {
    let photo = std::fs::read(host_tests::paths::images_dir().join("grace_hopper.bmp"))?;
    let alone = json(&request(addr(), "POST", "/classify?top=5", Upload::Sized(&photo)));
    let answers: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| json(&request(addr(), "POST", "/classify?top=5", Upload::Sized(&photo)))))
            .collect();
        handles.into_iter().map(|h| h.join().expect("a client thread")).collect()
    });
    for a in answers {
        ensure!(a["predictions"] == alone["predictions"], "{a} differs from {alone}");
    }
    Ok(())
}

/// Cloudflare's memory limit per isolate (JS heap and wasm memory together).
const ISOLATE_BYTES: u64 = 128 << 20;
/// What the JS side may hold besides the classifier's linear memory: the request body twice (its
/// chunks and their copy, at most MAX_BODY_BYTES each) and 16 MiB for V8's heap and the bindings.
const JS_SIDE_BYTES: u64 = 2 * classify_http::contract::MAX_BODY_BYTES as u64 + (16 << 20);

/// The worst an isolate meets: every model cached at every precision (wasm memory never shrinks),
/// then the largest image each decoder accepts. The classifier's linear memory (`x-wasm-memory-bytes`)
/// stays within the isolate's 128 MB less the JS side, and every image is classified.
#[test]
fn an_isolate_with_every_model_cached_classifies_the_largest_images_within_128_mb() -> Result<()> {
    use classify_http::contract::{ModelName, Precision};
    use host_tests::budget_images::{jpeg_at, png_black, progressive};
    let own = Workerd::start()?; // a fresh isolate: nothing else measured in it
    let memory = |r: &host_tests::apps::HttpResponse| -> Result<u64> {
        Ok(r.header("x-wasm-memory-bytes").context("x-wasm-memory-bytes")?.parse()?)
    };
    let photo = std::fs::read(host_tests::paths::images_dir().join("grace_hopper.bmp"))?;
    let mut cached = 0;
    for model in ModelName::ALL {
        for precision in Precision::ALL {
            let path = format!("/classify?model={}&precision={}", model.name(), precision.name());
            let r = request(own.addr(), "POST", &path, Upload::Sized(&photo));
            ensure!(r.status == 200, "{path}: {}", r.status);
            cached = memory(&r)?;
        }
    }
    let images = [
        ("a 4096x3072 baseline JPEG", jpeg_at(4096, 3072, 20)),
        ("a 2048x1536 4:4:4 progressive JPEG", progressive(2048, 1536, jpeg_encoder::SamplingFactor::R_4_4_4)),
        ("a 9000x9000 PNG", png_black(9000, 9000)),
    ];
    let bound = ISOLATE_BYTES - JS_SIDE_BYTES;
    for (what, image) in images {
        ensure!(
            image.len() <= classify_http::contract::MAX_BODY_BYTES,
            "{what} is over the body limit: {} bytes",
            image.len()
        );
        for model in ModelName::ALL {
            let path = format!("/classify?model={}&precision=fp32", model.name());
            let r = request(own.addr(), "POST", &path, Upload::Sized(&image));
            ensure!(r.status == 200, "{what} to {path}: {} {:?}", r.status, json(&r));
            let bytes = memory(&r)?;
            eprintln!(
                "worker memory: {what} to {path}: {:.1} MiB (every model cached: {:.1} MiB)",
                bytes as f64 / (1 << 20) as f64,
                cached as f64 / (1 << 20) as f64
            );
            ensure!(bytes <= bound, "{what}: {} MiB of wasm memory, over {} MiB", bytes >> 20, bound >> 20);
        }
    }
    Ok(())
}
