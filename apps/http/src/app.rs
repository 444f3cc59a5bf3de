//! The wasi:http handler: I/O around [`contract::handle`]. The request's method, path, query and
//! body frames go in, the contract's status, headers and JSON come out; the classifier's WIT imports
//! are the contract's [`Backend`]. Nothing here unwraps, so bad input can never trap the instance.

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use wstd::http::body::{Body, Bytes};
use wstd::http::{Error, HeaderValue, Request, Response, StatusCode};

use classify_http::contract::{self, Backend, ClassifierError, ErrorKind, ModelInfo, ModelName, Precision, Prediction};

wit_bindgen::generate!({ path: "../../wit", world: "classifier-client" });

use edge::classify::classifier::{embedded, Model};
use edge::classify::types::{self as t, LoadOptions};

/// The person detector `model=person` selects: examples/doorbell's model (the build passes its path).
static PERSON: &[u8] = include_bytes!(env!("DOORBELL_MODEL"));

pub async fn respond(request: Request<Body>) -> Result<Response<Body>, Error> {
    let (parts, body) = request.into_parts();
    let request = contract::Request { method: parts.method.as_str(), path: parts.uri.path(), query: parts.uri.query() };
    let body = Frames { declared: body.content_length(), body: body.into_boxed_body() };
    let answer = contract::handle(request, body, &mut Wit).await;
    let mut response = Response::new(Body::from(answer.body.to_string()));
    // Every status of the contract is a valid code; 500 is the fallback that cannot be reached.
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        response.headers_mut().insert(*name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// The request body's data frames (trailers are skipped).
struct Frames {
    declared: Option<u64>,
    body: UnsyncBoxBody<Bytes, Error>,
}

impl contract::Body for Frames {
    type Chunk = Bytes;

    fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    async fn next_chunk(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            match self.body.frame().await? {
                Err(e) => return Some(Err(e.to_string())),
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
            }
        }
    }
}

/// The classifier component this app is composed with.
struct Wit;

impl Backend for Wit {
    type Model = Model;

    fn load(&mut self, model: ModelName, precision: Option<Precision>) -> Result<Model, ClassifierError> {
        // Labels the contract declares for the model (the person detector's); its name, the contract gives.
        let options = LoadOptions { precision: precision.map(to_wit), labels: model.labels(), mean: None, std: None };
        match model {
            ModelName::Imagenet => embedded(&options),
            ModelName::Person => Model::load(PERSON, &options),
        }
        .map_err(classifier_error)
    }

    fn info(&mut self, model: &Model) -> ModelInfo {
        let i = model.info();
        ModelInfo {
            name: i.name,
            precision: from_wit(i.precision),
            input_shape: i.input.shape,
            classes: i.classes,
            operators: i.operators,
            macs: i.macs,
            parameter_bytes: i.parameter_bytes,
        }
    }

    fn classify(&mut self, model: &mut Model, image: &[u8], top: u32) -> Result<Vec<Prediction>, ClassifierError> {
        let predictions = model.classify(image, top).map_err(classifier_error)?;
        Ok(predictions.into_iter().map(|p| Prediction { index: p.index, label: p.label, score: p.score }).collect())
    }
}

/// WIT's precision enum is the component's, case for case.
fn to_wit(p: Precision) -> t::Precision {
    match p {
        Precision::Fp32 => t::Precision::Fp32,
        Precision::Int16 => t::Precision::Int16,
        Precision::Int8 => t::Precision::Int8,
    }
}

fn from_wit(p: t::Precision) -> Precision {
    match p {
        t::Precision::Fp32 => Precision::Fp32,
        t::Precision::Int16 => Precision::Int16,
        t::Precision::Int8 => Precision::Int8,
    }
}

fn classifier_error(e: t::Error) -> ClassifierError {
    let (kind, message) = match e {
        t::Error::MalformedModel(m) => (ErrorKind::MalformedModel, m),
        t::Error::UnsupportedModel(m) => (ErrorKind::UnsupportedModel, m),
        t::Error::InvalidImage(m) => (ErrorKind::InvalidImage, m),
        t::Error::InvalidInput(m) => (ErrorKind::InvalidInput, m),
        t::Error::TooLarge(m) => (ErrorKind::TooLarge, m),
    };
    ClassifierError { kind, message }
}
