//! classify-http's HTTP contract as plain Rust: a request in, a [`Response`] (status, headers, JSON
//! body) out, over a [`Backend`] that loads and runs the models. It is written once and run three ways:
//!
//! - the wasi:http app (`app.rs`) only does I/O around [`handle`]: the request's parts and body frames
//!   in, the response out, with the classifier's WIT imports as the backend;
//! - the `http_request` fuzz target calls [`handle`] over the native executor;
//! - the Cloudflare Worker's JavaScript cannot call Rust, so `cargo xtask worker` writes
//!   [`worker_tables`] into its `contract.js`: routes, query keys and values, messages, the error map,
//!   the body limit and the JSON shapes, which `worker.js` only looks up.
//!
//! Answers are built from JSON *shapes* ([`info_shape`], [`classify_shape`], [`prediction_shape`],
//! [`error_shape`]): constant fields, and `"$name"` placeholders filled per request (`$info.x` is the
//! WIT `model-info` field `x`). Messages are templates whose `{name}` placeholders are filled the same
//! way in Rust and in the Worker.

use std::future::Future;
use std::time::Instant;

use serde_json::{json, Value};

pub use edge_classify::model::{Precision, Prediction};

/// Largest accepted image upload. The largest photo in the test set is 1.2 MB; 4 MiB leaves room
/// for phone JPEGs while bounding what one request can make an instance buffer.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Predictions returned when the query has no `top`.
pub const DEFAULT_TOP: u32 = 5;

/// The headers of every answer, error or not.
pub const HEADERS: &[(&str, &str)] = &[("content-type", "application/json")];

/// Every status an answer of [`handle`] can have.
pub const STATUSES: [u16; 6] = [200, 400, 404, 405, 413, 500];

// ---- routes ------------------------------------------------------------------------------------

/// What a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The embedded model's description ([`info_shape`]).
    Info,
    /// The body classified ([`classify_shape`]).
    Classify,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Info => "info",
            Endpoint::Classify => "classify",
        }
    }
}

/// A path, the methods it answers (the first is the one a 405 names) and what it answers.
#[derive(Debug)]
pub struct RouteSpec {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub endpoint: Endpoint,
}

impl RouteSpec {
    /// The method a 405 names.
    pub fn allowed(&self) -> &'static str {
        self.methods.first().copied().unwrap_or("GET")
    }
}

pub const ROUTES: [RouteSpec; 2] = [
    RouteSpec { path: "/", methods: &["GET", "HEAD"], endpoint: Endpoint::Info },
    RouteSpec { path: "/classify", methods: &["POST"], endpoint: Endpoint::Classify },
];

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    To(Endpoint),
    /// A known path with the wrong method; carries the allowed one.
    MethodNotAllowed(&'static str),
    NotFound,
}

pub fn route(method: &str, path: &str) -> Route {
    match ROUTES.iter().find(|r| r.path == path) {
        None => Route::NotFound,
        Some(r) if r.methods.contains(&method) => Route::To(r.endpoint),
        Some(r) => Route::MethodNotAllowed(r.allowed()),
    }
}

// ---- the query ---------------------------------------------------------------------------------

/// The models an app serves, by their query name (`model=`): the embedded ImageNet classifier and
/// the Visual Wake Words person detector (examples/doorbell's model, built into the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    Imagenet,
    Person,
}

impl ModelName {
    pub const ALL: [ModelName; 2] = [ModelName::Imagenet, ModelName::Person];
    /// Without `model=`.
    pub const DEFAULT: ModelName = ModelName::Imagenet;

    pub fn name(self) -> &'static str {
        match self {
            ModelName::Imagenet => "imagenet",
            ModelName::Person => "person",
        }
    }

    /// What the app says of a model it loads from bytes that name and label nothing (a TFLite file
    /// without metadata, whose description is only the converter's "TOCO Converted."): the name its
    /// answers give and its labels, one per output index, which the app passes to `load`. `None`: the
    /// model names and labels itself (the embedded model is baked with both).
    pub fn declared(self) -> Option<Declared> {
        match self {
            ModelName::Imagenet => None,
            // Output 0 is "notperson", 1 "person" (TFLite Micro's vww_labels.txt), spelled as words.
            ModelName::Person => {
                Some(Declared { name: "Visual Wake Words person detector", labels: &["no person", "person"] })
            }
        }
    }

    /// The labels to load this model with ([`ModelName::declared`]), as WIT's `load-options` takes them.
    pub fn labels(self) -> Option<String> {
        self.declared().map(|d| d.labels.join("\n"))
    }
}

