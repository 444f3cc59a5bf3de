//! `dist/classify-http.wasm` behind a real HTTP/1.1 listener, one instance per request, as
//! `wasmtime serve` runs it; requests go over TCP from a plain client.

use anyhow::{ensure, Context, Result};
use host_tests::apps::{http_request, HttpResponse, Upload};

use crate::common::*;

fn request(method: &str, path: &str, upload: Upload<'_>) -> HttpResponse {
    http_request(http_server().addr(), method, path, upload).unwrap_or_else(|e| panic!("{method} {path}: {e:#}"))
}

/// Every answer, error or not, is JSON with the right content type.
fn json(r: &HttpResponse) -> serde_json::Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    r.json().unwrap_or_else(|e| panic!("{e:#}"))
}

fn assert_error(r: &HttpResponse, status: u16, kind: &str) {
    let v = json(r);
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["error"]["status"], status, "{v}");
    assert_eq!(v["error"]["kind"], kind, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

fn max_body_bytes() -> usize {
    let info = json(&request("GET", "/", Upload::None));
    info["max_body_bytes"].as_u64().expect("GET / states the body limit") as usize
}

#[test]
fn get_root_describes_the_embedded_model() {
    let r = request("GET", "/", Upload::None);
    let v = json(&r);
    assert_eq!(r.status, 200, "{v}");
    let model = golden_model(EMBEDDED_MODEL_ID);
    assert_eq!(v["input_shape"], serde_json::json!(model.input.shape), "{v}");
    assert_eq!(v["classes"], serde_json::json!(model.output.shape.last()), "{v}");
    assert_eq!(v["precision"], "int8", "{v}");
}

#[test]
fn post_classify_answers_the_reference_top1() -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    for image in ["grace_hopper.bmp", "hot_dog.jpg", "coffee.png"] {
        let case = model.photo_cases().find(|c| c.image == image).context("golden photo")?;
        let r = request("POST", "/classify?top=3", Upload::Sized(&case.image_bytes()?));
        let v = json(&r);
        ensure!(r.status == 200, "{image}: status {}: {v}", r.status);
        ensure!(v["precision"] == "int8" && v["model"].is_string(), "{image}: {v}");
        ensure!(v["inference_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{image}: inference_ms in {v}");
        let predictions = v["predictions"].as_array().context("predictions")?;
        ensure!(predictions.len() == 3, "{image}: top=3 gave {}", predictions.len());
        let label = predictions[0]["label"].as_str().context("the embedded model has labels")?;
        check_top1_label(model, case, label)?;
        let index = predictions[0]["index"].as_u64().context("index")? as u32;
        ensure!(reference_top1(case)?.contains(&index), "{image}: index {index}, reference {:?}", case.top5);
    }
    Ok(())
}

#[test]
fn garbage_is_a_400_json_error() {
    assert_error(&request("POST", "/classify", Upload::Sized(b"this is not an image")), 400, "invalid-image");
    assert_error(&request("POST", "/classify", Upload::Sized(b"")), 400, "invalid-image");
    // A PNG signature followed by nonsense: the decoder must fail cleanly, not trap.
    assert_error(
        &request("POST", "/classify", Upload::Sized(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xff")),
        400,
        "invalid-image",
    );
}

#[test]
fn bad_queries_are_400() {
    assert_error(&request("POST", "/classify?top=0", Upload::Sized(b"x")), 400, "bad-query");
    assert_error(&request("POST", "/classify?precision=int4", Upload::Sized(b"x")), 400, "bad-query");
}

#[test]
fn oversized_declared_body_is_413_before_it_is_sent() {
    let body = vec![0u8; max_body_bytes() + 1];
    assert_error(&request("POST", "/classify", Upload::SizedExpectContinue(&body)), 413, "too-large");
}

#[test]
fn oversized_chunked_body_is_413() {
    let body = vec![0u8; max_body_bytes() + 1];
    assert_error(&request("POST", "/classify", Upload::Chunked(&body)), 413, "too-large");
}

#[test]
fn a_body_at_the_limit_is_read_and_judged_on_content() {
    // Exactly the limit passes the size check and fails as an image: the limit is inclusive.
    let body = vec![0u8; max_body_bytes()];
    assert_error(&request("POST", "/classify", Upload::Chunked(&body)), 400, "invalid-image");
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    assert_error(&request("GET", "/nope", Upload::None), 404, "not-found");
    assert_error(&request("POST", "/classify/extra", Upload::Sized(b"x")), 404, "not-found");
    assert_error(&request("GET", "/classify", Upload::None), 405, "method-not-allowed");
}
