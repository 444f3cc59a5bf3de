//! The plain types of the public API, one for each record and enum of WIT's `types` interface
//! (`wit/classify.wit`): what `model`, `input`, `prepared` and the bindings speak. Nothing here runs a model.

use crate::error::{bail, Result};
pub use crate::graph::Precision;
use crate::graph::{DType, Graph};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    pub precision: Option<Precision>,
    pub labels: Option<String>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
    /// The model's name when its TFLite metadata names none (the file's stem, say; `bake --name`).
    /// Not in WIT's `load-options`: a component caller names a model in its own answers.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElementType {
    Float32,
    Uint8,
    Int8,
    Int16,
}

impl ElementType {
    pub const ALL: [ElementType; 4] = [ElementType::Float32, ElementType::Uint8, ElementType::Int8, ElementType::Int16];

    /// The one spelling, WIT's `element-type` case names.
    pub const fn name(self) -> &'static str {
        match self {
            ElementType::Float32 => "float32",
            ElementType::Uint8 => "uint8",
            ElementType::Int8 => "int8",
            ElementType::Int16 => "int16",
        }
    }

    /// The inverse of [`ElementType::name`].
    pub fn parse(s: &str) -> Option<ElementType> {
        ElementType::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            ElementType::Float32 => 4,
            ElementType::Int16 => 2,
            ElementType::Uint8 | ElementType::Int8 => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Float32(Vec<f32>),
    Uint8(Vec<u8>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
}

impl TensorData {
    pub fn element_type(&self) -> ElementType {
        match self {
            TensorData::Float32(_) => ElementType::Float32,
            TensorData::Uint8(_) => ElementType::Uint8,
            TensorData::Int8(_) => ElementType::Int8,
            TensorData::Int16(_) => ElementType::Int16,
        }
    }
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub data: TensorData,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// The tensor's name in the file (wasi:nn names a graph's outputs by it).
    pub name: String,
    pub shape: Vec<u32>,
    pub element: ElementType,
    pub quantization: Option<Quantization>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// The metadata's model name, else [`LoadOptions::name`], else empty (no name known). Never the
    /// file's description or its subgraph's name: converters write their own text there ("TOCO
    /// Converted.", "main").
    pub name: String,
    /// From the model's TFLite metadata, when it carries them.
    pub description: Option<String>,
    pub version: Option<String>,
    pub precision: Precision,
    pub input: TensorInfo,
    pub output: TensorInfo,
    /// The file's own input, before any conversion to `precision` (`input` is what executes): what a
    /// caller holding the file's tensors (uint8 pixels, say) has to convert them from.
    pub file_input: TensorInfo,
    pub classes: u32,
    pub operators: u32,
    pub macs: u64,
    pub parameter_bytes: u64,
    /// Why the model's TFLite Support metadata could not be read, when it could not: the model then
    /// loads without it, as TFLite runs it (no labels, no normalization from the metadata).
    pub metadata_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub index: u32,
    pub label: Option<String>,
    pub score: f32,
}

impl TensorInfo {
    /// Graph tensor `t` as the API describes it; `uint8`: the file's element type is uint8 (the graph
    /// holds it re-centred as int8).
    pub(crate) fn of(g: &Graph, t: usize, uint8: bool) -> Result<TensorInfo> {
        let tensor = &g.tensors[t];
        let element = match (tensor.dtype, uint8) {
            (DType::F32, _) => ElementType::Float32,
            (DType::I8, true) => ElementType::Uint8,
            (DType::I8, false) => ElementType::Int8,
            (DType::I16, _) => ElementType::Int16,
            (dt, _) => bail!(UnsupportedModel, "graph input/output of type {dt:?}"),
        };
        let shape = tensor
            .shape
            .iter()
            .map(|&d| u32::try_from(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| crate::Error::TooLarge(format!("dimension of {:?} exceeds u32", tensor.shape)))?;
        let quantization = tensor.quant.as_ref().map(|q| Quantization {
            scale: q.scale(),
            // Report the file's own zero point, not the re-centred one.
            zero_point: q.zero_point() + if uint8 { 128 } else { 0 },
        });
        Ok(TensorInfo { name: tensor.name.clone(), shape, element, quantization })
    }
}
