//! Bad input natively: every malformed model or image is an `Err`, never a panic. (host-tests runs the
//! same kind of inputs through the WIT boundary, where a panic would be a trap.)

use edge_classify::model::{LoadOptions, Model, Tensor, TensorData};
use edge_classify::Error;
use proptest::prelude::*;
use std::sync::OnceLock;

fn shared(path: &str) -> Vec<u8> {
    let p = format!("{}/../../shared/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The smallest shared model (300 KB) keeps each case cheap.
fn vww() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| shared("models/person_detect.tflite"))
}

fn photo() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| shared("images/hot_dog.jpg"))
}

/// A model that loads must also run without panicking.
fn exercise(bytes: &[u8]) -> Result<(), Error> {
    let mut m = Model::load(bytes, &LoadOptions::default())?;
    let n: u32 = m.info().input.shape.iter().product();
    if m.info().input.element == edge_classify::model::ElementType::Int8 {
        m.infer(&Tensor { shape: m.info().input.shape.clone(), data: TensorData::Int8(vec![3; n as usize]) })?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn truncated_models_are_rejected(cut in 0usize..300_000) {
        let bytes = vww();
        let cut = cut % bytes.len();
        prop_assert!(Model::load(&bytes[..cut], &LoadOptions::default()).is_err());
    }

    #[test]
    fn bit_flipped_models_never_panic(flips in prop::collection::vec((0usize..300_568, 0u8..8), 1..8)) {
        let mut bytes = vww().to_vec();
        for (at, bit) in flips {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        // A flip inside weight data leaves a valid model; anywhere else it must be refused cleanly.
        let _ = exercise(&bytes);
    }

    /// Flips confined to the flatbuffer's tables (the first and last KB: root, vtables, tensor and
    /// operator tables) rather than weight data.
    #[test]
    fn bit_flipped_tables_never_panic(flips in prop::collection::vec((0usize..2048, 0u8..8), 1..4)) {
        let mut bytes = vww().to_vec();
        let len = bytes.len();
        for (at, bit) in flips {
            let at = if at < 1024 { at } else { len - 2048 + at };
            bytes[at] ^= 1 << bit;
        }
        let _ = exercise(&bytes);
    }

    #[test]
    fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(Model::load(&bytes, &LoadOptions::default()).is_err());
    }

    #[test]
    fn random_bytes_with_tflite_identifier_are_rejected(mut bytes in prop::collection::vec(any::<u8>(), 8..4096)) {
        bytes[4..8].copy_from_slice(b"TFL3");
        prop_assert!(Model::load(&bytes, &LoadOptions::default()).is_err());
    }

    #[test]
    fn garbage_images_are_invalid_image(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut m = Model::load(vww(), &LoadOptions::default()).unwrap();
        // Garbage that starts like a BMP header (the regression file keeps one) may claim a size over
        // the budget: `too-large` from the header, as for a real one. Nothing else.
        let r = m.classify(&bytes, 1);
        prop_assert!(matches!(r, Err(Error::InvalidImage(_) | Error::TooLarge(_))), "{r:?}");
    }

    #[test]
    fn truncated_or_flipped_images_never_panic(cut in 0usize..200_000, flip in 0usize..200_000) {
        let mut bytes = photo().to_vec();
        let f = flip % bytes.len();
        bytes[f] ^= 0x55;
        bytes.truncate(cut % bytes.len());
        let mut m = Model::load(vww(), &LoadOptions::default()).unwrap();
        let _ = m.classify(&bytes, 2);
    }
}

/// Finds the little-endian `[1, 96, 96, 1]` shape vector of the person detector's input.
fn patch_input_shape(bytes: &mut [u8], new: [i32; 4]) {
    let mut pattern = 4u32.to_le_bytes().to_vec();
    for d in [1i32, 96, 96, 1] {
        pattern.extend(d.to_le_bytes());
    }
    let at = bytes.windows(pattern.len()).position(|w| w == pattern).expect("input shape vector present") + 4;
    for (i, d) in new.iter().enumerate() {
        bytes[at + 4 * i..at + 4 * i + 4].copy_from_slice(&d.to_le_bytes());
    }
}

#[test]
fn absurd_tensor_size_is_too_large() {
    let mut bytes = vww().to_vec();
    patch_input_shape(&mut bytes, [1, 1 << 16, 1 << 16, 1 << 10]);
    let err = Model::load(&bytes, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
}

#[test]
fn negative_dimension_is_unsupported() {
    let mut bytes = vww().to_vec();
    patch_input_shape(&mut bytes, [1, -1, 96, 1]);
    let err = Model::load(&bytes, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedModel(_)), "{err}");
}

#[test]
fn contradicting_shape_is_malformed() {
    let mut bytes = vww().to_vec();
    // 50 rows give the first stride-2 convolution 25 output rows, not the 48 the file declares.
    patch_input_shape(&mut bytes, [1, 50, 96, 1]);
    let err = Model::load(&bytes, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MalformedModel(_)), "{err}");
}

