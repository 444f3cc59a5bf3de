//! Runtime-neutral mirror of the `edge:classify` WIT types.
//!
//! Every [`crate::Runtime`] converts to and from these, so one test suite runs unchanged on
//! wasmtime, and later on other engines (a jco/Node subprocess, the crate linked natively).

use std::fmt;

/// `types.precision` and `types.element-type`: the executor's own enums, whose `name()` is the WIT
/// case name.
pub use edge_classify::model::{ElementType, Precision};

/// `types.tensor-data`
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    Float32(Vec<f32>),
    Uint8(Vec<u8>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::Float32(v) => v.len(),
            TensorData::Uint8(v) => v.len(),
            TensorData::Int8(v) => v.len(),
            TensorData::Int16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn element_type(&self) -> ElementType {
        match self {
            TensorData::Float32(_) => ElementType::Float32,
            TensorData::Uint8(_) => ElementType::Uint8,
            TensorData::Int8(_) => ElementType::Int8,
            TensorData::Int16(_) => ElementType::Int16,
        }
    }

    /// The quantized values widened to i32, or `None` for float data.
    pub fn to_i32(&self) -> Option<Vec<i32>> {
        match self {
            TensorData::Float32(_) => None,
            TensorData::Uint8(v) => Some(v.iter().map(|&x| x as i32).collect()),
            TensorData::Int8(v) => Some(v.iter().map(|&x| x as i32).collect()),
            TensorData::Int16(v) => Some(v.iter().map(|&x| x as i32).collect()),
        }
    }

    /// A zero-filled buffer of `len` elements of `element`.
    pub fn zeros(element: ElementType, len: usize) -> TensorData {
        match element {
            ElementType::Float32 => TensorData::Float32(vec![0.0; len]),
            ElementType::Uint8 => TensorData::Uint8(vec![0; len]),
            ElementType::Int8 => TensorData::Int8(vec![0; len]),
            ElementType::Int16 => TensorData::Int16(vec![0; len]),
        }
    }
}

/// `types.tensor`: dense, row-major; images are NHWC.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub data: TensorData,
}

/// `types.quantization`: real = scale * (quantized - zero_point)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i32,
}

/// `types.tensor-info`
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub shape: Vec<u32>,
    pub element: ElementType,
    pub quantization: Option<Quantization>,
}

/// `types.model-info`
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    pub precision: Precision,
    pub input: TensorInfo,
    pub output: TensorInfo,
    pub classes: u32,
    pub operators: u32,
    pub macs: u64,
    pub parameter_bytes: u64,
}

/// `types.load-options`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    pub precision: Option<Precision>,
    pub labels: Option<String>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
}

/// `quantizer.calibration`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Calibration {
    pub images: Vec<Vec<u8>>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
}

/// `types.prediction`
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub index: u32,
    pub label: Option<String>,
    pub score: f32,
}

/// The case of `types.error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    MalformedModel,
    UnsupportedModel,
    InvalidImage,
    InvalidInput,
    TooLarge,
}

/// `types.error`: an error the component *returned* (as opposed to a trap or host failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The result of one call through the component boundary.
///
/// The outer `anyhow::Result` is the *engine's* verdict: `Err` means the call did not complete
/// (a trap, an instantiation or linking failure, a host-side I/O error). The inner `Result` is the
/// *component's* answer, `Err` being the WIT `error` variant. Robustness tests require garbage
/// to produce `Ok(Err(_))`, never an outer `Err`.
pub type Call<T> = anyhow::Result<Result<T, ApiError>>;
