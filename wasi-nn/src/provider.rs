//! wasi:nn's graph, tensor and error semantics over [`edge_classify::model::Model`].
//!
//! Error codes are the ones wasmtime's wasi-nn host gives for the same mistake, so a guest sees the
//! same codes on either: an encoding with no backend is `invalid-encoding`, a model the backend
//! cannot load `runtime-error`, an unknown name `not-found`, any problem with the tensors given to
//! `compute` `runtime-error`. What wasmtime has no case for gets the closest code: a target other
//! than the CPU `unsupported-operation`, malformed builders `invalid-argument`, a model or image
//! past a size bound `too-large`.

use std::cell::RefCell;
use std::rc::Rc;

use edge_classify::graph::Precision;
use edge_classify::model::{ElementType, LoadOptions, Model, ModelInfo, Tensor, TensorData, TensorInfo};

/// wasi:nn's `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    InvalidEncoding,
    Timeout,
    RuntimeError,
    UnsupportedOperation,
    TooLarge,
    NotFound,
    Security,
    Unknown,
}

/// wasi:nn's `error` resource: a code and a message (`data()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NnError {
    pub code: Code,
    pub message: String,
}

fn err<T>(code: Code, message: impl Into<String>) -> Result<T, NnError> {
    Err(NnError { code, message: message.into() })
}

/// A failure of the executor: `too-large` when it is one, else what wasmtime's backends report.
fn executor(e: edge_classify::Error) -> NnError {
    let code = if matches!(e, edge_classify::Error::TooLarge(_)) { Code::TooLarge } else { Code::RuntimeError };
    NnError { code, message: e.to_string() }
}

/// wasi:nn's `graph-encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Openvino,
    Onnx,
    Tensorflow,
    Pytorch,
    Tensorflowlite,
    Ggml,
    Autodetect,
}

/// wasi:nn's `execution-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Cpu,
    Gpu,
    Tpu,
}

/// wasi:nn's `tensor-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    Fp16,
    Fp32,
    Fp64,
    Bf16,
    U8,
    I32,
    I64,
}

impl TensorType {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            TensorType::U8 => 1,
            TensorType::Fp16 | TensorType::Bf16 => 2,
            TensorType::Fp32 | TensorType::I32 => 4,
            TensorType::Fp64 | TensorType::I64 => 8,
        }
    }
}

/// wasi:nn's `tensor` resource: dimensions, element type and little-endian bytes, as given.
#[derive(Debug, Clone, PartialEq)]
pub struct NnTensor {
    pub dimensions: Vec<u32>,
    pub ty: TensorType,
    pub data: Vec<u8>,
}

/// A loaded graph. Its execution contexts share the model: a component instance runs one call at a
/// time and every `compute` writes the whole input before it runs, so nothing leaks between them.
#[derive(Clone)]
pub struct Graph {
    model: Rc<RefCell<Model>>,
}

/// The TFLite file identifier, at bytes 4..8.
const TFLITE_IDENTIFIER: &[u8; 4] = b"TFL3";

/// The names `load-by-name` knows for the baked model (`dist/wasi-nn.wasm`: MobileNetV2 1.0 224
/// uint8, ImageNet, as classify-http's `model=imagenet`), each also as `NAME/fp32`, `NAME/int16`,
/// `NAME/int8`.
pub const NAMES: [&str; 2] = ["imagenet", "default"];

/// `graph.load`: `builders[0]` is the `.tflite` file; an optional `builders[1]` holds options as
/// text, `precision=fp32|int16|int8` (default: the model's own).
pub fn load(builders: &[&[u8]], encoding: Encoding, target: Target) -> Result<Graph, NnError> {
    check_target(target)?;
    let (file, options) = match builders {
        [file] => (*file, None),
        [file, options] => (*file, Some(*options)),
        _ => {
            return err(
                Code::InvalidArgument,
                format!(
                    "{} graph builders given: the first is the .tflite file, an optional second its options \
                     ({})",
                    builders.len(),
                    options_syntax()
                ),
            )
        }
    };
    match encoding {
        Encoding::Tensorflowlite => {}
        Encoding::Autodetect if file.get(4..8) == Some(&TFLITE_IDENTIFIER[..]) => {}
        Encoding::Autodetect => {
            return err(Code::InvalidEncoding, "autodetect: not a TFLite file (no \"TFL3\" identifier at byte 4)")
        }
        other => {
            return err(
                Code::InvalidEncoding,
                format!("no backend for {other:?}: this provider runs TFLite models (tensorflowlite or autodetect)"),
            )
        }
    }
    let precision = match options {
        Some(text) => parse_options(text)?,
        None => None,
    };
    let model = Model::load(file, &LoadOptions { precision, ..LoadOptions::default() }).map_err(executor)?;
    Ok(Graph { model: Rc::new(RefCell::new(model)) })
}