/// A served model's name and labels, declared by the app ([`ModelName::declared`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    pub name: &'static str,
    pub labels: &'static [&'static str],
}

/// The query's parameters; anything else in a query is refused, so a typo is not silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Top,
    Precision,
    Model,
}

impl Param {
    pub const ALL: [Param; 3] = [Param::Top, Param::Precision, Param::Model];

    /// The query key, and the name of the parsed query's field ([`Query`]).
    pub fn key(self) -> &'static str {
        match self {
            Param::Top => "top",
            Param::Precision => "precision",
            Param::Model => "model",
        }
    }

    /// The values accepted; `None`: a positive whole number (a `u32`).
    pub fn values(self) -> Option<Vec<&'static str>> {
        match self {
            Param::Top => None,
            Param::Precision => Some(Precision::ALL.map(Precision::name).to_vec()),
            Param::Model => Some(ModelName::ALL.map(ModelName::name).to_vec()),
        }
    }

    /// The value without the key (`null`: the model's own precision).
    pub fn default_value(self) -> Value {
        match self {
            Param::Top => json!(DEFAULT_TOP),
            Param::Precision => Value::Null,
            Param::Model => json!(ModelName::DEFAULT.name()),
        }
    }

    /// The answer to a value that is not accepted (`{value}`: the value, quoted).
    pub fn problem(self) -> Problem {
        match self {
            Param::Top => BAD_TOP,
            Param::Precision => BAD_PRECISION,
            Param::Model => BAD_MODEL,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Query {
    pub top: u32,
    pub precision: Option<Precision>,
    pub model: ModelName,
}

/// Parses `top`, `precision` and `model`; anything else is refused.
pub fn parse_query(query: Option<&str>) -> Result<Query, Failure> {
    let mut q = Query { top: DEFAULT_TOP, precision: None, model: ModelName::DEFAULT };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(param) = Param::ALL.into_iter().find(|p| p.key() == key) else {
            return Err(UNKNOWN_PARAM.with(&[("key", &format!("{key:?}"))]));
        };
        let bad = || param.problem().with(&[("value", &format!("{value:?}"))]);
        match param {
            Param::Top => q.top = value.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(bad)?,
            Param::Precision => q.precision = Some(Precision::parse(value).ok_or_else(bad)?),
            Param::Model => q.model = ModelName::ALL.into_iter().find(|m| m.name() == value).ok_or_else(bad)?,
        }
    }
    Ok(q)
}

/// What `GET /` lists under `endpoints`: each route, the query with every value it takes.
pub fn endpoints() -> Vec<String> {
    ROUTES
        .iter()
        .map(|r| {
            let route = format!("{} {}", r.allowed(), r.path);
            if r.endpoint != Endpoint::Classify {
                return route;
            }
            let params: Vec<String> = Param::ALL
                .into_iter()
                .map(|p| format!("{}={}", p.key(), p.values().map_or("N".to_owned(), |v| v.join("|"))))
                .collect();
            format!("{route}?{}", params.join("&"))
        })
        .collect()
}

// ---- errors ------------------------------------------------------------------------------------

/// An error answer of the contract's own: status, kind and a message template whose `{name}`
/// placeholders are filled per request (the constants of [`constants`] everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub kind: &'static str,
    pub message: &'static str,
}

pub const NOT_FOUND: Problem = Problem { status: 404, kind: "not-found", message: "no such path {path}; try {routes}" };
pub const METHOD_NOT_ALLOWED: Problem =
    Problem { status: 405, kind: "method-not-allowed", message: "{path} answers {allowed} only" };
pub const UNKNOWN_PARAM: Problem =
    Problem { status: 400, kind: "bad-query", message: "unknown query parameter {key} (known: {keys})" };
pub const BAD_TOP: Problem =
    Problem { status: 400, kind: "bad-query", message: "top must be a positive whole number, not {value}" };
pub const BAD_PRECISION: Problem =
    Problem { status: 400, kind: "bad-query", message: "precision must be {precisions}, not {value}" };
