//! The fuzz targets. Every body turns a property violation into a panic, which libFuzzer reports as a
//! crash and the replay test as a failure; `Err` results are fine wherever the input may be garbage.

use std::cell::Cell;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use classify_http::contract;
use edge_classify::graph::{self, Precision};
use edge_classify::model::{ElementType, LoadOptions, Model, Tensor, TensorData};
use edge_classify::quantize::{self, Calibration};
use edge_classify::tflite::{metadata, write};
use edge_classify::{image, Error};
use edge_classify_wasi_nn::provider::{self as nn, Code, Encoding, NnTensor, TensorType};

use crate::seeds;

pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// What the input is and what is checked, for `cargo xtask fuzz --list` and the README.
    pub about: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "tflite_load",
        run: tflite_load,
        about: "a .tflite file: reader, lowering, conversion and planning at its own precision and at fp32, int16 and int8; every model that loads runs",
    },
    Target {
        name: "metadata",
        run: metadata,
        about: "TFLite Support metadata and its label zip (u16 length, metadata flatbuffer, zip) on a tiny model, or a whole .tflite",
    },
    Target {
        name: "image_decode",
        run: image_decode,
        about: "an image file (PNG, JPEG, BMP): decoded and resized to RGB 7x5 and luma 4x4; a success has exactly that size",
    },
    Target {
        name: "http_request",
        run: http_request,
        about: "`METHOD /path?query [chunked] [length=N] [repeat=N]` then a newline and the body: classify-http's own contract handler over a tiny model; every answer has a status of the contract and its JSON, a request only ever gets a client error or sorted predictions, a body over the limit never reaches the classifier",
    },
    Target {
        name: "quantize",
        run: quantize,
        about: "a .tflite file quantized to int8 and int16 (calibrated on a tiny image); whatever the quantizer writes loads at that precision",
    },
    Target {
        name: "wasi_nn",
        run: wasi_nn,
        about: "a seed model, its wasi:nn options builder and an input tensor (dimensions, type, bytes) through the wasi:nn provider: a well-formed tensor computes, deterministically, into the output's shape; anything else is a runtime-error",
    },
];

pub fn by_name(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Work per input stays bounded: a fuzzed header may declare a model with billions of MACs, which is
/// a legitimate (slow) model, not a bug. Loading still runs; inference only on models this small.
const MAX_RUN_MACS: u64 = 1 << 22;
const MAX_RUN_ELEMENTS: u64 = 1 << 16;

fn tflite_load(data: &[u8]) {
    for precision in std::iter::once(None).chain(Precision::ALL.map(Some)) {
        let options = LoadOptions { precision, ..LoadOptions::default() };
        if let Ok(mut model) = Model::load(data, &options) {
            if let Some(p) = precision {
                assert_eq!(model.info().precision, p, "loaded at {p:?}, reports {:?}", model.info().precision);
            }
            exercise(&mut model);
        }
    }
}

/// A model that loaded runs on any input of its own shape and type, and answers that shape.
fn exercise(model: &mut Model) {
    let info = model.info().clone();
    let count = info.input.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    let Some(count) = count.filter(|&n| n <= MAX_RUN_ELEMENTS && info.macs <= MAX_RUN_MACS) else {
        return;
    };
    let n = count as usize;
    let data = match info.input.element {
        ElementType::Float32 => TensorData::Float32((0..n).map(|i| (i % 7) as f32 - 3.0).collect()),
        ElementType::Uint8 => TensorData::Uint8((0..n).map(|i| (i * 37) as u8).collect()),
        ElementType::Int8 => TensorData::Int8((0..n).map(|i| (i * 37) as u8 as i8).collect()),
        ElementType::Int16 => TensorData::Int16((0..n).map(|i| (i * 4099) as u16 as i16).collect()),
    };
    let out = model.infer(&Tensor { shape: info.input.shape.clone(), data });
    let out = out.unwrap_or_else(|e| panic!("a loaded model refused its own input shape and type: {e}"));
    let want: u64 = info.output.shape.iter().map(|&d| d as u64).product();
    assert_eq!(
        out.data.len() as u64,
        want,
        "output of {:?} elements for shape {:?}",
        out.data.len(),
        info.output.shape
    );
    assert_eq!(out.data.element_type(), info.output.element);
    // Classifying runs the image pipeline and the top-k on the same model; any error is acceptable.
    let _ = model.classify(seeds::calibration_png(), 3);
}

/// The model file a metadata input stands for: a whole `.tflite` as is, else the tiny model carrying
/// `[u16 length][metadata flatbuffer]` as its TFLITE_METADATA and the rest appended (the zip).
pub fn metadata_file(data: &[u8]) -> Vec<u8> {
    if data.get(4..8) == Some(b"TFL3") {
        return data.to_vec();
    }
    let (meta, zip) = split_u16(data);
    let mut file = write::write_with_metadata(seeds::tiny_graph(), "fuzz", &[("TFLITE_METADATA", meta)])
        .expect("the tiny graph writes");
    file.extend_from_slice(zip);
    file
}

fn metadata(data: &[u8]) {
    let file = metadata_file(data);
    if let Ok(Some(m)) = metadata::read(&file) {
        if let Some(labels) = &m.labels {
            assert!(m.label_file.is_some(), "labels without the file they came from");
            assert!(labels.iter().all(|l| !l.contains('\n')), "a label holds a line break");
        }
        if let Some(n) = &m.normalization {
            assert!(!n.mean.is_empty() && !n.std.is_empty(), "empty normalization accepted: {n:?}");
        }
    }
    // The load applies the normalization and label rules to whatever the metadata said.
    if let Ok(mut model) = Model::load(&file, &LoadOptions::default()) {
        exercise(&mut model);
    }
}

/// `[len: u16 LE][len bytes][rest]`, forgiving: a short input is all first part.
fn split_u16(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return (data, &[]) };
    let len = (u16::from_le_bytes(*len) as usize).min(rest.len());
    rest.split_at(len)
}

