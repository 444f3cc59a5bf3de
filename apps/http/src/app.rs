//! The wasi:http handler. Every request gets an answer with a status and a JSON body: nothing
//! here unwraps, so bad input can never trap the instance.

use std::time::Instant;

use http_body_util::BodyExt;
use wstd::http::body::Body;
use wstd::http::{Error, HeaderValue, Request, Response, StatusCode};

use classify_http::route::{self, Route};

wit_bindgen::generate!({ path: "../../wit", world: "classifier-client" });

use edge::classify::classifier::{embedded, Model};

/// The person detector `model=person` selects: examples/doorbell's model (the build passes its path).
static PERSON: &[u8] = include_bytes!(env!("DOORBELL_MODEL"));
use edge::classify::types::{self as t, LoadOptions};

/// An answer: status and JSON text.
struct Answer {
    status: u16,
    json: String,
}

impl Answer {
    fn error(status: u16, kind: &str, message: impl AsRef<str>) -> Answer {
        Answer { status, json: route::error_body(status, kind, message.as_ref()) }
    }

    fn ok(json: serde_json::Value) -> Answer {
        Answer { status: 200, json: json.to_string() }
    }
}

pub async fn respond(request: Request<Body>) -> Result<Response<Body>, Error> {
    let answer = handle(request).await;
    let mut response = Response::new(Body::from(answer.json));
    // Every status used here is a valid code; 500 is the fallback that cannot be reached.
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    Ok(response)
}

async fn handle(request: Request<Body>) -> Answer {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    match route::route(request.method().as_str(), &path) {
        Route::NotFound => Answer::error(404, "not-found", format!("no such path {path}; try GET / or POST /classify")),
        Route::MethodNotAllowed(allowed) => {
            Answer::error(405, "method-not-allowed", format!("{path} answers {allowed} only"))
        }
        Route::Info => info(),
        Route::Classify => {
            let query = match route::parse_query(query.as_deref()) {
                Ok(q) => q,
                Err(e) => return Answer::error(400, "bad-query", e),
            };
            let image = match read_body(request.into_body()).await {
                Ok(bytes) => bytes,
                Err(answer) => return answer,
            };
            classify(&image, &query)
        }
    }
}

/// The body, up to [`route::MAX_BODY_BYTES`]. A declared length over the limit is refused before
/// reading; an undeclared (chunked) one is read until it passes the limit and then drained for
/// as much again, so a client that sends a little too much sees the 413 rather than a reset
/// connection.
async fn read_body(body: Body) -> Result<Vec<u8>, Answer> {
    let limit = route::MAX_BODY_BYTES;
    let too_large = || Answer::error(413, "too-large", format!("the image must be at most {limit} bytes"));
    if body.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = body.into_boxed_body();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Answer::error(400, "bad-body", format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen > 2 * limit {
            break;
        }
        if seen <= limit {
            bytes.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

fn precision_name(p: t::Precision) -> &'static str {
    match p {
        t::Precision::Fp32 => "fp32",
        t::Precision::Int16 => "int16",
        t::Precision::Int8 => "int8",
    }
}

/// Status and kind for a classifier error: the caller's fault is 4xx, ours (a broken embedded
/// model) is 500.
fn classifier_error(e: t::Error) -> Answer {
    match e {
        t::Error::InvalidImage(m) => Answer::error(400, "invalid-image", m),
        t::Error::InvalidInput(m) => Answer::error(400, "invalid-input", m),
        t::Error::UnsupportedModel(m) => Answer::error(400, "unsupported", m),
        t::Error::TooLarge(m) => Answer::error(413, "too-large", m),
        t::Error::MalformedModel(m) => Answer::error(500, "malformed-model", m),
    }
}

fn load(name: route::ModelName, precision: Option<route::Precision>) -> Result<Model, Answer> {
    let precision = precision.map(|p| match p {
        route::Precision::Fp32 => t::Precision::Fp32,
        route::Precision::Int16 => t::Precision::Int16,
        route::Precision::Int8 => t::Precision::Int8,
    });
    let options = LoadOptions { precision, labels: None, mean: None, std: None };
    match name {
        route::ModelName::Imagenet => embedded(&options),
        route::ModelName::Person => Model::load(PERSON, &options),
    }
    .map_err(classifier_error)
}

fn info() -> Answer {
    let model = match load(route::ModelName::Imagenet, None) {
        Ok(m) => m,
        Err(answer) => return answer,
    };
    let i = model.info();
    Answer::ok(serde_json::json!({
        "model": i.name,
        "precision": precision_name(i.precision),
        "input_shape": i.input.shape,
        "classes": i.classes,
        "operators": i.operators,
        "macs": i.macs,
        "parameter_bytes": i.parameter_bytes,
        "max_body_bytes": route::MAX_BODY_BYTES,
        "endpoints": route::ENDPOINTS,
        "models": route::ModelName::ALL.map(route::ModelName::name),
    }))
}

fn classify(image: &[u8], query: &route::Query) -> Answer {
    let model = match load(query.model, query.precision) {
        Ok(m) => m,
        Err(answer) => return answer,
    };
    let start = Instant::now();
    let predictions = match model.classify(image, query.top) {
        Ok(p) => p,
        Err(e) => return classifier_error(e),
    };
    let inference_ms = start.elapsed().as_secs_f64() * 1e3;
    let info = model.info();
    let predictions: Vec<_> =
        predictions.iter().map(|p| serde_json::json!({"index": p.index, "label": p.label, "score": p.score})).collect();
    Answer::ok(serde_json::json!({
        "model": info.name,
        "precision": precision_name(info.precision),
        "predictions": predictions,
        "inference_ms": inference_ms,
    }))
}
