//! classify-http's HTTP contract as tests: routes, query, JSON shapes, error kinds and statuses, the
//! body limit. [`http_contract!`] writes them for one server, so classify-http (`http.rs`, wasmtime
//! serve) and the Cloudflare Worker (`worker.rs`, workerd) answer the same cases over real TCP.

use std::net::SocketAddr;

use anyhow::{ensure, Context, Result};
use host_tests::apps::{http_request, HttpResponse, Upload};

use crate::common::*;

/// Whether the server can time its own inference: workerd's clocks do not advance during a
/// request, so the Worker answers `inference_ms: null`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Measured,
    Null,
}

pub fn request(addr: SocketAddr, method: &str, path: &str, upload: Upload<'_>) -> HttpResponse {
    http_request(addr, method, path, upload).unwrap_or_else(|e| panic!("{method} {path}: {e:#}"))
}

/// Every answer, error or not, is JSON with the right content type.
pub fn json(r: &HttpResponse) -> serde_json::Value {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    r.json().unwrap_or_else(|e| panic!("{e:#}"))
}

pub fn assert_error(r: &HttpResponse, status: u16, kind: &str) {
    let v = json(r);
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["error"]["status"], status, "{v}");
    assert_eq!(v["error"]["kind"], kind, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

pub fn max_body_bytes(addr: SocketAddr) -> usize {
    let info = json(&request(addr, "GET", "/", Upload::None));
    info["max_body_bytes"].as_u64().expect("GET / states the body limit") as usize
}

pub fn get_root_describes_the_embedded_model(addr: SocketAddr) {
    let r = request(addr, "GET", "/", Upload::None);
    let v = json(&r);
    assert_eq!(r.status, 200, "{v}");
    let model = golden_model(EMBEDDED_MODEL_ID);
    assert_eq!(v["input_shape"], serde_json::json!(model.input.shape), "{v}");
    assert_eq!(v["classes"], serde_json::json!(model.output.shape.last()), "{v}");
    assert_eq!(v["precision"], "int8", "{v}");
    assert_eq!(v["max_body_bytes"], classify_http::contract::MAX_BODY_BYTES, "{v}");
    assert_eq!(v["endpoints"], serde_json::json!(classify_http::contract::endpoints()), "{v}");
    // The embedded model's metadata names it; the person detector, which has none, is named by the app.
    assert_eq!(v["model"], "ImageClassifier", "{v}");
    assert_eq!(v["model_names"], serde_json::json!({"imagenet": "ImageClassifier", "person": PERSON_NAME}), "{v}");
    assert!(!v.to_string().contains(CONVERTER), "{v}");
}

/// The name the apps give the person detector (its file has no metadata).
const PERSON_NAME: &str = "Visual Wake Words person detector";
/// The person detector's description, which its converter wrote: never a name in any answer.
const CONVERTER: &str = "TOCO Converted.";

pub fn post_classify_answers_the_reference_top1(addr: SocketAddr, timing: Timing) -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    for image in ["grace_hopper.bmp", "hot_dog.jpg", "coffee.png"] {
        let case = model.photo_cases().find(|c| c.image == image).context("golden photo")?;
        let r = request(addr, "POST", "/classify?top=3", Upload::Sized(&case.image_bytes()?));
        let v = json(&r);
        ensure!(r.status == 200, "{image}: status {}: {v}", r.status);
        ensure!(v["precision"] == "int8" && v["model"] == "ImageClassifier", "{image}: {v}");
        match timing {
            Timing::Measured => {
                ensure!(v["inference_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{image}: inference_ms in {v}")
            }
            Timing::Null => ensure!(v["inference_ms"].is_null(), "{image}: inference_ms in {v}"),
        }
        let predictions = v["predictions"].as_array().context("predictions")?;
        ensure!(predictions.len() == 3, "{image}: top=3 gave {}", predictions.len());
        let label = predictions[0]["label"].as_str().context("the embedded model has labels")?;
        check_top1_label(model, case, label)?;
        let index = predictions[0]["index"].as_u64().context("index")? as u32;
        ensure!(reference_top1(case)?.contains(&index), "{image}: index {index}, reference {:?}", case.top5);
    }
    Ok(())
}

pub fn garbage_is_a_400_json_error(addr: SocketAddr) {
    assert_error(&request(addr, "POST", "/classify", Upload::Sized(b"this is not an image")), 400, "invalid-image");
    assert_error(&request(addr, "POST", "/classify", Upload::Sized(b"")), 400, "invalid-image");
    // A PNG signature followed by nonsense: the decoder must fail cleanly, not trap.
    assert_error(
        &request(addr, "POST", "/classify", Upload::Sized(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xff")),
        400,
        "invalid-image",
    );
}

pub fn bad_queries_are_400(addr: SocketAddr) {
    for query in ["top=0", "top=-1", "top=", "precision=int4", "k=v", "model=cat"] {
        assert_error(&request(addr, "POST", &format!("/classify?{query}"), Upload::Sized(b"x")), 400, "bad-query");
    }
}

pub fn oversized_declared_body_is_413_before_it_is_sent(addr: SocketAddr) {
    let body = vec![0u8; max_body_bytes(addr) + 1];
    assert_error(&request(addr, "POST", "/classify", Upload::SizedExpectContinue(&body)), 413, "too-large");
}

pub fn oversized_chunked_body_is_413(addr: SocketAddr) {
    let body = vec![0u8; max_body_bytes(addr) + 1];
    assert_error(&request(addr, "POST", "/classify", Upload::Chunked(&body)), 413, "too-large");
}

pub fn a_body_at_the_limit_is_read_and_judged_on_content(addr: SocketAddr) {
    // Exactly the limit passes the size check and fails as an image: the limit is inclusive.
    let body = vec![0u8; max_body_bytes(addr)];
    assert_error(&request(addr, "POST", "/classify", Upload::Chunked(&body)), 400, "invalid-image");
}

pub fn unknown_paths_are_404_and_wrong_methods_405(addr: SocketAddr) {
    assert_error(&request(addr, "GET", "/nope", Upload::None), 404, "not-found");
    assert_error(&request(addr, "POST", "/classify/extra", Upload::Sized(b"x")), 404, "not-found");
    assert_error(&request(addr, "GET", "/classify", Upload::None), 405, "method-not-allowed");
    assert_error(&request(addr, "DELETE", "/", Upload::None), 405, "method-not-allowed");
}

/// Hostile bodies under the body limit: a truncated JPEG is a 400 naming the problem (as Pillow
/// refuses it), a BMP header claiming 60000x60000 and images over the budgets of what is decoded whole
/// (BMP, progressive JPEG) are 413 from their headers, before anything is decoded.
pub fn truncated_images_are_400_and_images_over_the_decode_budget_413(addr: SocketAddr) -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let jpeg = model.photo_cases().find(|c| c.image == "hot_dog.jpg").context("golden photo")?.image_bytes()?;
    let r = request(addr, "POST", "/classify", Upload::Sized(&jpeg[..jpeg.len() / 3]));
    assert_error(&r, 400, "invalid-image");
    ensure!(json(&r)["error"]["message"].as_str().is_some_and(|m| m.contains("JPEG")), "{:?}", json(&r));

    let huge = host_tests::budget_images::bmp_header(60_000, 60_000);
    assert_error(&request(addr, "POST", "/classify", Upload::Sized(&huge)), 413, "too-large");

    // One row over each budget of what must be held whole: small on the wire, refused from the header.
    use host_tests::budget_images::{bmp_header, progressive};
    for (over, budget) in [
        (bmp_header(4096, 3073), "MAX_BUFFERED_PIXELS"),
        (progressive(2048, 1537, jpeg_encoder::SamplingFactor::R_4_2_0), "MAX_PROGRESSIVE_PIXELS"),
    ] {
        ensure!(over.len() < max_body_bytes(addr), "the test image ({} bytes) must fit the body limit", over.len());
        let r = request(addr, "POST", "/classify", Upload::Sized(&over));
        assert_error(&r, 413, "too-large");
        ensure!(json(&r)["error"]["message"].as_str().is_some_and(|m| m.contains(budget)), "{:?}", json(&r));
    }
    Ok(())
}

/// `model=person`: the Visual Wake Words detector (examples/doorbell's model) on the VWW test frames:
/// at its own precision the top-1 of TFLite's reference; at int16 (person.bmp is borderline, 0.52 at
/// int8, and flips) the scores the native crate computes, bit for bit.
pub fn the_person_model_gives_the_reference_verdict(addr: SocketAddr) -> Result<()> {
    use edge_classify::model::{LoadOptions, Model, Precision};
    let model = golden_model("person_detect");
    let tflite = std::fs::read(host_tests::paths::models_dir().join("person_detect.tflite"))?;
    let labels = ["no person", "person"];
    let options = LoadOptions {
        precision: Some(Precision::Int16),
        labels: Some(labels.join("\n")),
        mean: None,
        std: None,
        name: None,
    };
    let mut native16 = Model::load(&tflite, &options)?;
    for image in ["person.bmp", "no_person.bmp"] {
        let case = model.cases.iter().find(|c| c.image == image).context("golden VWW case")?;
        let bytes = case.image_bytes()?;
        let r = request(addr, "POST", "/classify?model=person&top=1", Upload::Sized(&bytes));
        let v = json(&r);
        ensure!(r.status == 200 && v["precision"] == "int8", "{image}: {v}");
        ensure!(v["model"] == PERSON_NAME && !v.to_string().contains(CONVERTER), "{image}: {v}");
        let index = v["predictions"][0]["index"].as_u64().context("index")? as u32;
        let top = reference_top1(case)?;
        ensure!(top.contains(&index), "{image}: index {index}, the reference's top-1 {top:?}");
        // Index 0 is "no person" (vww_labels.txt: notperson, person); the frames are named for their answer.
        let want = if image == "person.bmp" { "person" } else { "no person" };
        ensure!(labels[index as usize] == want, "{image}: the reference says {}", labels[index as usize]);
        ensure!(
            v["predictions"][0]["label"] == want,
            "{image}: label {}, want {want:?}: {v}",
            v["predictions"][0]["label"]
        );

        let r = request(addr, "POST", "/classify?model=person&top=2&precision=int16", Upload::Sized(&bytes));
        let v = json(&r);
        ensure!(v["model"] == PERSON_NAME && v["precision"] == "int16", "{image} at int16: {v}");
        let want: Vec<serde_json::Value> = native16
            .classify(&bytes, 2)?
            .iter()
            .map(|p| serde_json::json!({"index": p.index, "label": p.label, "score": p.score}))
            .collect();
        ensure!(v["predictions"] == serde_json::json!(want), "{image} at int16: {v}, natively {want:?}");
    }
    assert_error(&request(addr, "POST", "/classify?model=cat", Upload::Sized(b"x")), 400, "bad-query");
    let root = json(&request(addr, "GET", "/", Upload::None));
    let names = classify_http::contract::ModelName::ALL.map(classify_http::contract::ModelName::name);
    ensure!(root["models"] == serde_json::json!(names), "{root}");
    ensure!(root["model_names"]["person"] == PERSON_NAME, "{root}");
    Ok(())
}

/// The contract's tests for the server `$addr()` returns, whose inference timing is `$timing`.
macro_rules! http_contract {
    ($addr:expr, $timing:expr) => {
        use crate::http_contract as c;

        #[test]
        fn get_root_describes_the_embedded_model() {
            c::get_root_describes_the_embedded_model($addr())
        }
        #[test]
        fn post_classify_answers_the_reference_top1() -> anyhow::Result<()> {
            c::post_classify_answers_the_reference_top1($addr(), $timing)
        }
        #[test]
        fn garbage_is_a_400_json_error() {
            c::garbage_is_a_400_json_error($addr())
        }
        #[test]
        fn bad_queries_are_400() {
            c::bad_queries_are_400($addr())
        }
        #[test]
        fn oversized_declared_body_is_413_before_it_is_sent() {
            c::oversized_declared_body_is_413_before_it_is_sent($addr())
        }
        #[test]
        fn oversized_chunked_body_is_413() {
            c::oversized_chunked_body_is_413($addr())
        }
        #[test]
        fn a_body_at_the_limit_is_read_and_judged_on_content() {
            c::a_body_at_the_limit_is_read_and_judged_on_content($addr())
        }
        #[test]
        fn unknown_paths_are_404_and_wrong_methods_405() {
            c::unknown_paths_are_404_and_wrong_methods_405($addr())
        }
        #[test]
        fn the_person_model_gives_the_reference_verdict() -> anyhow::Result<()> {
            c::the_person_model_gives_the_reference_verdict($addr())
        }
        #[test]
        fn truncated_images_are_400_and_images_over_the_decode_budget_413() -> anyhow::Result<()> {
            c::truncated_images_are_400_and_images_over_the_decode_budget_413($addr())
        }
    };
}
pub(crate) use http_contract;