fn image_decode(data: &[u8]) {
    for (w, h, c) in [(7u32, 5u32, 3u32), (4, 4, 1)] {
        match image::decode_resize(data, w, h, c) {
            Ok(pixels) => assert_eq!(pixels.len(), (w * h * c) as usize, "{w}x{h}x{c}"),
            Err(Error::InvalidImage(_) | Error::TooLarge(_)) => {}
            Err(e) => panic!("an image is refused with a kind that blames something else: {e}"),
        }
    }
}

/// The tiny int8 model behind the HTTP target, one per precision as classify-http's `?precision=`
/// (index 0: the model's own, then [`Precision::ALL`]).
fn http_model(precision: Option<Precision>) -> &'static Mutex<Model> {
    static MODELS: OnceLock<Vec<Mutex<Model>>> = OnceLock::new();
    let models = MODELS.get_or_init(|| {
        std::iter::once(None)
            .chain(Precision::ALL.map(Some))
            .map(|precision| {
                let options = LoadOptions { precision, ..LoadOptions::default() };
                Mutex::new(Model::load(seeds::tiny_int8_model(), &options).expect("the tiny model loads"))
            })
            .collect()
    });
    let index = precision.and_then(|p| Precision::ALL.iter().position(|&q| q == p)).map_or(0, |i| i + 1);
    &models[index]
}

/// classify-http's contract over the native executor: every model name is the tiny model.
#[derive(Default)]
struct NativeBackend {
    classified: u32,
}

impl contract::Backend for NativeBackend {
    type Model = &'static Mutex<Model>;

    fn load(
        &mut self,
        _model: contract::ModelName,
        precision: Option<Precision>,
    ) -> Result<Self::Model, contract::ClassifierError> {
        Ok(http_model(precision))
    }

    fn info(&mut self, model: &Self::Model) -> contract::ModelInfo {
        let model = model.lock().unwrap_or_else(|e| e.into_inner());
        let i = model.info();
        contract::ModelInfo {
            name: i.name.clone(),
            precision: i.precision,
            input_shape: i.input.shape.clone(),
            classes: i.classes,
            operators: i.operators,
            macs: i.macs,
            parameter_bytes: i.parameter_bytes,
        }
    }

    fn classify(
        &mut self,
        model: &mut Self::Model,
        image: &[u8],
        top: u32,
    ) -> Result<Vec<contract::Prediction>, contract::ClassifierError> {
        self.classified += 1;
        Ok(model.lock().unwrap_or_else(|e| e.into_inner()).classify(image, top)?)
    }
}

/// The fuzzed body: `chunk` sent `times` times, with a declared length or none (chunked).
struct FuzzBody<'a> {
    declared: Option<u64>,
    chunk: &'a [u8],
    times: usize,
    /// Chunks the contract asked for.
    read: &'a Cell<usize>,
}

impl<'a> contract::Body for FuzzBody<'a> {
    type Chunk = &'a [u8];

    fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    async fn next_chunk(&mut self) -> Option<Result<&'a [u8], String>> {
        if self.read.get() == self.times {
            return None;
        }
        self.read.set(self.read.get() + 1);
        Some(Ok(self.chunk))
    }
}

/// A future that never waits (the fuzz body is always ready, the backend synchronous), to its end.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the contract waited on a body that is always ready"),
    }
}

