//! TFLite writer: a validated [`Graph`] back to a `.tflite` flatbuffer, so what the quantizer produces
//! is a file TFLite itself (and anyone else) can run, not something only this crate understands.
//!
//! Only what the graph IR can express is written: one subgraph, the operators we lower, their options,
//! per-tensor / per-channel quantization and constant buffers. Field slots follow `schema.fbs`, like
//! the reader's. Output is deterministic (the same graph gives the same bytes), which the suite relies on
//! to compare a re-quantized model with the one the golden script checked against TFLite.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::{op, tensor_type};
use crate::error::Result;
use crate::graph::{ConstData, DType, Graph, Op, Padding, Tensor};
use crate::kernels::Activation;

/// `schema.fbs` field slot of field `id`.
const fn slot(id: u16) -> u16 {
    4 + 2 * id
}

/// `BuiltinOptions` union keys.
mod options {
    pub const CONV2D: u8 = 1;
    pub const DEPTHWISE_CONV2D: u8 = 2;
    pub const POOL2D: u8 = 5;
    pub const FULLY_CONNECTED: u8 = 8;
    pub const SOFTMAX: u8 = 9;
    pub const ADD: u8 = 11;
    pub const RESHAPE: u8 = 17;
    pub const REDUCER: u8 = 27;
}

fn op_code(o: &Op) -> i32 {
    match o {
        Op::Conv2d { .. } => op::CONV_2D,
        Op::DepthwiseConv2d { .. } => op::DEPTHWISE_CONV_2D,
        Op::FullyConnected { .. } => op::FULLY_CONNECTED,
        Op::AveragePool2d { .. } => op::AVERAGE_POOL_2D,
        Op::MeanHw => op::MEAN,
        Op::Add { .. } => op::ADD,
        Op::Reshape => op::RESHAPE,
        Op::Softmax { .. } => op::SOFTMAX,
        Op::Quantize => op::QUANTIZE,
        Op::Dequantize => op::DEQUANTIZE,
        Op::Pad { .. } => op::PAD,
    }
}

fn activation_code(a: Activation) -> i8 {
    match a {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::Relu6 => 3,
    }
}

fn padding_code(p: Padding) -> i8 {
    match p {
        Padding::Same => 0,
        Padding::Valid => 1,
    }
}

fn element_type(t: &Tensor) -> Result<i8> {
    Ok(match (t.dtype, t.from_uint8) {
        (DType::F32, _) => tensor_type::FLOAT32,
        (DType::I8, true) => tensor_type::UINT8,
        (DType::I8, false) => tensor_type::INT8,
        (DType::I16, _) => tensor_type::INT16,
        (DType::I32, _) => tensor_type::INT32,
        (DType::I64, _) => tensor_type::INT64,
    })
}

