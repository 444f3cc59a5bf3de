//! `dist/classify-http.wasm` behind a real HTTP/1.1 listener, one instance per request, as
//! `wasmtime serve` runs it; requests go over TCP from a plain client.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use host_tests::apps::{http_request, HttpResponse, HttpServer, Limits, Upload};

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

/// A 12 MP (4000x3000) JPEG of smooth gradients, ~1.4 MB, well under the upload limit. A JPEG is
/// decoded whole (a PNG row by row), so classifying it takes ~51 MiB of the classifier's memory.
pub fn twelve_megapixel_jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| {
        let (w, h) = (4000, 3000);
        let pixels = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + y) % 256) as u8])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&pixels)
            .expect("encoding the test JPEG");
        jpeg
    })
}

/// A server of its own (the shared one keeps the default limits for the other tests).
fn limited_server(limits: Limits) -> HttpServer {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    HttpServer::start_with(engine(), &dist("classify-http.wasm"), Some(cache), limits)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// An `Err` here is a connection the server dropped instead of answering.
fn send(server: &HttpServer, method: &str, path: &str, upload: Upload<'_>) -> HttpResponse {
    http_request(server.addr(), method, path, upload).unwrap_or_else(|e| panic!("{method} {path}: {e:#}"))
}

/// The host's answer for an instance it stopped: a 500 in plain text that names the limit.
fn assert_stopped(r: &HttpResponse, limit: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 500, "{body}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "{r:?}");
    assert!(body.contains(limit), "{body:?} does not name the {limit}");
}

#[test]
fn a_request_over_the_memory_cap_is_a_500_and_the_server_goes_on() {
    // Under the default limits the photo is classified: only the cap below makes it fail.
    let r = request("POST", "/classify", Upload::Sized(twelve_megapixel_jpeg()));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Above what `GET /` and a golden photo need (11.8 and 20.6 MiB), below the 12 MP JPEG's 51.
    let server = limited_server(Limits { memory_bytes: 32 << 20, ..Limits::SERVE });
    let root = send(&server, "GET", "/", Upload::None);
    assert_eq!(root.status, 200, "{root:?}");
    assert_stopped(&send(&server, "POST", "/classify", Upload::Sized(twelve_megapixel_jpeg())), "memory limit");
    let root = send(&server, "GET", "/", Upload::None);
    assert_eq!(root.status, 200, "after the 500: {root:?}");
    let photo = std::fs::read(host_tests::paths::images_dir().join("grace_hopper.bmp")).expect("a golden photo");
    let r = send(&server, "POST", "/classify?top=1", Upload::Sized(&photo));
    assert_eq!(r.status, 200, "a photo that fits, after the 500: {}", String::from_utf8_lossy(&r.body));
}

#[test]
fn a_request_past_its_deadline_is_a_500_and_the_server_goes_on() {
    // At most two epoch ticks (20 ms): decoding and classifying 12 MP takes ~0.25 s.
    let server = limited_server(Limits { deadline: Some(Duration::from_millis(1)), ..Limits::SERVE });
    assert_stopped(&send(&server, "POST", "/classify", Upload::Sized(twelve_megapixel_jpeg())), "deadline");
    server.set_limits(Limits::SERVE);
    let root = send(&server, "GET", "/", Upload::None);
    assert_eq!(root.status, 200, "after the 500: {root:?}");
}

/// Hostile bodies under the body limit: a truncated JPEG is a 400 naming the problem (as Pillow
/// refuses it), a BMP header claiming 60000x60000 and a JPEG over the decode budget are 413 from
/// their headers, before anything is decoded.
#[test]
fn truncated_images_are_400_and_images_over_the_decode_budget_413() -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let jpeg = model.photo_cases().find(|c| c.image == "hot_dog.jpg").context("golden photo")?.image_bytes()?;
    let r = request("POST", "/classify", Upload::Sized(&jpeg[..jpeg.len() / 3]));
    assert_error(&r, 400, "invalid-image");
    ensure!(json(&r)["error"]["message"].as_str().is_some_and(|m| m.contains("JPEG")), "{:?}", json(&r));

    let mut bmp = b"BM".to_vec();
    for v in [70u32, 0, 54, 40, 60_000, 60_000] {
        bmp.extend_from_slice(&v.to_le_bytes());
    }
    bmp.extend_from_slice(&[1, 0, 24, 0]);
    bmp.extend_from_slice(&[0u8; 40]);
    assert_error(&request("POST", "/classify", Upload::Sized(&bmp)), 413, "too-large");

    // A flat gray 4096x3073 JPEG: small on the wire, one row over MAX_BUFFERED_PIXELS decoded.
    let mut over = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut over, 50).encode(
        &vec![128u8; 4096 * 3073],
        4096,
        3073,
        image::ExtendedColorType::L8,
    )?;
    ensure!(over.len() < max_body_bytes(), "the test image ({} bytes) must fit the body limit", over.len());
    let r = request("POST", "/classify", Upload::Sized(&over));
    assert_error(&r, 413, "too-large");
    ensure!(json(&r)["error"]["message"].as_str().is_some_and(|m| m.contains("MAX_BUFFERED_PIXELS")), "{:?}", json(&r));
    Ok(())
}
