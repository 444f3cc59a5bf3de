//! WIT glue: converts between the generated `wasi:nn` types and [`crate::provider`], nothing else.

use crate::provider::{self, Code, Encoding, NnError, NnTensor, Target, TensorType};

wit_bindgen::generate!({ path: "../wit", world: "wasi-nn-provider" });

use exports::wasi::nn::errors::{self as e, GuestError};
use exports::wasi::nn::graph::{self as g, GuestGraph};
use exports::wasi::nn::inference::{self as i, GuestGraphExecutionContext};
use exports::wasi::nn::tensor::{self as t, GuestTensor};

struct Provider;

struct ErrorRes(NnError);
struct TensorRes(NnTensor);
struct GraphRes(provider::Graph);
struct ContextRes(provider::Graph);

fn error(err: NnError) -> e::Error {
    e::Error::new(ErrorRes(err))
}

impl e::Guest for Provider {
    type Error = ErrorRes;
}

impl GuestError for ErrorRes {
    fn code(&self) -> e::ErrorCode {
        match self.0.code {
            Code::InvalidArgument => e::ErrorCode::InvalidArgument,
            Code::InvalidEncoding => e::ErrorCode::InvalidEncoding,
            Code::Timeout => e::ErrorCode::Timeout,
            Code::RuntimeError => e::ErrorCode::RuntimeError,
            Code::UnsupportedOperation => e::ErrorCode::UnsupportedOperation,
            Code::TooLarge => e::ErrorCode::TooLarge,
            Code::NotFound => e::ErrorCode::NotFound,
            Code::Security => e::ErrorCode::Security,
            Code::Unknown => e::ErrorCode::Unknown,
        }
    }

    fn data(&self) -> String {
        self.0.message.clone()
    }
}

fn ty_from(ty: t::TensorType) -> TensorType {
    match ty {
        t::TensorType::Fp16 => TensorType::Fp16,
        t::TensorType::Fp32 => TensorType::Fp32,
        t::TensorType::Fp64 => TensorType::Fp64,
        t::TensorType::Bf16 => TensorType::Bf16,
        t::TensorType::U8 => TensorType::U8,
        t::TensorType::I32 => TensorType::I32,
        t::TensorType::I64 => TensorType::I64,
    }
}

fn ty_to(ty: TensorType) -> t::TensorType {
    match ty {
        TensorType::Fp16 => t::TensorType::Fp16,
        TensorType::Fp32 => t::TensorType::Fp32,
        TensorType::Fp64 => t::TensorType::Fp64,
        TensorType::Bf16 => t::TensorType::Bf16,
        TensorType::U8 => t::TensorType::U8,
        TensorType::I32 => t::TensorType::I32,
        TensorType::I64 => t::TensorType::I64,
    }
}

impl t::Guest for Provider {
    type Tensor = TensorRes;
}

impl GuestTensor for TensorRes {
    fn new(dimensions: t::TensorDimensions, ty: t::TensorType, data: t::TensorData) -> Self {
        TensorRes(NnTensor { dimensions, ty: ty_from(ty), data })
    }

    fn dimensions(&self) -> t::TensorDimensions {
        self.0.dimensions.clone()
    }

    fn ty(&self) -> t::TensorType {
        ty_to(self.0.ty)
    }

    fn data(&self) -> t::TensorData {
        self.0.data.clone()
    }
}

impl g::Guest for Provider {
    type Graph = GraphRes;

    fn load(
        builder: Vec<g::GraphBuilder>,
        encoding: g::GraphEncoding,
        target: g::ExecutionTarget,
    ) -> Result<g::Graph, e::Error> {
        let encoding = match encoding {
            g::GraphEncoding::Openvino => Encoding::Openvino,
            g::GraphEncoding::Onnx => Encoding::Onnx,
            g::GraphEncoding::Tensorflow => Encoding::Tensorflow,
            g::GraphEncoding::Pytorch => Encoding::Pytorch,
            g::GraphEncoding::Tensorflowlite => Encoding::Tensorflowlite,
            g::GraphEncoding::Ggml => Encoding::Ggml,
            g::GraphEncoding::Autodetect => Encoding::Autodetect,
        };
        let target = match target {
            g::ExecutionTarget::Cpu => Target::Cpu,
            g::ExecutionTarget::Gpu => Target::Gpu,
            g::ExecutionTarget::Tpu => Target::Tpu,
        };
        let builders: Vec<&[u8]> = builder.iter().map(Vec::as_slice).collect();
        let graph = provider::load(&builders, encoding, target).map_err(error)?;
        Ok(g::Graph::new(GraphRes(graph)))
    }

    fn load_by_name(name: String) -> Result<g::Graph, e::Error> {
        let graph = provider::load_by_name(edge_classify::embedded::baked(), &name).map_err(error)?;
        Ok(g::Graph::new(GraphRes(graph)))
    }
}

impl GuestGraph for GraphRes {
    fn init_execution_context(&self) -> Result<i::GraphExecutionContext, e::Error> {
        Ok(i::GraphExecutionContext::new(ContextRes(self.0.context())))
    }
}

impl i::Guest for Provider {
    type GraphExecutionContext = ContextRes;
}

impl GuestGraphExecutionContext for ContextRes {
    fn compute(&self, inputs: Vec<i::NamedTensor>) -> Result<Vec<i::NamedTensor>, e::Error> {
        let inputs: Vec<(String, NnTensor)> =
            inputs.into_iter().map(|(name, tensor)| (name, tensor.into_inner::<TensorRes>().0)).collect();
        let outputs = self.0.compute(&inputs).map_err(error)?;
        Ok(outputs.into_iter().map(|(name, tensor)| (name, t::Tensor::new(TensorRes(tensor)))).collect())
    }
}

export!(Provider);
