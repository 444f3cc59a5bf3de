//! `dist/worker/`, the Cloudflare Worker (`cargo xtask worker`), in workerd on a free loopback port,
//! over real TCP: classify-http's HTTP contract (`http_contract.rs`), then what only the Worker has —
//! the person model, and requests served concurrently by one isolate's cached models. workerd that
//! cannot start fails these tests; nothing here skips.

use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use host_tests::apps::Upload;
use host_tests::workerd::Workerd;

use crate::common::*;
use crate::http_contract::{assert_error, http_contract, json, request, Timing};

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

/// `model=person`: the Visual Wake Words detector (examples/doorbell's model) on the VWW test frames:
/// at its own precision the top-1 of TFLite's reference; at int16 (person.bmp is borderline, 0.52 at
/// int8, and flips) the scores the native crate computes, bit for bit.
#[test]
fn the_person_model_gives_the_reference_verdict() -> Result<()> {
    use edge_classify::model::{LoadOptions, Model, Precision};
    let model = golden_model("person_detect");
    let tflite = std::fs::read(host_tests::paths::models_dir().join("person_detect.tflite"))?;
    let options = LoadOptions { precision: Some(Precision::Int16), labels: None, mean: None, std: None };
    let mut native16 = Model::load(&tflite, &options)?;
    for image in ["person.bmp", "no_person.bmp"] {
        let case = model.cases.iter().find(|c| c.image == image).context("golden VWW case")?;
        let bytes = case.image_bytes()?;
        let r = request(addr(), "POST", "/classify?model=person&top=1", Upload::Sized(&bytes));
        let v = json(&r);
        ensure!(r.status == 200 && v["precision"] == "int8", "{image}: {v}");
        let index = v["predictions"][0]["index"].as_u64().context("index")? as u32;
        let top = reference_top1(case)?;
        ensure!(top.contains(&index), "{image}: index {index}, the reference's top-1 {top:?}");

        let r = request(addr(), "POST", "/classify?model=person&top=2&precision=int16", Upload::Sized(&bytes));
        let v = json(&r);
        let want: Vec<serde_json::Value> = native16
            .classify(&bytes, 2)?
            .iter()
            .map(|p| serde_json::json!({"index": p.index, "label": null, "score": p.score}))
            .collect();
        ensure!(v["predictions"] == serde_json::json!(want), "{image} at int16: {v}, natively {want:?}");
    }
    assert_error(&request(addr(), "POST", "/classify?model=cat", Upload::Sized(b"x")), 400, "bad-query");
    let root = json(&request(addr(), "GET", "/", Upload::None));
    ensure!(root["models"] == serde_json::json!(["imagenet", "person"]), "{root}");
    Ok(())
}

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