/// `graph.load-by-name` against `bundle`, the component's baked models (`None`: it has none).
pub fn load_by_name(bundle: Option<&'static [u8]>, name: &str) -> Result<Graph, NnError> {
    let (base, precision) = match name.split_once('/') {
        Some((base, p)) => (base, Some(p)),
        None => (name, None),
    };
    let known = || {
        NAMES
            .iter()
            .flat_map(|n| std::iter::once(n.to_string()).chain(Precision::ALL.map(|p| format!("{n}/{}", p.name()))))
    };
    let Some(bundle) = bundle else {
        return err(Code::NotFound, format!("no graph named {name:?}: this build has no embedded model"));
    };
    let precision = match precision {
        None => None,
        Some(p) => match Precision::parse(p) {
            Some(p) => Some(p),
            None => return not_found(name, known()),
        },
    };
    if !NAMES.contains(&base) {
        return not_found(name, known());
    }
    let model = edge_classify::embedded::restore(bundle, &LoadOptions { precision, ..LoadOptions::default() })
        .map_err(executor)?;
    Ok(Graph { model: Rc::new(RefCell::new(model)) })
}

fn not_found<T>(name: &str, known: impl Iterator<Item = String>) -> Result<T, NnError> {
    err(Code::NotFound, format!("no graph named {name:?}; this build has {}", known.collect::<Vec<_>>().join(", ")))
}

fn check_target(target: Target) -> Result<(), NnError> {
    if target != Target::Cpu {
        return err(
            Code::UnsupportedOperation,
            format!("execution target {target:?}: a wasm component runs on the CPU only (use cpu)"),
        );
    }
    Ok(())
}

/// What an options builder may say: `precision=fp32|int16|int8`.
fn options_syntax() -> String {
    format!("precision={}", Precision::ALL.map(Precision::name).join("|"))
}

fn parse_options(text: &[u8]) -> Result<Option<Precision>, NnError> {
    let Ok(text) = std::str::from_utf8(text) else {
        return err(Code::InvalidArgument, format!("the options builder is not UTF-8 text ({})", options_syntax()));
    };
    let mut precision = None;
    for item in text.split([',', '\n']).map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("precision", v)) => match Precision::parse(v) {
                Some(p) => precision = Some(p),
                None => return err(Code::InvalidArgument, format!("precision={v}: not {}", Precision::choices())),
            },
            _ => return err(Code::InvalidArgument, format!("unknown option {item:?} (known: {})", options_syntax())),
        }
    }
    Ok(precision)
}

impl Graph {
    /// `graph.init-execution-context`.
    pub fn context(&self) -> Graph {
        self.clone()
    }

    /// What the graph executes: its input and output tensors at the precision it was loaded at.
    pub fn info(&self) -> ModelInfo {
        self.model.borrow().info().clone()
    }

    /// `graph-execution-context.compute`: the one tensor given is the model's input whatever its
    /// name; the output is named by the model's output tensor.
    pub fn compute(&self, inputs: &[(String, NnTensor)]) -> Result<Vec<(String, NnTensor)>, NnError> {
        let mut model = self.model.borrow_mut();
        let [(_, tensor)] = inputs else {
            return err(
                Code::RuntimeError,
                format!("this graph has one input ({}); {} tensors given", model.info().input.name, inputs.len()),
            );
        };
        let input = input_tensor(&model, model.info(), tensor)?;
        let output = model.infer(&input).map_err(executor)?;
        let info = &model.info().output;
        Ok(vec![(info.name.clone(), output_tensor(info, output))])
    }
}

