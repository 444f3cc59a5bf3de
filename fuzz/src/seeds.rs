//! Seed inputs: what `cargo xtask fuzz --seed` writes into `fuzz/corpus/` before the corpora are
//! minimised, and the tiny model and image the targets themselves use.
//!
//! Models are MobileNet-shaped graphs small enough to mutate (every operator the executor runs, a few
//! hundred bytes of weights), written by our own TFLite writer at fp32, quantized by our quantizer to
//! int8 and int16, and re-encoded as a uint8 per-tensor file like the embedded model. The metadata seed
//! carries the TFLite Support metadata and label zip of a shared model. Image seeds are small crops of
//! the shared photos in each encoding and variant the decoders take. None of the shared files
//! themselves is committed (they are megabytes; a fuzzer mutates small inputs best).

use std::path::Path;
use std::sync::OnceLock;

use edge_classify::graph::{ConstData, DType, Graph, Node, Op, Padding, Precision, Quant, Tensor};
use edge_classify::kernels::Activation;
use edge_classify::quantize::{self, Calibration};
use edge_classify::tflite::write;

/// Named inputs, as they are written into a corpus directory.
pub type Inputs = Vec<(String, Vec<u8>)>;

/// A deterministic stream of small weights.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn tensor(name: &str, shape: &[usize], data: Option<ConstData>) -> Tensor {
    let dtype = match &data {
        Some(ConstData::I32(_)) => DType::I32,
        _ => DType::F32,
    };
    Tensor { name: name.into(), shape: shape.to_vec(), dtype, quant: None, data, from_uint8: false }
}

fn node(op: Op, inputs: &[usize], output: usize) -> Node {
    Node { op, inputs: inputs.iter().map(|&i| Some(i)).collect(), output }
}

fn f32s(v: Vec<f32>) -> Option<ConstData> {
    Some(ConstData::F32(v))
}

/// `x [1,8,8,3]` → CONV 3x3/2 relu6 → DEPTHWISE 3x3 relu6 → CONV 1x1 → ADD (residual) → AVERAGE_POOL
/// → RESHAPE → FULLY_CONNECTED → SOFTMAX `[1,3]`: one MobileNetV2 block and its head.
pub fn tiny_graph() -> &'static Graph {
    static G: OnceLock<Graph> = OnceLock::new();
    G.get_or_init(|| {
        let mut r = Lcg(1);
        let conv =
            |stride, padding, activation| Op::Conv2d { stride: [stride; 2], dilation: [1, 1], padding, activation };
        Graph {
            name: "tiny-mobilenet-block".into(),
            tensors: vec![
                tensor("x", &[1, 8, 8, 3], None),
                tensor("w1", &[4, 3, 3, 3], f32s(r.vec(108, 1.0))),
                tensor("b1", &[4], f32s(r.vec(4, 0.2))),
                tensor("a", &[1, 4, 4, 4], None),
                tensor("wd", &[1, 3, 3, 4], f32s(r.vec(36, 1.0))),
                tensor("bd", &[4], f32s(r.vec(4, 0.2))),
                tensor("b", &[1, 4, 4, 4], None),
                tensor("wp", &[4, 1, 1, 4], f32s(r.vec(16, 1.0))),
                tensor("bp", &[4], f32s(r.vec(4, 0.2))),
                tensor("c", &[1, 4, 4, 4], None),
                tensor("d", &[1, 4, 4, 4], None),
                tensor("e", &[1, 1, 1, 4], None),
                tensor("f", &[1, 4], None),
                tensor("wf", &[3, 4], f32s(r.vec(12, 2.0))),
                tensor("bf", &[3], f32s(r.vec(3, 0.2))),
                tensor("logits", &[1, 3], None),
                tensor("y", &[1, 3], None),
            ],
            nodes: vec![
                node(conv(2, Padding::Same, Activation::Relu6), &[0, 1, 2], 3),
                node(
                    Op::DepthwiseConv2d {
                        stride: [1, 1],
                        dilation: [1, 1],
                        padding: Padding::Same,
                        depth_multiplier: 1,
                        activation: Activation::Relu6,
                    },
                    &[3, 4, 5],
                    6,
                ),
                node(conv(1, Padding::Valid, Activation::None), &[6, 7, 8], 9),
                node(Op::Add { activation: Activation::None, pot_scale_int16: false }, &[3, 9], 10),
                node(
                    Op::AveragePool2d {
                        filter: [4, 4],
                        stride: [4, 4],
                        padding: Padding::Valid,
                        activation: Activation::None,
                    },
                    &[10],
                    11,
                ),
                node(Op::Reshape, &[11], 12),
                node(Op::FullyConnected { activation: Activation::None }, &[12, 13, 14], 15),
                node(Op::Softmax { beta: 1.0 }, &[15], 16),
            ],
            input: 0,
            output: 16,
            input_uint8: false,
            output_uint8: false,
        }
    })
}

