//! `dist/worker/`, the Cloudflare Worker (`cargo xtask worker`), in workerd on a free loopback port,
//! over real TCP: classify-http's HTTP contract (`http_contract.rs`), then requests served
//! concurrently by one isolate's cached models. workerd that
//! cannot start fails these tests; nothing here skips.

use std::sync::OnceLock;

use anyhow::{ensure, Result};
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