/// The tensor the model executes, from a wasi:nn one: NHWC as the model is, or NCHW transposed (the
/// layout public wasi-nn guests feed); U8 for a uint8 file (converted through its own quantization
/// when the model runs at another precision), FP32 for any model (quantized with the executing
/// input's parameters exactly as TFLite's QUANTIZE op: rounded half away from zero, clamped).
fn input_tensor(model: &Model, info: &ModelInfo, t: &NnTensor) -> Result<Tensor, NnError> {
    let shape = &info.input.shape;
    let nchw_shape: Option<Vec<u32>> = match shape[..] {
        [n, h, w, c] => Some(vec![n, c, h, w]),
        _ => None,
    };
    let nchw = if t.dimensions == *shape {
        false
    } else if nchw_shape.as_ref() == Some(&t.dimensions) {
        true
    } else {
        let alternatives = match &nchw_shape {
            Some(n) => format!("{shape:?} (NHWC) or {n:?} (NCHW)"),
            None => format!("{shape:?}"),
        };
        return err(
            Code::RuntimeError,
            format!("input dimensions {:?}: this graph takes {alternatives}", t.dimensions),
        );
    };
    let accepted = if info.file_input.element == ElementType::Uint8 { "U8 or FP32" } else { "FP32" };
    if !matches!(t.ty, TensorType::U8 | TensorType::Fp32)
        || (t.ty == TensorType::U8 && info.file_input.element != ElementType::Uint8)
    {
        return err(Code::RuntimeError, format!("{:?} input: this graph takes {accepted}", t.ty));
    }
    let elements: usize = shape.iter().map(|&d| d as usize).product();
    if t.data.len() != elements * t.ty.bytes() {
        return err(
            Code::RuntimeError,
            format!(
                "{} bytes of {:?} for dimensions {:?}: {} expected",
                t.data.len(),
                t.ty,
                t.dimensions,
                elements * t.ty.bytes()
            ),
        );
    }
    let data = match t.ty {
        TensorType::U8 => {
            let pixels = if nchw { to_nhwc(&t.data, shape) } else { t.data.clone() };
            // Checked above: U8 only for a uint8 file.
            model
                .input()
                .from_file_uint8(&pixels)
                .map_err(|e| NnError { code: Code::RuntimeError, message: e.to_string() })?
                .data
        }
        _ => {
            let real: Vec<f32> = t.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let real = if nchw { to_nhwc(&real, shape) } else { real };
            model.input_from_real(&real).data
        }
    };
    Ok(Tensor { shape: shape.clone(), data })
}

/// `[1, C, H, W]` data in `[1, H, W, C]` order, for a model of `nhwc` shape.
fn to_nhwc<T: Copy>(v: &[T], nhwc: &[u32]) -> Vec<T> {
    let (n, h, w, c) = (nhwc[0] as usize, nhwc[1] as usize, nhwc[2] as usize, nhwc[3] as usize);
    let mut out = Vec::with_capacity(v.len());
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    out.push(v[((b * c + ch) * h + y) * w + x]);
                }
            }
        }
    }
    out
}

/// U8 raw for a uint8 output, else FP32: float outputs as they are, int8/int16 ones dequantized.
fn output_tensor(info: &TensorInfo, t: Tensor) -> NnTensor {
    let deq = |q: i32| {
        let p = info.quantization.expect("an integer output is quantized");
        p.scale * (q - p.zero_point) as f32
    };
    let floats = |v: Vec<f32>| v.iter().flat_map(|f| f.to_le_bytes()).collect();
    let (ty, data) = match t.data {
        TensorData::Uint8(v) => (TensorType::U8, v),
        TensorData::Float32(v) => (TensorType::Fp32, floats(v)),
        TensorData::Int8(v) => (TensorType::Fp32, floats(v.iter().map(|&q| deq(q as i32)).collect())),
        TensorData::Int16(v) => (TensorType::Fp32, floats(v.iter().map(|&q| deq(q as i32)).collect())),
    };
    NnTensor { dimensions: t.shape, ty, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_becomes_nhwc() {
        // [1, 2 channels, 2 rows, 3 columns]: channel-major in, pixel-major out.
        let nchw: Vec<u32> = (0..12).collect();
        assert_eq!(to_nhwc(&nchw, &[1, 2, 3, 2]), vec![0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]);
    }

    #[test]
    fn options_name_their_precision_or_are_refused() {
        assert_eq!(parse_options(b"precision=int16"), Ok(Some(Precision::Int16)));
        assert_eq!(parse_options(b" precision = fp32 \n"), Ok(Some(Precision::Fp32)));
        assert_eq!(parse_options(b""), Ok(None));
        for bad in [&b"precision=int4"[..], b"threads=2", b"\xff"] {
            assert_eq!(parse_options(bad).unwrap_err().code, Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn builders_encodings_and_targets_are_checked_before_the_model() {
        let tflite_ish = b"\0\0\0\0TFL3garbage";
        let code = |r: Result<Graph, NnError>| r.err().map(|e| e.code);
        assert_eq!(code(load(&[], Encoding::Tensorflowlite, Target::Cpu)), Some(Code::InvalidArgument));
        assert_eq!(code(load(&[b"a", b"b", b"c"], Encoding::Tensorflowlite, Target::Cpu)), Some(Code::InvalidArgument));
        assert_eq!(code(load(&[tflite_ish], Encoding::Onnx, Target::Cpu)), Some(Code::InvalidEncoding));
        assert_eq!(code(load(&[b"PK\x03\x04 onnx?"], Encoding::Autodetect, Target::Cpu)), Some(Code::InvalidEncoding));
        assert_eq!(code(load(&[tflite_ish], Encoding::Tensorflowlite, Target::Gpu)), Some(Code::UnsupportedOperation));
        assert_eq!(code(load(&[tflite_ish], Encoding::Autodetect, Target::Cpu)), Some(Code::RuntimeError));
        assert_eq!(code(load_by_name(None, "imagenet")), Some(Code::NotFound));
    }
}