/// `x [1,6,6,1]` → PAD → CONV 3x3 valid, dilated, relu → DEPTHWISE 3x3/2, multiplier 2 → MEAN →
/// FULLY_CONNECTED `[1,2]` logits (no softmax): the operators and options the first graph leaves out.
pub fn tiny_graph_b() -> Graph {
    let mut r = Lcg(2);
    Graph {
        name: "tiny-pad-mean".into(),
        tensors: vec![
            tensor("x", &[1, 6, 6, 1], None),
            tensor("paddings", &[4, 2], Some(ConstData::I32(vec![0, 0, 2, 2, 2, 2, 0, 0]))),
            tensor("p", &[1, 10, 10, 1], None),
            tensor("w1", &[2, 3, 3, 1], f32s(r.vec(18, 1.0))),
            tensor("b1", &[2], f32s(r.vec(2, 0.2))),
            tensor("a", &[1, 6, 6, 2], None),
            tensor("wd", &[1, 3, 3, 4], f32s(r.vec(36, 1.0))),
            tensor("bd", &[4], f32s(r.vec(4, 0.2))),
            tensor("b", &[1, 3, 3, 4], None),
            tensor("axes", &[2], Some(ConstData::I32(vec![1, 2]))),
            tensor("m", &[1, 4], None),
            tensor("wf", &[2, 4], f32s(r.vec(8, 2.0))),
            tensor("bf", &[2], f32s(r.vec(2, 0.2))),
            tensor("y", &[1, 2], None),
        ],
        nodes: vec![
            node(Op::Pad { before: [0, 2, 2, 0], after: [0, 2, 2, 0] }, &[0, 1], 2),
            node(
                Op::Conv2d { stride: [1, 1], dilation: [2, 2], padding: Padding::Valid, activation: Activation::Relu },
                &[2, 3, 4],
                5,
            ),
            node(
                Op::DepthwiseConv2d {
                    stride: [2, 2],
                    dilation: [1, 1],
                    padding: Padding::Same,
                    depth_multiplier: 2,
                    activation: Activation::None,
                },
                &[5, 6, 7],
                8,
            ),
            node(Op::MeanHw, &[8, 9], 10),
            node(Op::FullyConnected { activation: Activation::None }, &[10, 11, 12], 13),
        ],
        input: 0,
        output: 13,
        input_uint8: false,
        output_uint8: false,
    }
}

/// An 8x8 RGB gradient as PNG: the calibration image and the image the model targets classify.
pub fn calibration_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        let img =
            image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 32) as u8, (y * 32) as u8, ((x + y) * 16) as u8]));
        encode(&image::DynamicImage::ImageRgb8(img), image::ImageFormat::Png)
    })
}

fn quantized(g: &Graph, target: Precision) -> Graph {
    let cal = Calibration { images: vec![calibration_png().to_vec()], mean: None, std: None };
    quantize::quantize_graph(g, target, &cal, quantize::Options::default()).expect("the tiny graph quantizes")
}

/// The tiny graph quantized to int8 by our quantizer, as a file.
pub fn tiny_int8_model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| write::write(&quantized(tiny_graph(), Precision::Int8), "fuzz seed").expect("writes"))
}