/// Little-endian bytes of a constant as the file stores it (uint8 shifted back by +128).
fn const_bytes(t: &Tensor, d: &ConstData) -> Vec<u8> {
    match d {
        ConstData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ConstData::I8(v) if t.from_uint8 => v.iter().map(|&x| (x as i32 + 128) as u8).collect(),
        ConstData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        ConstData::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ConstData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ConstData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn dims(shape: &[usize]) -> Result<Vec<i32>> {
    shape
        .iter()
        .map(|&d| i32::try_from(d).map_err(|_| crate::Error::TooLarge(format!("dimension {d} exceeds int32"))))
        .collect()
}

/// The zip TFLite Support appends after a model to carry its associated files (label lists), with
/// one stored (uncompressed) file: to be appended to a model of `base` bytes, since the archive's
/// offsets count from the start of the file as TFLite Support writes them.
pub fn associated_file_zip(base: usize, name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32fast::hash(data);
    let common = |out: &mut Vec<u8>| {
        for v in [0u16, 0, 0] {
            out.extend(v.to_le_bytes());
        }
        for v in [crc, data.len() as u32, data.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
    };
    let mut out = b"PK\x03\x04\x14\x00\x00\x00".to_vec();
    common(&mut out);
    out.extend(name.as_bytes());
    out.extend(data);
    let cd = out.len();
    out.extend(b"PK\x01\x02\x14\x00\x14\x00\x00\x00");
    common(&mut out);
    out.extend([0; 10]);
    out.extend((base as u32).to_le_bytes());
    out.extend(name.as_bytes());
    let cd_size = (out.len() - cd) as u32;
    out.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    out.extend(cd_size.to_le_bytes());
    out.extend(((base + cd) as u32).to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// Serializes `g` as a TFLite model with `description`.
pub fn write(g: &Graph, description: &str) -> Result<Vec<u8>> {
    write_with_metadata(g, description, &[])
}

/// As [`write`], with `Model.metadata` entries (name, buffer contents), e.g. a TFLite Support
/// `TFLITE_METADATA` flatbuffer: how the fuzz seeds carry metadata on a model small enough to mutate.
pub fn write_with_metadata(g: &Graph, description: &str, metadata: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut b = FlatBufferBuilder::with_capacity(1 << 20);

    // Buffer 0 is the empty sentinel every non-constant tensor points at.
    let mut buffers = Vec::with_capacity(g.tensors.len() + 1);
    let empty = b.start_table();
    buffers.push(b.end_table(empty));
    let mut tensors = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        let buffer = match &t.data {
            Some(d) => {
                let bytes = const_bytes(t, d);
                let data = b.create_vector(&bytes);
                let start = b.start_table();
                b.push_slot_always(slot(0), data);
                buffers.push(b.end_table(start));
                (buffers.len() - 1) as u32
            }
            None => 0,
        };
        let shape = b.create_vector(&dims(&t.shape)?);
        let name = b.create_string(&t.name);
        let quant = match &t.quant {
            Some(q) => {
                let shift = if t.from_uint8 { 128 } else { 0 };
                let scale = b.create_vector(&q.scales);
                let zps: Vec<i64> = q.zero_points.iter().map(|&z| z as i64 + shift).collect();
                let zero_point = b.create_vector(&zps);
                let start = b.start_table();
                b.push_slot_always(slot(2), scale);
                b.push_slot_always(slot(3), zero_point);
                b.push_slot(slot(6), q.axis as i32, 0);
                Some(b.end_table(start))
            }
            None => None,
        };
        let start = b.start_table();
        b.push_slot_always(slot(0), shape);
        b.push_slot(slot(1), element_type(t)?, 0);
        b.push_slot(slot(2), buffer, 0);
        b.push_slot_always(slot(3), name);
        if let Some(q) = quant {
            b.push_slot_always(slot(4), q);
        }
        tensors.push(b.end_table(start));
    }

    // One operator code per distinct builtin, in order of first use.
    let mut codes: Vec<i32> = Vec::new();
    let mut operators = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let code = op_code(&n.op);
        let index = match codes.iter().position(|&c| c == code) {
            Some(i) => i,
            None => {
                codes.push(code);
                codes.len() - 1
            }
        };
        let ins: Vec<i32> = n.inputs.iter().map(|i| i.map_or(-1, |i| i as i32)).collect();
        let inputs = b.create_vector(&ins);
        let outputs = b.create_vector(&[n.output as i32]);
        let (kind, opts) = write_options(&mut b, g, n)?;
        let start = b.start_table();
        b.push_slot(slot(0), index as u32, 0);
        b.push_slot_always(slot(1), inputs);
        b.push_slot_always(slot(2), outputs);
        if let Some(o) = opts {
            b.push_slot(slot(3), kind, 0);
            b.push_slot_always(slot(4), o);
        }
        operators.push(b.end_table(start));
    }

    let tensors = b.create_vector(&tensors);
    let inputs = b.create_vector(&[g.input as i32]);
    let outputs = b.create_vector(&[g.output as i32]);
    let operators = b.create_vector(&operators);
    let name = b.create_string(&g.name);
    let start = b.start_table();
    b.push_slot_always(slot(0), tensors);
    b.push_slot_always(slot(1), inputs);
    b.push_slot_always(slot(2), outputs);
    b.push_slot_always(slot(3), operators);
    b.push_slot_always(slot(4), name);
    let subgraph = b.end_table(start);

    let mut op_codes = Vec::with_capacity(codes.len());
    for &c in &codes {
        let start = b.start_table();
        // Readers older than schema v3a only look at the int8 field; codes above 127 say "see the int32".
        b.push_slot(slot(0), c.min(127) as i8, 0);
        b.push_slot(slot(2), 1i32, 0);
        b.push_slot(slot(3), c, 0);
        op_codes.push(b.end_table(start));
    }
    let op_codes = b.create_vector(&op_codes);
    let subgraphs = b.create_vector(&[subgraph]);
    let description = b.create_string(description);
    let mut entries = Vec::with_capacity(metadata.len());
    for &(name, bytes) in metadata {
        let data = b.create_vector(bytes);
        let start = b.start_table();
        b.push_slot_always(slot(0), data);
        buffers.push(b.end_table(start));
        let name = b.create_string(name);
        let start = b.start_table();
        b.push_slot_always(slot(0), name);
        b.push_slot(slot(1), (buffers.len() - 1) as u32, 0);
        entries.push(b.end_table(start));
    }
    let entries = (!entries.is_empty()).then(|| b.create_vector(&entries));
    let buffers = b.create_vector(&buffers);
    let start = b.start_table();
    b.push_slot(slot(0), 3u32, 0);
    b.push_slot_always(slot(1), op_codes);
    b.push_slot_always(slot(2), subgraphs);
    b.push_slot_always(slot(3), description);
    b.push_slot_always(slot(4), buffers);
    if let Some(entries) = entries {
        b.push_slot_always(slot(6), entries);
    }
    let model = b.end_table(start);
    b.finish(model, Some("TFL3"));
    Ok(b.finished_data().to_vec())
}

fn write_options(
    b: &mut FlatBufferBuilder<'_>,
    g: &Graph,
    n: &crate::graph::Node,
) -> Result<(u8, Option<WIPOffset<UnionWIPOffset>>)> {
    let table = |b: &mut FlatBufferBuilder<'_>, f: &dyn Fn(&mut FlatBufferBuilder<'_>)| {
        let start = b.start_table();
        f(b);
        b.end_table(start).as_union_value()
    };
    Ok(match n.op {
        Op::Conv2d { stride, dilation, padding, activation } => (
            options::CONV2D,
            Some(table(b, &|b| {
                b.push_slot(slot(0), padding_code(padding), 0);
                b.push_slot(slot(1), stride[1] as i32, 0);
                b.push_slot(slot(2), stride[0] as i32, 0);
                b.push_slot(slot(3), activation_code(activation), 0);
                b.push_slot(slot(4), dilation[1] as i32, 1);
                b.push_slot(slot(5), dilation[0] as i32, 1);
            })),
        ),
        Op::DepthwiseConv2d { stride, dilation, padding, depth_multiplier, activation } => (
            options::DEPTHWISE_CONV2D,
            Some(table(b, &|b| {
                b.push_slot(slot(0), padding_code(padding), 0);
                b.push_slot(slot(1), stride[1] as i32, 0);
                b.push_slot(slot(2), stride[0] as i32, 0);
                b.push_slot(slot(3), depth_multiplier as i32, 0);
                b.push_slot(slot(4), activation_code(activation), 0);
                b.push_slot(slot(5), dilation[1] as i32, 1);
                b.push_slot(slot(6), dilation[0] as i32, 1);
            })),
        ),
        Op::FullyConnected { activation } => {
            // The lowered graph checked the output shape; keep_num_dims is what makes a rank > 2 output.
            let keep = g.tensors[n.output].shape.len() > 2;
            (
                options::FULLY_CONNECTED,
                Some(table(b, &|b| {
                    b.push_slot(slot(0), activation_code(activation), 0);
                    b.push_slot(slot(2), keep, false);
                })),
            )
        }
        Op::AveragePool2d { filter, stride, padding, activation } => (
            options::POOL2D,
            Some(table(b, &|b| {
                b.push_slot(slot(0), padding_code(padding), 0);
                b.push_slot(slot(1), stride[1] as i32, 0);
                b.push_slot(slot(2), stride[0] as i32, 0);
                b.push_slot(slot(3), filter[1] as i32, 0);
                b.push_slot(slot(4), filter[0] as i32, 0);
                b.push_slot(slot(5), activation_code(activation), 0);
            })),
        ),
        Op::MeanHw => {
            let keep = g.tensors[n.output].shape.len() == 4;
            (options::REDUCER, Some(table(b, &|b| b.push_slot(slot(0), keep, false))))
        }
        Op::Add { activation, pot_scale_int16 } => (
            options::ADD,
            Some(table(b, &|b| {
                b.push_slot(slot(0), activation_code(activation), 0);
                // Written always: an absent field reads as the schema default (true).
                b.push_slot_always(slot(1), pot_scale_int16);
            })),
        ),
        Op::Reshape => {
            let shape = dims(&g.tensors[n.output].shape)?;
            let v = b.create_vector(&shape);
            (options::RESHAPE, Some(table(b, &|b| b.push_slot_always(slot(0), v))))
        }
        Op::Softmax { beta } => (options::SOFTMAX, Some(table(b, &|b| b.push_slot_always(slot(0), beta)))),
        Op::Quantize | Op::Dequantize | Op::Pad { .. } => (0, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::lower;

    fn shared_model(name: &str) -> Vec<u8> {
        let path = format!("{}/../../shared/models/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Writing a lowered model and lowering the result gives the same graph: the writer loses
    /// nothing the executor uses.
    #[test]
    fn round_trips_every_shared_model() {
        for name in [
            "mobilenet_v2_1.0_224_quant.tflite",
            "mobilenet_v2_1.0_224_ptq_int8.tflite",
            "person_detect.tflite",
            "dog_breeds_mobilenet_v2_160_float.tflite",
            "dog_breeds_mobilenet_v2_160_int8.tflite",
            "dog_breeds_mobilenet_v2_160_int16x8.tflite",
        ] {
            let g = lower(&shared_model(name)).unwrap();
            let bytes = write(&g, "test").unwrap();
            let mut back = lower(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            // RESHAPE's shape input (if any) is kept; the writer adds new_shape, which lowering ignores.
            back.name = g.name.clone();
            assert_eq!(back, g, "{name}");
            assert_eq!(write(&back, "test").unwrap(), bytes, "{name}: not deterministic");
        }
    }
}
