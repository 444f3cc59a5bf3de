//! TFLite reader: verifies a flatbuffer and gives zero-copy views of its tables.
//!
//! Nothing here interprets the model; `graph` lowers these views into a validated IR. [`write`] goes the
//! other way, for the quantizer's output.

pub mod metadata;
pub mod schema;
pub mod write;

use crate::error::{bail, Result};
pub use schema::*;

/// Flatbuffer file identifier at bytes 4..8 of every TFLite file.
const IDENTIFIER: &[u8; 4] = b"TFL3";

/// Verifies `bytes` as a TFLite model and returns its root table.
pub fn read(bytes: &[u8]) -> Result<Model<'_>> {
    if bytes.len() < 8 {
        bail!(MalformedModel, "{} bytes is too short to be a TFLite file", bytes.len());
    }
    if &bytes[4..8] != IDENTIFIER {
        bail!(MalformedModel, "not a TFLite flatbuffer (file identifier is not \"TFL3\")");
    }
    let opts = flatbuffers::VerifierOptions {
        max_depth: 32,
        max_tables: 100_000,
        max_apparent_size: 1 << 31,
        ignore_missing_null_terminator: false,
    };
    flatbuffers::root_with_opts::<Model>(&opts, bytes)
        .map_err(|e| crate::Error::MalformedModel(format!("flatbuffer verification failed: {e}")))
}

/// TFLite `TensorType` values.
pub mod tensor_type {
    pub const FLOAT32: i8 = 0;
    pub const INT32: i8 = 2;
    pub const UINT8: i8 = 3;
    pub const INT64: i8 = 4;
    pub const INT16: i8 = 7;
    pub const INT8: i8 = 9;

    pub fn name(t: i8) -> &'static str {
        match t {
            0 => "FLOAT32",
            1 => "FLOAT16",
            2 => "INT32",
            3 => "UINT8",
            4 => "INT64",
            5 => "STRING",
            6 => "BOOL",
            7 => "INT16",
            8 => "COMPLEX64",
            9 => "INT8",
            10 => "FLOAT64",
            11 => "COMPLEX128",
            12 => "UINT64",
            13 => "RESOURCE",
            14 => "VARIANT",
            15 => "UINT32",
            16 => "UINT16",
            17 => "INT4",
            _ => "unknown type",
        }
    }
}

/// TFLite `BuiltinOperator` codes of the operators we run.
pub mod op {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const DEQUANTIZE: i32 = 6;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const RESHAPE: i32 = 22;
    pub const SOFTMAX: i32 = 25;
    pub const PAD: i32 = 34;
    pub const MEAN: i32 = 40;
    pub const QUANTIZE: i32 = 114;

    /// Names for error messages (the schema's spelling), so "unsupported" says what it saw.
    pub fn name(code: i32) -> String {
        const NAMES: &[&str] = &[
            "ADD",
            "AVERAGE_POOL_2D",
            "CONCATENATION",
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "DEPTH_TO_SPACE",
            "DEQUANTIZE",
            "EMBEDDING_LOOKUP",
            "FLOOR",
            "FULLY_CONNECTED",
            "HASHTABLE_LOOKUP",
            "L2_NORMALIZATION",
            "L2_POOL_2D",
            "LOCAL_RESPONSE_NORMALIZATION",
            "LOGISTIC",
            "LSH_PROJECTION",
            "LSTM",
            "MAX_POOL_2D",
            "MUL",
            "RELU",
            "RELU_N1_TO_1",
            "RELU6",
            "RESHAPE",
            "RESIZE_BILINEAR",
            "RNN",
            "SOFTMAX",
            "SPACE_TO_DEPTH",
            "SVDF",
            "TANH",
            "CONCAT_EMBEDDINGS",
            "SKIP_GRAM",
            "CALL",
            "CUSTOM",
            "EMBEDDING_LOOKUP_SPARSE",
            "PAD",
            "UNIDIRECTIONAL_SEQUENCE_RNN",
            "GATHER",
            "BATCH_TO_SPACE_ND",
            "SPACE_TO_BATCH_ND",
            "TRANSPOSE",
            "MEAN",
            "SUB",
            "DIV",
            "SQUEEZE",
            "UNIDIRECTIONAL_SEQUENCE_LSTM",
            "STRIDED_SLICE",
            "BIDIRECTIONAL_SEQUENCE_RNN",
            "EXP",
            "TOPK_V2",
            "SPLIT",
            "LOG_SOFTMAX",
            "DELEGATE",
            "BIDIRECTIONAL_SEQUENCE_LSTM",
            "CAST",
            "PRELU",
            "MAXIMUM",
            "ARG_MAX",
            "MINIMUM",
            "LESS",
            "NEG",
            "PADV2",
            "GREATER",
            "GREATER_EQUAL",
            "LESS_EQUAL",
            "SELECT",
            "SLICE",
            "SIN",
            "TRANSPOSE_CONV",
            "SPARSE_TO_DENSE",
            "TILE",
            "EXPAND_DIMS",
            "EQUAL",
            "NOT_EQUAL",
            "LOG",
            "SUM",
            "SQRT",
            "RSQRT",
            "SHAPE",
            "POW",
            "ARG_MIN",
            "FAKE_QUANT",
            "REDUCE_PROD",
            "REDUCE_MAX",
            "PACK",
            "LOGICAL_OR",
            "ONE_HOT",
            "LOGICAL_AND",
            "LOGICAL_NOT",
            "UNPACK",
            "REDUCE_MIN",
            "FLOOR_DIV",
            "REDUCE_ANY",
            "SQUARE",
            "ZEROS_LIKE",
            "FILL",
            "FLOOR_MOD",
            "RANGE",
            "RESIZE_NEAREST_NEIGHBOR",
            "LEAKY_RELU",
            "SQUARED_DIFFERENCE",
            "MIRROR_PAD",
            "ABS",
            "SPLIT_V",
            "UNIQUE",
            "CEIL",
            "REVERSE_V2",
            "ADD_N",
            "GATHER_ND",
            "COS",
            "WHERE",
            "RANK",
            "ELU",
            "REVERSE_SEQUENCE",
            "MATRIX_DIAG",
            "QUANTIZE",
            "MATRIX_SET_DIAG",
            "ROUND",
            "HARD_SWISH",
        ];
        usize::try_from(code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("builtin operator {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_model(name: &str) -> Vec<u8> {
        let path = format!("{}/../../shared/models/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_every_shared_model() {
        for name in [
            "mobilenet_v2_1.0_224_quant.tflite",
            "mobilenet_v2_1.0_224_ptq_int8.tflite",
            "person_detect.tflite",
            "dog_breeds_mobilenet_v2_160_float.tflite",
            "dog_breeds_mobilenet_v2_160_int8.tflite",
            "dog_breeds_mobilenet_v2_160_int16x8.tflite",
        ] {
            let bytes = shared_model(name);
            let model = read(&bytes).unwrap();
            let sg = model.subgraphs().unwrap().get(0);
            let codes = model.operator_codes().unwrap();
            let ops = sg.operators().unwrap();
            assert!(ops.len() > 10, "{name}");
            for o in ops.iter() {
                let code = codes.get(o.opcode_index() as usize).code();
                assert!(!op::name(code).starts_with("builtin"), "{name}: {code}");
            }
        }
    }

    #[test]
    fn rejects_non_tflite() {
        assert!(read(b"").is_err());
        assert!(read(b"12345678abcdefgh").is_err());
        let mut bytes = shared_model("person_detect.tflite");
        bytes.truncate(bytes.len() / 2);
        assert!(read(&bytes).is_err());
    }
}