/// An int8 graph re-encoded as TFLite's older uint8 scheme (per-tensor weights, every tensor
/// shifted by 128), the form of the embedded ImageNet model.
fn to_uint8(g: &Graph) -> Graph {
    let mut g = g.clone();
    for k in 0..g.nodes.len() {
        let n = &g.nodes[k];
        if !matches!(n.op, Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. }) {
            continue;
        }
        let (x, w, b) = (n.input(0), n.input(1), n.optional_input(2));
        let s_in = g.tensors[x].quant.as_ref().expect("quantized").scale();
        let wq = g.tensors[w].quant.clone().expect("quantized weights");
        let Some(ConstData::I8(q)) = g.tensors[w].data.clone() else { panic!("int8 weights") };
        let shape = g.tensors[w].shape.clone();
        let inner: usize = shape[wq.axis + 1..].iter().product();
        let channel = |i: usize| if wq.per_tensor() { 0 } else { (i / inner) % shape[wq.axis] };
        let real: Vec<f32> = q.iter().enumerate().map(|(i, &v)| wq.scales[channel(i)] * v as f32).collect();
        let s = real.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6) / 127.0;
        let t = &mut g.tensors[w];
        t.data = Some(ConstData::I8(real.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8).collect()));
        t.quant = Some(Quant { scales: vec![s], zero_points: vec![0], axis: 0 });
        if let Some(b) = b {
            let bq = g.tensors[b].quant.clone().expect("quantized bias");
            if let Some(ConstData::I32(v)) = &g.tensors[b].data {
                let c = |i: usize| if bq.per_tensor() { 0 } else { i };
                let v = v
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| (q as f64 * bq.scales[c(i)] as f64 / (s_in * s) as f64).round() as i32)
                    .collect();
                g.tensors[b].data = Some(ConstData::I32(v));
                g.tensors[b].quant = Some(Quant { scales: vec![s_in * s], zero_points: vec![0], axis: 0 });
            }
        }
    }
    for t in &mut g.tensors {
        t.from_uint8 = t.dtype == DType::I8;
    }
    g.input_uint8 = g.tensors[g.input].dtype == DType::I8;
    g.output_uint8 = g.tensors[g.output].dtype == DType::I8;
    g
}

/// Every tiny model, named.
pub fn models() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, g) in [("block", tiny_graph().clone()), ("padmean", tiny_graph_b())] {
        let write = |g: &Graph| write::write(g, "fuzz seed").expect("the seed graph writes");
        let file = |p: Precision| format!("{name}-{}.tflite", p.name());
        out.push((file(Precision::Fp32), write(&g)));
        let int8 = quantized(&g, Precision::Int8);
        out.push((file(Precision::Int8), write(&int8)));
        out.push((file(Precision::Int16), write(&quantized(&g, Precision::Int16))));
        out.push((format!("{name}-uint8.tflite"), write(&to_uint8(&int8))));
    }
    out
}

fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encoding a small image");
    out.into_inner()
}

fn jpeg(
    rgb: &image::RgbImage,
    gray: bool,
    sampling: jpeg_encoder::SamplingFactor,
    progressive: bool,
    restart: u16,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, 85);
    e.set_sampling_factor(sampling);
    e.set_progressive(progressive);
    if restart > 0 {
        e.set_restart_interval(restart);
    }
    let (w, h) = (rgb.width() as u16, rgb.height() as u16);
    if gray {
        let l = image::DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
        e.encode(l.as_raw(), w, h, jpeg_encoder::ColorType::Luma).expect("jpeg");
    } else {
        e.encode(rgb.as_raw(), w, h, jpeg_encoder::ColorType::Rgb).expect("jpeg");
    }
    out
}