/// `METHOD /path?query[ OPTION...]`, a newline, then the body, through classify-http's own handler.
/// Options: `chunked` (no declared length), `length=N` (declares N whatever is sent), `repeat=N` (the
/// body sent N times, as N chunks; capped just past twice the limit).
fn http_request(data: &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let limit = contract::MAX_BODY_BYTES;
    let (mut chunked, mut declared, mut times) = (false, None, 1usize);
    for word in words {
        match word.split_once('=') {
            None if word == "chunked" => chunked = true,
            Some(("length", n)) => declared = n.parse::<u64>().ok(),
            Some(("repeat", n)) => times = n.parse::<usize>().unwrap_or(1).min(2 * limit / body.len().max(1) + 2),
            _ => {}
        }
    }
    let sent = body.len() * times;
    let declared = if chunked { None } else { Some(declared.unwrap_or(sent as u64)) };
    let read = Cell::new(0);
    let request = contract::Request { method, path, query };
    let fuzz_body = FuzzBody { declared, chunk: body, times, read: &read };
    let mut backend = NativeBackend::default();
    let response = ready(contract::handle(request, fuzz_body, &mut backend));

    let (status, v) = (response.status, &response.body);
    assert!(contract::STATUSES.contains(&status), "status {status}: {v}");
    assert_eq!(response.headers, contract::HEADERS);
    // The tiny model is sound: a 500 would blame the server for what a request sent.
    assert_ne!(status, 500, "{v}");
    let route = contract::route(method, path);
    if status != 200 {
        let error = &v["error"];
        assert_eq!(error["status"], status, "{v}");
        let kind = error["kind"].as_str().unwrap_or_else(|| panic!("no error kind: {v}"));
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        // Only the request's fault: a body that is no image or too large, a bad query, path or method.
        let client = ["invalid-image", "too-large", "bad-query", "not-found", "method-not-allowed"];
        assert!(client.contains(&kind), "a request got {status} {kind}: {v}");
    }
    match route {
        contract::Route::NotFound => assert_eq!(status, 404, "{v}"),
        contract::Route::MethodNotAllowed(_) => assert_eq!(status, 405, "{v}"),
        contract::Route::To(contract::Endpoint::Info) => {
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["max_body_bytes"], limit);
            assert!(v["precision"].as_str().and_then(Precision::parse).is_some(), "{v}");
        }
        contract::Route::To(contract::Endpoint::Classify) => {
            let Ok(query) = contract::parse_query(query) else {
                assert!(status == 400 && v["error"]["kind"] == "bad-query", "{v}");
                assert_eq!(read.get(), 0, "a bad query's body was read");
                return;
            };
            assert!(query.top > 0, "top 0 accepted");
            if declared.is_some_and(|n| n > limit as u64) || sent > limit {
                assert_eq!(status, 413, "{} bytes sent, {declared:?} declared: {v}", sent);
                assert_eq!(backend.classified, 0, "a body over the limit reached the classifier");
                if declared.is_some_and(|n| n > limit as u64) {
                    assert_eq!(read.get(), 0, "a body declared over the limit was read");
                }
                return;
            }
            assert_eq!(read.get(), times, "the body was not read to its end");
            if status != 200 {
                return;
            }
            let classes = http_model(query.precision).lock().unwrap_or_else(|e| e.into_inner()).info().classes;
            let predictions = v["predictions"].as_array().unwrap_or_else(|| panic!("no predictions: {v}"));
            assert_eq!(predictions.len(), query.top.min(classes) as usize, "top {}", query.top);
            let scores: Vec<f64> = predictions.iter().map(|p| p["score"].as_f64().expect("a score")).collect();
            assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "scores {scores:?}");
            assert!(scores.windows(2).all(|w| w[0] >= w[1]), "scores not sorted: {scores:?}");
            if let Some(p) = query.precision {
                assert_eq!(v["precision"], p.name(), "{v}");
            }
            assert!(v["inference_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{v}");
        }
    }
}

fn quantize(data: &[u8]) {
    let Ok(g) = graph::lower(data) else { return };
    let input: u64 = g.tensors[g.input].shape.iter().map(|&d| d as u64).product();
    if g.macs() > MAX_RUN_MACS || input > MAX_RUN_ELEMENTS {
        return;
    }
    let cal = Calibration { images: vec![seeds::calibration_png().to_vec()], mean: None, std: None };
    for target in [Precision::Int8, Precision::Int16] {
        let Ok(q) = quantize::quantize_graph(&g, target, &cal, quantize::Options::default()) else { continue };
        let file =
            write::write(&q, "fuzz").unwrap_or_else(|e| panic!("the quantizer's {target:?} graph does not write: {e}"));
        let model = Model::load(&file, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("the quantizer wrote a {target:?} model that does not load: {e}"));
        assert_eq!(model.info().precision, target);
    }
}