pub const BAD_MODEL: Problem =
    Problem { status: 400, kind: "bad-query", message: "model must be one of {models}, not {value}" };
pub const BODY_TOO_LARGE: Problem =
    Problem { status: 413, kind: "too-large", message: "the image must be at most {limit} bytes" };
pub const BAD_BODY: Problem = Problem { status: 400, kind: "bad-body", message: "reading the request body: {error}" };

/// The placeholders every message may use, filled the same for every request.
pub fn constants() -> Vec<(&'static str, String)> {
    let routes: Vec<String> = ROUTES.iter().map(|r| format!("{} {}", r.allowed(), r.path)).collect();
    vec![
        ("routes", routes.join(" or ")),
        ("keys", Param::ALL.map(Param::key).join(", ")),
        ("precisions", Precision::choices()),
        ("models", ModelName::ALL.map(ModelName::name).join(", ")),
        ("limit", MAX_BODY_BYTES.to_string()),
    ]
}

/// `template` with each `{name}` that `args` names replaced, in one pass (a value holding `{x}`
/// stays as it is); other braces are left alone.
pub fn fill_message(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let value = rest.find('}').and_then(|close| Some((args.iter().find(|(n, _)| *n == &rest[1..close])?.1, close)));
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &rest[close + 1..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Problem {
    /// The message with the constants and `args` filled in.
    pub fn with(self, args: &[(&str, &str)]) -> Failure {
        let constants = constants();
        let all: Vec<(&str, &str)> =
            constants.iter().map(|(n, v)| (*n, v.as_str())).chain(args.iter().copied()).collect();
        Failure { status: self.status, kind: self.kind, message: fill_message(self.message, &all) }
    }

    /// The template with the constants filled in, the per-request placeholders left: the Worker's.
    pub fn template(self) -> String {
        let constants = constants();
        let all: Vec<(&str, &str)> = constants.iter().map(|(n, v)| (*n, v.as_str())).collect();
        fill_message(self.message, &all)
    }
}

/// The classifier's error cases (WIT `types.error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    MalformedModel,
    UnsupportedModel,
    InvalidImage,
    InvalidInput,
    TooLarge,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::MalformedModel,
        ErrorKind::UnsupportedModel,
        ErrorKind::InvalidImage,
        ErrorKind::InvalidInput,
        ErrorKind::TooLarge,
    ];

    /// The WIT case name (what jco's bindings throw as the error's `payload.tag`).
    pub fn wit_name(self) -> &'static str {
        match self {
            ErrorKind::MalformedModel => "malformed-model",
            ErrorKind::UnsupportedModel => "unsupported-model",
            ErrorKind::InvalidImage => "invalid-image",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::TooLarge => "too-large",
        }
    }

    /// Status and API kind: the caller's fault is 4xx, ours (a broken embedded model) is 500.
    pub fn answer(self) -> (u16, &'static str) {
        match self {
            ErrorKind::InvalidImage => (400, "invalid-image"),
            ErrorKind::InvalidInput => (400, "invalid-input"),
            ErrorKind::UnsupportedModel => (400, "unsupported"),
            ErrorKind::TooLarge => (413, "too-large"),
            ErrorKind::MalformedModel => (500, "malformed-model"),
        }
    }
}

/// An error the classifier returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifierError {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<edge_classify::Error> for ClassifierError {
    fn from(e: edge_classify::Error) -> ClassifierError {
        use edge_classify::Error as E;
        let (kind, message) = match e {
            E::MalformedModel(m) => (ErrorKind::MalformedModel, m),
            E::UnsupportedModel(m) => (ErrorKind::UnsupportedModel, m),
            E::InvalidImage(m) => (ErrorKind::InvalidImage, m),
            E::InvalidInput(m) => (ErrorKind::InvalidInput, m),
            E::TooLarge(m) => (ErrorKind::TooLarge, m),
        };
        ClassifierError { kind, message }
    }
}

/// An error answer: status, kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl From<ClassifierError> for Failure {
    fn from(e: ClassifierError) -> Failure {
        let (status, kind) = e.kind.answer();
        Failure { status, kind, message: e.message }
    }
}

impl Failure {
    pub fn response(self) -> Response {
        let body = fill(&error_shape(), &|name| match name {
            "status" => Some(json!(self.status)),
            "kind" => Some(json!(self.kind)),
            "message" => Some(json!(self.message)),
            _ => None,
        });
        Response { status: self.status, headers: HEADERS, body }
    }
}