#[test]
fn infer_checks_shape_and_type() {
    let mut m = Model::load(vww(), &LoadOptions::default()).unwrap();
    let bad_shape = Tensor { shape: vec![1, 96, 95, 1], data: TensorData::Int8(vec![0; 96 * 95]) };
    assert!(matches!(m.infer(&bad_shape), Err(Error::InvalidInput(_))));
    let bad_type = Tensor { shape: vec![1, 96, 96, 1], data: TensorData::Float32(vec![0.0; 96 * 96]) };
    assert!(matches!(m.infer(&bad_type), Err(Error::InvalidInput(_))));
    let bad_len = Tensor { shape: vec![1, 96, 96, 1], data: TensorData::Int8(vec![0; 7]) };
    assert!(matches!(m.infer(&bad_len), Err(Error::InvalidInput(_))));
}

#[test]
fn options_are_checked() {
    let labels = Some("only one label".to_string());
    let err = Model::load(vww(), &LoadOptions { labels, ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = Model::load(vww(), &LoadOptions { std: Some(0.0), ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = Model::load(vww(), &LoadOptions { mean: Some(f32::NAN), ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

// ---- tiny hand-built models (flatbuffers builder, field ids as in src/tflite/schema.rs) ----

/// A tensor of a hand-built model: shape, TFLite element type, constant bytes, (scale, zero point).
struct T(&'static [i32], i8, Option<Vec<u8>>, Option<(f32, i64)>);

/// Builds a one-subgraph TFLite file: `ops` are (builtin code, inputs, outputs), without options.
fn build_model(tensors: &[T], ops: &[(i32, &[i32], &[i32])], input: i32, output: i32) -> Vec<u8> {
    use flatbuffers::{FlatBufferBuilder, WIPOffset};
    let slot = |id: u16| 4 + 2 * id;
    let mut b = FlatBufferBuilder::new();
    let mut codes: Vec<i32> = ops.iter().map(|o| o.0).collect();
    codes.sort_unstable();
    codes.dedup();
    let code_tables: Vec<_> = codes
        .iter()
        .map(|&c| {
            let t = b.start_table();
            b.push_slot::<i8>(slot(0), c.min(127) as i8, 0);
            b.push_slot::<i32>(slot(3), c, 0);
            b.end_table(t)
        })
        .collect();
    let code_vec = b.create_vector(&code_tables);
    let mut buffers = vec![{
        let t = b.start_table();
        b.end_table(t)
    }];
    let mut fb_tensors = Vec::new();
    for (i, T(shape, ty, data, quant)) in tensors.iter().enumerate() {
        let buffer = data.as_ref().map(|d| {
            let v = b.create_vector(d);
            let t = b.start_table();
            b.push_slot_always::<WIPOffset<_>>(slot(0), v);
            buffers.push(b.end_table(t));
            buffers.len() as u32 - 1
        });
        let q = quant.map(|(s, z)| {
            let (s, z) = (b.create_vector(&[s]), b.create_vector(&[z]));
            let t = b.start_table();
            b.push_slot_always::<WIPOffset<_>>(slot(2), s);
            b.push_slot_always::<WIPOffset<_>>(slot(3), z);
            b.end_table(t)
        });
        let shape = b.create_vector(shape);
        let name = b.create_string(&format!("t{i}"));
        let t = b.start_table();
        b.push_slot_always::<WIPOffset<_>>(slot(0), shape);
        b.push_slot::<i8>(slot(1), *ty, 0);
        b.push_slot::<u32>(slot(2), buffer.unwrap_or(0), 0);
        b.push_slot_always::<WIPOffset<_>>(slot(3), name);
        if let Some(q) = q {
            b.push_slot_always::<WIPOffset<_>>(slot(4), q);
        }
        fb_tensors.push(b.end_table(t));
    }
    let fb_ops: Vec<_> = ops
        .iter()
        .map(|(code, ins, outs)| {
            let (ins, outs) = (b.create_vector(ins), b.create_vector(outs));
            let t = b.start_table();
            b.push_slot::<u32>(slot(0), codes.iter().position(|c| c == code).unwrap() as u32, 0);
            b.push_slot_always::<WIPOffset<_>>(slot(1), ins);
            b.push_slot_always::<WIPOffset<_>>(slot(2), outs);
            b.end_table(t)
        })
        .collect();
    let (tv, ov) = (b.create_vector(&fb_tensors), b.create_vector(&fb_ops));
    let (iv, outv) = (b.create_vector(&[input]), b.create_vector(&[output]));
    let sg = b.start_table();
    b.push_slot_always::<WIPOffset<_>>(slot(0), tv);
    b.push_slot_always::<WIPOffset<_>>(slot(1), iv);
    b.push_slot_always::<WIPOffset<_>>(slot(2), outv);
    b.push_slot_always::<WIPOffset<_>>(slot(3), ov);
    let sg = b.end_table(sg);
    let sgs = b.create_vector(&[sg]);
    let bufs = b.create_vector(&buffers);
    let m = b.start_table();
    b.push_slot::<u32>(slot(0), 3, 0);
    b.push_slot_always::<WIPOffset<_>>(slot(1), code_vec);
    b.push_slot_always::<WIPOffset<_>>(slot(2), sgs);
    b.push_slot_always::<WIPOffset<_>>(slot(4), bufs);
    let m = b.end_table(m);
    b.finish(m, Some("TFL3"));
    b.finished_data().to_vec()
}

const F32: i8 = 0;
const INT32: i8 = 2;
const RESHAPE: i32 = 22;
const SOFTMAX: i32 = 25;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn hand_built_model_loads_and_runs() {
    // input -> SOFTMAX -> output: checks the builder itself.
    let bytes =
        build_model(&[T(&[1, 4], F32, None, None), T(&[1, 4], F32, None, None)], &[(SOFTMAX, &[0], &[1])], 0, 1);
    let mut m = Model::load(&bytes, &LoadOptions::default()).unwrap();
    let out = m.infer(&Tensor { shape: vec![1, 4], data: TensorData::Float32(vec![0.0; 4]) }).unwrap();
    assert_eq!(out.data, TensorData::Float32(vec![0.25; 4]));
}

/// A RESHAPE of a constant gave the constant an arena slot that nothing ever fills and whose
/// liveness ignored direct reads of the constant, so SOFTMAX(constant) got an output slot on top of
/// its input: `io` sliced out of bounds (a panic, a trap in wasm).
#[test]
fn reshape_of_a_constant_is_refused() {
    let c = Some(f32_bytes(&[1.0, 2.0, 3.0, 4.0]));
    let shape = Some(vec![4, 0, 0, 0]);
    let bytes = build_model(
        &[
            T(&[1, 4], F32, None, None),
            T(&[1, 4], F32, c, None),
            T(&[1], INT32, shape, None),
            T(&[4], F32, None, None),
            T(&[1, 4], F32, None, None),
        ],
        &[(RESHAPE, &[1, 2], &[3]), (SOFTMAX, &[1], &[4])],
        0,
        4,
    );
    let r = exercise_f32(&bytes);
    assert!(matches!(r, Err(Error::UnsupportedModel(_))), "{r:?}");
}

/// Loads and, if that works, runs a float model on zeros.
fn exercise_f32(bytes: &[u8]) -> Result<Tensor, Error> {
    let mut m = Model::load(bytes, &LoadOptions::default())?;
    let shape = m.info().input.shape.clone();
    let n = shape.iter().product::<u32>() as usize;
    m.infer(&Tensor { shape, data: TensorData::Float32(vec![0.0; n]) })
}

/// Sixteen live 256 MB float activations (PAD of a 1x1 input, summed at the end): the f32 arena
/// needs 2^30 elements, whose byte count `* 4` wrapped to 0 in wasm32's usize and passed the limit,
/// then `vec![0.0; 2^30]` trapped. Natively this only checks that the refusal stays TooLarge.
#[test]
fn arena_byte_count_is_too_large_not_wrapped() {
    const PAD: i32 = 34;
    const ADD: i32 = 0;
    let pads: Vec<u8> = [0i32, 0, 0, 8191, 0, 8191, 0, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let big: &'static [i32] = &[1, 8192, 8192, 1];
    let mut tensors = vec![T(&[1, 1, 1, 1], F32, None, None), T(&[4, 2], INT32, Some(pads), None)];
    let mut ops: Vec<(i32, Vec<i32>, Vec<i32>)> = Vec::new();
    for _ in 0..16 {
        tensors.push(T(big, F32, None, None));
        ops.push((PAD, vec![0, 1], vec![tensors.len() as i32 - 1]));
    }
    let mut acc = 2;
    for k in 3..18 {
        tensors.push(T(big, F32, None, None));
        ops.push((ADD, vec![acc, k], vec![tensors.len() as i32 - 1]));
        acc = tensors.len() as i32 - 1;
    }
    let ops: Vec<(i32, &[i32], &[i32])> = ops.iter().map(|(c, i, o)| (*c, &i[..], &o[..])).collect();
    let bytes = build_model(&tensors, &ops, 0, acc);
    let r = Model::load(&bytes, &LoadOptions::default());
    assert!(matches!(r, Err(Error::TooLarge(_))), "{:?}", r.map(|_| ()));
}

#[test]
fn out_size_refuses_windows_that_could_wrap() {
    use edge_classify::graph::operators::out_size;
    use edge_classify::graph::Padding;
    assert!(matches!(out_size(Padding::Same, 96, 3, 1, 1 << 20), Err(Error::UnsupportedModel(_))));
    assert!(matches!(out_size(Padding::Same, 96, 3, 1 << 20, 1), Err(Error::UnsupportedModel(_))));
    assert_eq!(out_size(Padding::Same, 96, 3, 2, 1), Ok(48));
    assert_eq!(out_size(Padding::Valid, 96, 3, 2, 2), Ok(46));
}