/// A palette PNG (the `image` crate writes none).
fn png_indexed(rgb: &image::RgbImage) -> Vec<u8> {
    let mut palette: Vec<[u8; 3]> = Vec::new();
    let indices: Vec<u8> = rgb
        .pixels()
        .map(|p| {
            let c = [p[0] & 0xc0, p[1] & 0xc0, p[2] & 0xc0];
            let i = palette.iter().position(|q| *q == c).unwrap_or_else(|| {
                palette.push(c);
                palette.len() - 1
            });
            i as u8
        })
        .collect();
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, rgb.width(), rgb.height());
    e.set_color(png::ColorType::Indexed);
    e.set_depth(png::BitDepth::Eight);
    e.set_palette(palette.concat());
    let mut w = e.write_header().expect("png header");
    w.write_image_data(&indices).expect("png data");
    w.finish().expect("png end");
    out
}

/// Small crops of the shared photos, in every encoding and variant the decoders handle, plus the
/// calibration PNG and a truncated JPEG.
pub fn images(shared_images: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    use jpeg_encoder::SamplingFactor as S;
    let mut out = vec![("gradient.png".to_string(), calibration_png().to_vec())];
    for (photo, w, h) in [("grace_hopper.bmp", 17, 13), ("face.jpg", 16, 16), ("chelsea.png", 9, 23)] {
        let bytes = std::fs::read(shared_images.join(photo))?;
        let img = image::load_from_memory(&bytes).map_err(std::io::Error::other)?;
        let small = img.resize_exact(w, h, image::imageops::FilterType::Triangle);
        let stem = photo.split('.').next().unwrap_or(photo);
        let rgb = small.to_rgb8();
        use image::DynamicImage as D;
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("rgb.png", encode(&D::ImageRgb8(rgb.clone()), image::ImageFormat::Png)),
            ("rgba.png", encode(&D::ImageRgba8(small.to_rgba8()), image::ImageFormat::Png)),
            ("gray.png", encode(&D::ImageLuma8(small.to_luma8()), image::ImageFormat::Png)),
            ("graya.png", encode(&D::ImageLumaA8(small.to_luma_alpha8()), image::ImageFormat::Png)),
            ("rgb16.png", encode(&D::ImageRgb16(small.to_rgb16()), image::ImageFormat::Png)),
            ("indexed.png", png_indexed(&rgb)),
            ("rgb.bmp", encode(&D::ImageRgb8(rgb.clone()), image::ImageFormat::Bmp)),
            ("rgba.bmp", encode(&D::ImageRgba8(small.to_rgba8()), image::ImageFormat::Bmp)),
            ("420.jpg", jpeg(&rgb, false, S::R_4_2_0, false, 0)),
            ("444.jpg", jpeg(&rgb, false, S::R_4_4_4, false, 0)),
            ("422-restart.jpg", jpeg(&rgb, false, S::R_4_2_2, false, 1)),
            ("440.jpg", jpeg(&rgb, false, S::R_4_4_0, false, 0)),
            ("progressive-420.jpg", jpeg(&rgb, false, S::R_4_2_0, true, 0)),
            ("gray.jpg", jpeg(&rgb, true, S::R_4_4_4, false, 0)),
        ];
        for (variant, data) in variants {
            out.push((format!("{stem}-{variant}"), data));
        }
    }
    let cut = jpeg(&image::load_from_memory(calibration_png()).expect("png").to_rgb8(), false, S::R_4_2_0, false, 0);
    out.push(("truncated.jpg".into(), cut[..cut.len() * 2 / 3].to_vec()));
    Ok(out)
}

/// The metadata target's inputs, `[u16 length][metadata flatbuffer][zip]`, from a shared model's
/// TFLITE_METADATA and label file: with all of its labels (a count the tiny model refuses) and with
/// as many as the tiny model has classes (it loads).
pub fn metadata_seeds(model: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Ok(m) = edge_classify::tflite::read(model) else { return Vec::new() };
    let Some(entry) = m.metadata().and_then(|v| v.iter().find(|e| e.name() == Some("TFLITE_METADATA"))) else {
        return Vec::new();
    };
    let Some(meta) = m.buffers().and_then(|b| b.get(entry.buffer() as usize).data()).map(|d| d.bytes()) else {
        return Vec::new();
    };
    let Ok(Some(parsed)) = edge_classify::tflite::metadata::read(model) else { return Vec::new() };
    let (Some(file), Some(labels)) = (parsed.label_file, parsed.labels) else { return Vec::new() };
    let Ok(len) = u16::try_from(meta.len()) else { return Vec::new() };
    let base = write::write_with_metadata(tiny_graph(), "fuzz", &[("TFLITE_METADATA", meta)]).expect("writes").len();
    let mut out = Vec::new();
    for (name, n) in [("all-labels", labels.len()), ("three-labels", 3)] {
        let mut seed = len.to_le_bytes().to_vec();
        seed.extend_from_slice(meta);
        seed.extend(write::associated_file_zip(base, &file, labels[..n].join("\n").as_bytes()));
        out.push((name.to_string(), seed));
    }
    out
}