// ---- answers -----------------------------------------------------------------------------------

/// An answer: status, headers and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Value,
}

/// `GET /`.
pub fn info_shape() -> Value {
    json!({
        "model": "$info.name",
        "precision": "$info.precision",
        "input_shape": "$info.input.shape",
        "classes": "$info.classes",
        "operators": "$info.operators",
        "macs": "$info.macs",
        "parameter_bytes": "$info.parameter-bytes",
        "max_body_bytes": MAX_BODY_BYTES,
        "endpoints": endpoints(),
        "models": ModelName::ALL.map(ModelName::name),
        "model_names": "$model-names",
    })
}

/// `POST /classify`; `$predictions` is a list of [`prediction_shape`]s, `$inference-ms` the time the
/// classify call took in milliseconds (null where the server cannot time it).
pub fn classify_shape() -> Value {
    json!({
        "model": "$info.name",
        "precision": "$info.precision",
        "predictions": "$predictions",
        "inference_ms": "$inference-ms",
    })
}

/// One prediction: the WIT `prediction` fields (`label` null when the model has none).
pub fn prediction_shape() -> Value {
    json!({"index": "$index", "label": "$label", "score": "$score"})
}

/// Every error answer.
pub fn error_shape() -> Value {
    json!({"error": {"status": "$status", "kind": "$kind", "message": "$message"}})
}

/// `shape` with its `"$name"` placeholders replaced by `value(name)` (null if it has none).
pub fn fill(shape: &Value, value: &dyn Fn(&str) -> Option<Value>) -> Value {
    match shape {
        Value::String(s) => match s.strip_prefix('$') {
            Some(name) => value(name).unwrap_or(Value::Null),
            None => shape.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, value)).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), fill(v, value))).collect()),
        _ => shape.clone(),
    }
}

/// What the answers show of a model: the WIT `model-info` fields [`info_shape`] names.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub precision: Precision,
    pub input_shape: Vec<u32>,
    pub classes: u32,
    pub operators: u32,
    pub macs: u64,
    pub parameter_bytes: u64,
}

impl ModelInfo {
    /// The field at a `model-info` path, as the shapes name it after `$info.`.
    pub fn field(&self, path: &str) -> Option<Value> {
        Some(match path {
            "name" => json!(self.name),
            "precision" => json!(self.precision.name()),
            "input.shape" => json!(self.input_shape),
            "classes" => json!(self.classes),
            "operators" => json!(self.operators),
            "macs" => json!(self.macs),
            "parameter-bytes" => json!(self.parameter_bytes),
            _ => return None,
        })
    }
}

fn prediction(p: &Prediction) -> Value {
    fill(&prediction_shape(), &|name| match name {
        "index" => Some(json!(p.index)),
        "label" => Some(json!(p.label)),
        "score" => Some(json!(p.score)),
        _ => None,
    })
}

// ---- the handler -------------------------------------------------------------------------------

/// Loads and runs the models: the classifier's WIT imports in the app, the native executor in the
/// fuzz target.
pub trait Backend {
    type Model;
    fn load(&mut self, model: ModelName, precision: Option<Precision>) -> Result<Self::Model, ClassifierError>;
    fn info(&mut self, model: &Self::Model) -> ModelInfo;
    fn classify(&mut self, model: &mut Self::Model, image: &[u8], top: u32)
        -> Result<Vec<Prediction>, ClassifierError>;
}

/// A request body, read chunk by chunk.
pub trait Body {
    type Chunk: AsRef<[u8]>;
    /// The length the request declared (`content-length`), if it did.
    fn declared_length(&self) -> Option<u64>;
    /// The next chunk, `None` after the last; `Err` says why reading failed.
    fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Self::Chunk, String>>>;
}

