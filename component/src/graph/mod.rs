//! Graph IR: the model as validated data — tensors with shapes, element types and quantization, and
//! nodes in execution order, each with its options decoded and its output shape checked.
//!
//! Lowering from TFLite happens here and nowhere else; so does every conversion between precisions
//! (uint8 → int8 re-centering while lowering; fp32 / int8 / int16 in [`convert`]), before planning, so
//! kernels never see a uint8 value or a mixed-precision graph they were not written for.

pub mod convert;
pub mod lower;
pub mod operators;

pub use lower::lower;

use crate::kernels::Activation;

/// Element types the executor computes with. uint8 tensors are re-centred to `I8` while lowering
/// (value − 128, zero point − 128), which is exact for every operator we run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    I64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }
}

/// Affine quantization: `real = scale * (q - zero_point)`, per tensor (one scale) or per channel
/// along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    pub scales: Vec<f32>,
    pub zero_points: Vec<i32>,
    pub axis: usize,
}

impl Quant {
    pub fn per_tensor(&self) -> bool {
        self.scales.len() == 1
    }
    pub fn scale(&self) -> f32 {
        self.scales[0]
    }
    pub fn zero_point(&self) -> i32 {
        self.zero_points[0]
    }
}

/// Constant tensor contents, copied out of the file (and re-centred where uint8).
#[derive(Debug, Clone, PartialEq)]
pub enum ConstData {
    F32(Vec<f32>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: Option<Quant>,
    pub data: Option<ConstData>,
    /// Stored as uint8 in the file (so its values and zero point here are shifted by −128).
    pub from_uint8: bool,
}

impl Tensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_const(&self) -> bool {
        self.data.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// inputs: data, filter `[out_c, k_h, k_w, in_c]`, optional bias.
    Conv2d {
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
        activation: Activation,
    },
    /// inputs: data, filter `[1, k_h, k_w, out_c]`, optional bias.
    DepthwiseConv2d {
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
        depth_multiplier: usize,
        activation: Activation,
    },
    /// inputs: data (flattened to `[rows, in]`), weights `[out, in]`, optional bias.
    FullyConnected {
        activation: Activation,
    },
    AveragePool2d {
        filter: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
        activation: Activation,
    },
    /// Mean over H and W of an NHWC tensor (the only reduction MobileNets use).
    MeanHw,
    /// Element-wise, equal shapes.
    Add {
        activation: Activation,
        pot_scale_int16: bool,
    },
    /// Same elements, new shape: free at run time.
    Reshape,
    /// Over the last dimension.
    Softmax {
        beta: f32,
    },
    /// f32 → int, or int → int with a new scale / zero point.
    Quantize,
    Dequantize,
    /// Constant padding of an NHWC tensor with the zero point: `[before, after]` per dimension.
    Pad {
        before: [usize; 4],
        after: [usize; 4],
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "CONV_2D",
            Op::DepthwiseConv2d { .. } => "DEPTHWISE_CONV_2D",
            Op::FullyConnected { .. } => "FULLY_CONNECTED",
            Op::AveragePool2d { .. } => "AVERAGE_POOL_2D",
            Op::MeanHw => "MEAN",
            Op::Add { .. } => "ADD",
            Op::Reshape => "RESHAPE",
            Op::Softmax { .. } => "SOFTMAX",
            Op::Quantize => "QUANTIZE",
            Op::Dequantize => "DEQUANTIZE",
            Op::Pad { .. } => "PAD",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub op: Op,
    /// Tensor indices; an absent optional input (TFLite's −1) is `None`.
    pub inputs: Vec<Option<usize>>,
    pub output: usize,
}

impl Node {
    /// The i-th input, which lowering checked is present where required.
    pub fn input(&self, i: usize) -> usize {
        self.inputs[i].expect("required inputs are checked while lowering")
    }
    pub fn optional_input(&self, i: usize) -> Option<usize> {
        self.inputs.get(i).copied().flatten()
    }
}

/// The precision a graph computes in, told by its first compute operator's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Precision {
    Fp32,
    Int16,
    Int8,
}

impl Precision {
    /// Every precision, in the order they are reported.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Int16, Precision::Int8];

    /// The one spelling: WIT's enum case, the command lines' `--precision`, HTTP's `precision=`,
    /// wasi:nn's `precision` option and the JSON answers all use it.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int16 => "int16",
            Precision::Int8 => "int8",
        }
    }

    /// The inverse of [`Precision::name`]; nothing else is accepted (no case folding, no aliases).
    pub fn parse(s: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == s)
    }

    /// `fp32, int16 or int8`, for messages that list what [`Precision::parse`] accepts.
    pub fn choices() -> String {
        let names = Precision::ALL.map(Precision::name);
        format!("{}, {} or {}", names[0], names[1], names[2])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub name: String,
    pub tensors: Vec<Tensor>,
    pub nodes: Vec<Node>,
    pub input: usize,
    pub output: usize,
    /// The file's own element type names of the input and output (before uint8 re-centering).
    pub input_uint8: bool,
    pub output_uint8: bool,
}

impl Graph {
    pub fn precision(&self) -> Precision {
        let compute = self
            .nodes
            .iter()
            .find(|n| matches!(n.op, Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. }));
        let dtype = compute.map(|n| self.tensors[n.output].dtype).unwrap_or(self.tensors[self.output].dtype);
        match dtype {
            DType::I8 => Precision::Int8,
            DType::I16 => Precision::Int16,
            _ => Precision::Fp32,
        }
    }

    /// Multiply-accumulates of one inference.
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                let out = &self.tensors[n.output];
                let out_elems = out.numel() as u64;
                match n.op {
                    Op::Conv2d { .. } => {
                        let f = &self.tensors[n.input(1)].shape;
                        out_elems * (f[1] * f[2] * f[3]) as u64
                    }
                    Op::DepthwiseConv2d { .. } => {
                        let f = &self.tensors[n.input(1)].shape;
                        out_elems * (f[1] * f[2]) as u64
                    }
                    Op::FullyConnected { .. } => {
                        let w = &self.tensors[n.input(1)].shape;
                        out_elems * w[1] as u64
                    }
                    _ => 0,
                }
            })
            .sum()
    }

    /// Bytes of constant data as stored in the file.
    pub fn parameter_bytes(&self) -> u64 {
        self.tensors.iter().filter(|t| t.is_const()).map(|t| (t.numel() * t.dtype.size()) as u64).sum()
    }

    /// Whether the graph ends in SOFTMAX (possibly followed by a QUANTIZE/DEQUANTIZE/RESHAPE),
    /// i.e. whether its output already is a probability distribution.
    pub fn ends_in_softmax(&self) -> bool {
        for n in self.nodes.iter().rev() {
            match n.op {
                Op::Softmax { .. } => return true,
                Op::Quantize | Op::Dequantize | Op::Reshape => continue,
                _ => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod precision_tests {
    use super::Precision;

    #[test]
    fn precision_names_parse_back_and_nothing_else_does() {
        for p in Precision::ALL {
            assert_eq!(Precision::parse(p.name()), Some(p));
        }
        for bad in ["", "FP32", "int4", "float32", " int8"] {
            assert_eq!(Precision::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Precision::choices(), "fp32, int16 or int8");
    }
}