/// Requests for the HTTP target: every route, good and bad queries, bodies from the image seeds.
pub fn requests(images: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let heads =
        ["GET /", "DELETE /classify", "GET /nope", "POST /classify?top=0", "POST /classify?precision=int4&top=2"];
    for (i, head) in heads.iter().enumerate() {
        out.push((format!("head-{i}"), format!("{head}\n").into_bytes()));
    }
    // The body limit: a length declared over it, and 1 KiB chunks sent until just past it.
    let limit = classify_http::contract::MAX_BODY_BYTES;
    let over = [format!("length={}", limit + 1), format!("chunked repeat={}", limit / 1024 + 1)];
    for (i, options) in over.iter().enumerate() {
        let mut r = format!("POST /classify?top=2 {options}\n").into_bytes();
        r.extend_from_slice(&[0xff; 1024]);
        out.push((format!("over-limit-{i}"), r));
    }
    let queries = ["", "?top=3", "?precision=int8", "?precision=int16&top=1", "?precision=fp32&top=4000000000"];
    for ((name, body), query) in images.iter().step_by(5).zip(queries.iter().cycle()) {
        let mut r = format!("POST /classify{query}\n").into_bytes();
        r.extend_from_slice(body);
        out.push((format!("classify-{name}"), r));
    }
    out
}

/// Inputs for the wasi_nn target (its layout is in `targets.rs`): every seed model at its own
/// precision and each conversion, fed a well-formed FP32 tensor (NHWC and NCHW) and U8 pixels, plus
/// tensors of the wrong type, dimensions and length.
pub fn nn_inputs() -> Inputs {
    use edge_classify::model::{LoadOptions, Model};
    let mut out = Vec::new();
    for (m, (name, file)) in models().iter().enumerate() {
        let shape = Model::load(file, &LoadOptions::default()).expect("a seed model loads").info().input.shape.clone();
        let nchw = match shape[..] {
            [n, h, w, c] => vec![n, c, h, w],
            _ => shape.clone(),
        };
        // (options mode, text), then (type index, cycle the bytes, dimensions, bytes): see `targets::wasi_nn`.
        let options: [(u8, &[u8]); 4] = [(0, b""), (1, b""), (2, b"\x01"), (3, b"precision=int8\n")];
        let ones_and_halves: &[u8] = &[0, 0, 0x80, 0x3f, 0, 0, 0, 0xbf];
        let tensors: [(u8, bool, &[u32], &[u8]); 6] = [
            (1, true, &shape, ones_and_halves),
            (1, true, &nchw, ones_and_halves),
            (4, true, &shape, &[0, 37, 200, 255]),
            (0, true, &shape, &[0, 0x3c]),
            (1, true, &shape[1..], ones_and_halves),
            (1, false, &shape, ones_and_halves),
        ];
        for (o, (mode, text)) in options.iter().enumerate() {
            for (t, (ty, cycle, dims, bytes)) in tensors.iter().enumerate() {
                let mut input = vec![m as u8, mode | (*cycle as u8) << 2 | ty << 3];
                input.extend_from_slice(&(text.len() as u16).to_le_bytes());
                input.extend_from_slice(text);
                input.push(dims.len() as u8);
                for &d in dims.iter() {
                    input.extend_from_slice(&(d as u16).to_le_bytes());
                }
                input.extend_from_slice(bytes);
                out.push((format!("{name}-options{o}-tensor{t}"), input));
            }
        }
    }
    out
}