/// A request's method, path and query (without the `?`).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// The answer to a request: routed, its query parsed, its body read within [`MAX_BODY_BYTES`] (only
/// for `POST /classify`, and only once the query is good), the model loaded and run. Nothing here
/// panics on any input: every request gets a status and a JSON body.
pub async fn handle(request: Request<'_>, body: impl Body, backend: &mut impl Backend) -> Response {
    let path = request.path;
    let answer = match route(request.method, path) {
        Route::NotFound => Err(NOT_FOUND.with(&[("path", path)])),
        Route::MethodNotAllowed(allowed) => Err(METHOD_NOT_ALLOWED.with(&[("path", path), ("allowed", allowed)])),
        Route::To(Endpoint::Info) => info(backend),
        Route::To(Endpoint::Classify) => match parse_query(request.query) {
            Err(failure) => Err(failure),
            Ok(query) => match read_body(body).await {
                Ok(image) => classify(backend, &image, &query),
                Err(failure) => Err(failure),
            },
        },
    };
    match answer {
        Ok(body) => Response { status: 200, headers: HEADERS, body },
        Err(failure) => failure.response(),
    }
}

/// The body, up to [`MAX_BODY_BYTES`]. A declared length over the limit is refused before reading;
/// an undeclared (chunked) one is read until it passes the limit and then drained for as much again,
/// so a client that sends a little too much sees the 413 rather than a reset connection.
pub async fn read_body(mut body: impl Body) -> Result<Vec<u8>, Failure> {
    let limit = MAX_BODY_BYTES;
    let too_large = || BODY_TOO_LARGE.with(&[]);
    if body.declared_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = body.next_chunk().await {
        let chunk = chunk.map_err(|e| BAD_BODY.with(&[("error", &e)]))?;
        let data = chunk.as_ref();
        seen = seen.saturating_add(data.len());
        if seen > 2 * limit {
            break;
        }
        if seen <= limit {
            bytes.extend_from_slice(data);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The model's info as the answers give it: named as the app declares it, if it does.
fn answered_info<B: Backend>(backend: &mut B, model: &B::Model, name: ModelName) -> ModelInfo {
    let mut info = backend.info(model);
    if let Some(d) = name.declared() {
        info.name = d.name.to_owned();
    }
    info
}

fn info(backend: &mut impl Backend) -> Result<Value, Failure> {
    let model = backend.load(ModelName::DEFAULT, None)?;
    let info = answered_info(backend, &model, ModelName::DEFAULT);
    Ok(info_answer(&info))
}

/// `GET /` for the default model's `info`: each served model's name, the default's from `info`,
/// the others' as the app declares them.
pub fn info_answer(info: &ModelInfo) -> Value {
    let names: serde_json::Map<String, Value> = ModelName::ALL
        .into_iter()
        .map(|m| {
            let name = match m.declared() {
                Some(d) => json!(d.name),
                None if m == ModelName::DEFAULT => json!(info.name),
                // Known only once loaded; no model is served so today.
                None => Value::Null,
            };
            (m.name().to_owned(), name)
        })
        .collect();
    fill(&info_shape(), &|name| match name {
        "model-names" => Some(Value::Object(names.clone())),
        _ => info.field(name.strip_prefix("info.")?),
    })
}

fn classify(backend: &mut impl Backend, image: &[u8], query: &Query) -> Result<Value, Failure> {
    let mut model = backend.load(query.model, query.precision)?;
    let start = Instant::now();
    let predictions = backend.classify(&mut model, image, query.top)?;
    let inference_ms = start.elapsed().as_secs_f64() * 1e3;
    let info = answered_info(backend, &model, query.model);
    Ok(fill(&classify_shape(), &|name| match name {
        "predictions" => Some(Value::Array(predictions.iter().map(prediction).collect())),
        "inference-ms" => Some(json!(inference_ms)),
        _ => info.field(name.strip_prefix("info.")?),
    }))
}

// ---- the Worker's tables -----------------------------------------------------------------------

/// What the Cloudflare Worker's `contract.js` exports, by name (`cargo xtask worker` writes each as
/// `export const NAME = JSON;`). `worker.js` looks everything up here:
///
/// - `ROUTES`: path -> the methods it answers, the one a 405 names and the answer (`info`, `classify`);
/// - `QUERY`: key -> the values it takes (absent: a positive whole number), its default and the
///   problem its bad value is;
/// - `PROBLEMS`: the contract's own errors (status, kind, message template with `{path}`,
///   `{allowed}`, `{key}` or `{value}` left to fill; the quoted values are JSON strings);
/// - `ERRORS`: classifier error (WIT case) -> status and API kind;
/// - `DECLARED`: model query name -> the name and labels the app gives it ([`ModelName::declared`]),
///   null for a model that names and labels itself;
/// - the shapes (their placeholders are WIT names, which the generator spells as jco does).
pub fn worker_tables() -> Vec<(&'static str, Value)> {
    let problem = |p: Problem| json!({"status": p.status, "kind": p.kind, "message": p.template()});
    let routes: serde_json::Map<String, Value> = ROUTES
        .iter()
        .map(|r| {
            (r.path.to_owned(), json!({"methods": r.methods, "allowed": r.allowed(), "answer": r.endpoint.name()}))
        })
        .collect();
    let query: serde_json::Map<String, Value> = Param::ALL
        .into_iter()
        .map(|p| {
            let mut entry = json!({"default": p.default_value(), "problem": problem(p.problem())});
            if let Some(values) = p.values() {
                entry["values"] = json!(values);
            }
            (p.key().to_owned(), entry)
        })
        .collect();
    let errors: serde_json::Map<String, Value> = ErrorKind::ALL
        .into_iter()
        .map(|e| {
            let (status, kind) = e.answer();
            (e.wit_name().to_owned(), json!({"status": status, "kind": kind}))
        })
        .collect();
    let declared: serde_json::Map<String, Value> = ModelName::ALL
        .into_iter()
        .map(|m| {
            (m.name().to_owned(), m.declared().map_or(Value::Null, |d| json!({"name": d.name, "labels": d.labels})))
        })
        .collect();
    let headers: serde_json::Map<String, Value> = HEADERS.iter().map(|(n, v)| (n.to_string(), json!(v))).collect();
    vec![
        ("MAX_BODY_BYTES", json!(MAX_BODY_BYTES)),
        ("HEADERS", Value::Object(headers)),
        ("MODEL_NAMES", json!(ModelName::ALL.map(ModelName::name))),
        ("DECLARED", Value::Object(declared)),
        ("ROUTES", Value::Object(routes)),
        ("QUERY", Value::Object(query)),
        (
            "PROBLEMS",
            json!({
                "notFound": problem(NOT_FOUND),
                "methodNotAllowed": problem(METHOD_NOT_ALLOWED),
                "unknownParam": problem(UNKNOWN_PARAM),
                "bodyTooLarge": problem(BODY_TOO_LARGE),
            }),
        ),
        ("ERRORS", Value::Object(errors)),
        ("INFO_SHAPE", info_shape()),
        ("CLASSIFY_SHAPE", classify_shape()),
        ("PREDICTION_SHAPE", prediction_shape()),
        ("ERROR_SHAPE", error_shape()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/"), Route::To(Endpoint::Info));
        assert_eq!(route("HEAD", "/"), Route::To(Endpoint::Info));
        assert_eq!(route("POST", "/classify"), Route::To(Endpoint::Classify));
        assert_eq!(route("GET", "/classify"), Route::MethodNotAllowed("POST"));
        assert_eq!(route("DELETE", "/"), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/nope"), Route::NotFound);
        assert_eq!(route("POST", "/classify/x"), Route::NotFound);
    }

    #[test]
    fn queries() {
        assert_eq!(parse_query(None).unwrap(), Query { top: DEFAULT_TOP, precision: None, model: ModelName::Imagenet });
        assert_eq!(
            parse_query(Some("top=3&precision=int8&model=person")).unwrap(),
            Query { top: 3, precision: Some(Precision::Int8), model: ModelName::Person }
        );
        for bad in ["top=0", "top=-1", "top=", "precision=int4", "k=v", "model=cat"] {
            let e = parse_query(Some(bad)).unwrap_err();
            assert_eq!((e.status, e.kind), (400, "bad-query"), "{bad}");
        }
        for model in ModelName::ALL {
            assert_eq!(parse_query(Some(&format!("model={}", model.name()))).unwrap().model, model);
        }
    }

    /// The messages as they were before the contract had templates (the Worker's are these too).
    #[test]
    fn messages() {
        let message = |q: &str| parse_query(Some(q)).unwrap_err().message;
        assert_eq!(message("top=x"), "top must be a positive whole number, not \"x\"");
        assert_eq!(message("precision=int4"), "precision must be fp32, int16 or int8, not \"int4\"");
        assert_eq!(message("model=cat"), "model must be one of imagenet, person, not \"cat\"");
        assert_eq!(message("k=v"), "unknown query parameter \"k\" (known: top, precision, model)");
        assert_eq!(NOT_FOUND.with(&[("path", "/x")]).message, "no such path /x; try GET / or POST /classify");
        assert_eq!(BODY_TOO_LARGE.with(&[]).message, "the image must be at most 4194304 bytes");
        assert_eq!(METHOD_NOT_ALLOWED.with(&[("path", "/"), ("allowed", "GET")]).message, "/ answers GET only");
        // One pass: a value that looks like a placeholder stays as it is.
        assert_eq!(fill_message("{a} {b}", &[("a", "{b}"), ("b", "x")]), "{b} x");
        assert_eq!(fill_message("{a} {", &[]), "{a} {");
    }

    #[test]
    fn the_endpoints_name_every_model_and_precision() {
        assert_eq!(endpoints(), ["GET /", "POST /classify?top=N&precision=fp32|int16|int8&model=imagenet|person"]);
    }

    #[test]
    fn error_bodies_are_json() {
        let r = Failure { status: 400, kind: "invalid-image", message: "a \"quoted\" word".into() }.response();
        let v: serde_json::Value = serde_json::from_str(&r.body.to_string()).unwrap();
        assert_eq!(v["error"]["status"], 400);
        assert_eq!(v["error"]["message"], "a \"quoted\" word");
    }

    /// Every placeholder of the shapes has a value, and no constant could be taken for one.
    #[test]
    fn every_placeholder_is_filled() {
        let info = ModelInfo {
            name: "m".into(),
            precision: Precision::Int16,
            input_shape: vec![1, 2, 2, 3],
            classes: 2,
            operators: 1,
            macs: 1,
            parameter_bytes: 1,
        };
        let filled = info_answer(&info);
        assert_eq!(filled["model_names"], json!({"imagenet": "m", "person": "Visual Wake Words person detector"}));
        fn placeholders(v: &Value) -> Vec<String> {
            match v {
                Value::String(s) if s.starts_with('$') => vec![s.clone()],
                Value::Array(a) => a.iter().flat_map(placeholders).collect(),
                Value::Object(o) => o.values().flat_map(placeholders).collect(),
                _ => vec![],
            }
        }
        assert!(filled.as_object().unwrap().values().all(|v| !v.is_null()), "{filled}");
        assert_eq!(filled["precision"], "int16");
        assert!(placeholders(&filled).is_empty());
        let p = prediction(&Prediction { index: 1, label: None, score: 0.5 });
        assert_eq!(p, json!({"index": 1, "label": null, "score": 0.5}));
        let tables = worker_tables();
        let shapes = tables.iter().filter(|(n, _)| n.ends_with("_SHAPE"));
        for name in shapes.flat_map(|(_, s)| placeholders(s)) {
            let name = &name[1..];
            let known = info.field(name.strip_prefix("info.").unwrap_or("-")).is_some()
                || [
                    "predictions",
                    "inference-ms",
                    "model-names",
                    "index",
                    "label",
                    "score",
                    "status",
                    "kind",
                    "message",
                ]
                .contains(&name);
            assert!(known, "${name}");
        }
    }

    /// The person detector's file names and labels nothing (its description is the converter's): the
    /// contract does, and the Worker takes the same from `DECLARED`.
    #[test]
    fn the_person_model_is_declared_with_its_name_and_labels() {
        let d = ModelName::Person.declared().unwrap();
        assert_eq!((d.name, d.labels), ("Visual Wake Words person detector", &["no person", "person"][..]));
        assert_eq!(ModelName::Person.labels().as_deref(), Some("no person\nperson"));
        assert_eq!((ModelName::Imagenet.declared(), ModelName::Imagenet.labels()), (None, None));
        let tables = worker_tables();
        let declared = &tables.iter().find(|(n, _)| *n == "DECLARED").unwrap().1;
        assert_eq!(*declared, json!({"imagenet": null, "person": {"name": d.name, "labels": ["no person", "person"]}}));
    }

    #[test]
    fn every_classifier_error_is_answered() {
        for e in ErrorKind::ALL {
            let (status, _) = e.answer();
            assert!(STATUSES.contains(&status), "{e:?}");
        }
        let tables = worker_tables();
        let errors = &tables.iter().find(|(n, _)| *n == "ERRORS").unwrap().1;
        assert_eq!(errors["unsupported-model"], json!({"status": 400, "kind": "unsupported"}));
    }
}