/// The wasi_nn input: `[model][mode][u16 length][options text][rank][rank x u16 LE dims][tensor bytes]`.
/// `mode` picks the options builder (none, `precision=fp32|int16|int8`, or the fuzzed text), the tensor
/// type (`mode >> 3`, of wasi:nn's seven) and whether the bytes are cycled to exactly the size the
/// dimensions and type need (`mode & 4`), so well-formed tensors with fuzzed values are common.
fn wasi_nn(data: &[u8]) {
    static MODELS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let models = MODELS.get_or_init(|| seeds::models().into_iter().map(|(_, m)| m).collect());
    let [model, mode, rest @ ..] = data else { return };
    let file = &models[*model as usize % models.len()];
    let (text, rest) = split_u16(rest);
    let named = |p: Precision| format!("precision={}", p.name()).into_bytes();
    let options: Option<Vec<u8>> = match mode & 3 {
        0 => None,
        1 => Some(named(Precision::Fp32)),
        2 => Some(named(if text.first().is_some_and(|b| b & 1 == 1) { Precision::Int16 } else { Precision::Int8 })),
        _ => Some(text.to_vec()),
    };
    let builders: Vec<&[u8]> = [Some(&file[..]), options.as_deref()].into_iter().flatten().collect();
    let graph = match nn::load(&builders, Encoding::Autodetect, nn::Target::Cpu) {
        Ok(g) => g,
        // A fuzzed options text, or a float seed asked for an integer precision (no calibration).
        Err(e) if matches!(e.code, Code::InvalidArgument | Code::RuntimeError) => return,
        Err(e) => panic!("a seed model got {:?} from load: {}", e.code, e.message),
    };
    // What the graph executes (its precision as the options asked), as the provider sees it.
    let info = graph.info();

    let types = [
        TensorType::Fp16,
        TensorType::Fp32,
        TensorType::Fp64,
        TensorType::Bf16,
        TensorType::U8,
        TensorType::I32,
        TensorType::I64,
    ];
    let ty = types[(mode >> 3) as usize % types.len()];
    let Some((&rank, rest)) = rest.split_first() else { return };
    let (dims, bytes) = rest.split_at((rank as usize % 6 * 2).min(rest.len()));
    let dimensions: Vec<u32> = dims.chunks_exact(2).map(|d| u16::from_le_bytes([d[0], d[1]]) as u32).collect();
    let want = dimensions.iter().fold(ty.bytes() as u64, |n, &d| n.saturating_mul(d as u64));
    let data: Vec<u8> = if mode & 4 != 0 && !bytes.is_empty() && want <= 1 << 20 {
        bytes.iter().copied().cycle().take(want as usize).collect()
    } else {
        bytes.to_vec()
    };

    // What the provider documents: the model's NHWC shape or its NCHW transpose; FP32 always, U8 for a
    // uint8 file; exactly the bytes the dimensions need.
    let s = &info.input.shape;
    let shape_ok = dimensions == *s || (s.len() == 4 && dimensions == [s[0], s[3], s[1], s[2]]);
    let type_ok = ty == TensorType::Fp32 || (ty == TensorType::U8 && info.file_input.element == ElementType::Uint8);
    let well_formed = shape_ok && type_ok && data.len() as u64 == want;

    let tensor = NnTensor { dimensions: dimensions.clone(), ty, data };
    let context = graph.context();
    match context.compute(&[("input".to_string(), tensor.clone())]) {
        Ok(outputs) => {
            assert!(well_formed, "{dimensions:?} {ty:?} of {} bytes computed", tensor.data.len());
            let [(name, out)] = &outputs[..] else { panic!("{} outputs", outputs.len()) };
            assert_eq!(*name, info.output.name);
            assert_eq!(out.dimensions, info.output.shape);
            let out_ty = if info.output.element == ElementType::Uint8 { TensorType::U8 } else { TensorType::Fp32 };
            assert_eq!(out.ty, out_ty);
            assert_eq!(out.data.len(), elements_of(&out.dimensions) * out_ty.bytes());
            // Another context of the same graph runs in between: the first then gives the same bytes.
            let other = NnTensor { dimensions: s.clone(), ty: TensorType::Fp32, data: vec![0x3f; elements_of(s) * 4] };
            graph.context().compute(&[("x".to_string(), other)]).expect("a well-formed FP32 tensor computes");
            let again = context.compute(&[("input".to_string(), tensor)]).expect("it computed once");
            assert_eq!(again, outputs, "a second compute of the same tensor differs");
        }
        Err(e) => {
            assert!(!well_formed, "a well-formed {dimensions:?} {ty:?} tensor failed: {}", e.message);
            assert_eq!(e.code, Code::RuntimeError, "{}", e.message);
        }
    }
}

fn elements_of(shape: &[u32]) -> usize {
    shape.iter().map(|&d| d as usize).product()
}
