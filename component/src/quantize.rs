//! Post-training quantizer: a TFLite model in, a TFLite model out at the target precision.
//!
//! * quantized input (or `target = fp32`): the load-time conversions of [`crate::graph::convert`],
//!   written back as a file; no calibration needed.
//! * float input → int8 / 16x8: calibrate on images, then quantize:
//!   1. run the float model on every calibration image and record, for every activation tensor, its
//!      min/max and per-channel means (pass 1), then a histogram over [min, max] (pass 2);
//!   2. choose each tensor's clipping range as the one that minimises the expected squared error
//!      (clipping error + uniform rounding noise) over that histogram, instead of plain min/max, which
//!      a few outliers in 20 images stretch;
//!   3. per-channel symmetric int8 weights (the scheme TFLite's kernels and converter use);
//!   4. bias correction: rounding weights shifts every output channel's mean by `ΔW · E[x]`; subtract
//!      that expected shift from the float bias before it is quantized.
//!
//! Deterministic: no hashing, no threads, fixed iteration order, so the same input and images give the
//! same bytes (the suite re-quantizes and compares the sha256 the golden script recorded).

use crate::error::{bail, Result};
pub use crate::graph::convert::Int16Tail;
use crate::graph::convert::{self, Range};
use crate::graph::{self, ConstData, DType, Graph, Op, Precision};
use crate::input::{Pipeline, Pixels};
use crate::plan::{Plan, Step};
use crate::tflite::{metadata, write};
use crate::types::{ElementType, Tensor, TensorData, TensorInfo};

/// Images to calibrate on and their pixel normalization (`real = (pixel − mean) / std`; none = what
/// `load` would use for the file: its metadata's normalization, else 127.5 / 127.5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    pub images: Vec<Vec<u8>>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
}

/// How the clipping range of an activation is chosen from its calibration values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMethod {
    MinMax,
    /// Minimum expected squared error over the histogram.
    Mse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub ranges: RangeMethod,
    pub bias_correction: bool,
    /// How a 16x8 output ends where the model ends in SOFTMAX (default: DEQUANTIZE → float SOFTMAX).
    pub int16_tail: Int16Tail,
}

impl Default for Options {
    fn default() -> Self {
        Options { ranges: RangeMethod::Mse, bias_correction: true, int16_tail: Int16Tail::default() }
    }
}

const BINS: usize = 2048;

/// `quantize` of the WIT interface: a TFLite file in, one at `target` out, with the default
/// calibration options.
pub fn quantize_file(tflite: &[u8], target: Precision, cal: &Calibration) -> Result<Vec<u8>> {
    quantize_file_with(tflite, target, cal, Options::default())
}

pub fn quantize_file_with(tflite: &[u8], target: Precision, cal: &Calibration, opts: Options) -> Result<Vec<u8>> {
    let g = graph::lower(tflite)?;
    let pixels = calibration_pixels(&g, metadata_normalization(tflite)?.as_ref(), cal)?;
    let out = quantize_graph_with(&g, &pixels, target, cal, opts)?;
    write::write(&out, &format!("edge-classify quantizer: {target:?}"))
}

/// The file's metadata normalization (mean, std per channel), read as `load` reads it (unreadable
/// metadata is absent), so calibration follows the rule `classify` will.
fn metadata_normalization(tflite: &[u8]) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    let meta = metadata::read_lenient(tflite)?.0.unwrap_or_default();
    Ok(meta.normalization.map(|n| (n.mean, n.std)))
}

/// The pixel rule calibration feeds `g` by: the one `load` picks for a float file with this
/// metadata normalization and the calibration's mean / std.
fn calibration_pixels(g: &Graph, metadata: Option<&(Vec<f32>, Vec<f32>)>, cal: &Calibration) -> Result<Pixels> {
    let channels = g.tensors[g.input].shape.last().copied().unwrap_or(1).max(1);
    let norm = metadata.map(|(m, s)| (&m[..], &s[..]));
    Pixels::choose(ElementType::Float32, None, cal.mean, cal.std, norm, channels)
}

/// The graph the quantizer would write (for a float `g`, calibrated with no metadata normalization:
/// [`quantize_file`] reads the file's).
pub fn quantize_graph(g: &Graph, target: Precision, cal: &Calibration, opts: Options) -> Result<Graph> {
    let pixels = calibration_pixels(g, None, cal)?;
    quantize_graph_with(g, &pixels, target, cal, opts)
}

/// Planned before it is returned, so a graph the executor would refuse (found by fuzzing: an int16
/// source whose SOFTMAX output scale TFLite rejects, passed through unchanged at its own precision)
/// is an error here rather than a file that does not load.
fn quantize_graph_with(
    g: &Graph,
    pixels: &Pixels,
    target: Precision,
    cal: &Calibration,
    opts: Options,
) -> Result<Graph> {
    let out = quantize_unchecked(g, pixels, target, cal, opts)?;
    Plan::new(&out)?;
    Ok(out)
}

fn quantize_unchecked(
    g: &Graph,
    pixels: &Pixels,
    target: Precision,
    cal: &Calibration,
    opts: Options,
) -> Result<Graph> {
    if target == Precision::Fp32 || g.precision() != Precision::Fp32 {
        return convert::convert_with(g, target, opts.int16_tail);
    }
    if cal.images.is_empty() {
        bail!(InvalidInput, "quantizing a float model needs calibration images (none given)");
    }
    let inputs = calibration_inputs(g, pixels, &cal.images)?;
    let stats = calibrate(g, &inputs)?;
    let levels = if target == Precision::Int8 { 256.0 } else { 65536.0 };
    let ranges: Vec<Option<Range>> = stats
        .iter()
        .map(|s| {
            s.as_ref().map(|s| match opts.ranges {
                RangeMethod::MinMax => (s.min, s.max),
                RangeMethod::Mse => s.mse_range(levels, target == Precision::Int16),
            })
        })
        .collect();
    let mut g = g.clone();
    // The input range is what normalization can produce, not what 20 images happened to contain.
    let channels = g.tensors[g.input].shape.last().copied().unwrap_or(1).max(1);
    let mut ranges = ranges;
    ranges[g.input] = Some(pixels.real_range(channels));
    if opts.bias_correction {
        correct_biases(&mut g, &stats)?;
    }
    let mut out = convert::quantize_with_ranges(&g, &ranges, target)?;
    if target == Precision::Int16 && opts.int16_tail == Int16Tail::FloatSoftmax {
        convert::float_softmax_tail(&mut out);
    }
    Ok(out)
}

/// The float input tensors calibration runs `g` on: each image as `classify` would feed the float
/// model with this pixel rule (`crate::input`, the one path into a model).
pub fn calibration_inputs(g: &Graph, pixels: &Pixels, images: &[Vec<u8>]) -> Result<Vec<Vec<f32>>> {
    let info = TensorInfo::of(g, g.input, g.input_uint8)?;
    if info.element != ElementType::Float32 {
        bail!(UnsupportedModel, "calibration runs float graphs only");
    }
    let pipeline = Pipeline { rule: pixels, file: &info, exec: &info };
    pipeline.image_size().map_err(|_| {
        crate::Error::InvalidInput(format!(
            "calibration needs a [1, height, width, 1 or 3] image input, not {:?}",
            info.shape
        ))
    })?;
    images
        .iter()
        .enumerate()
        .map(|(i, bytes)| match pipeline.from_image(bytes) {
            Ok(Tensor { data: TensorData::Float32(v), .. }) => Ok(v),
            Ok(_) => unreachable!("a float input builds float tensors"),
            Err(e) => Err(crate::Error::InvalidImage(format!("calibration image {i}: {e}"))),
        })
        .collect()
}

/// [`calibration_inputs`] for a file, with the pixel rule [`quantize_file`] calibrates it by.
pub fn calibration_inputs_of_file(tflite: &[u8], cal: &Calibration) -> Result<Vec<Vec<f32>>> {
    let g = graph::lower(tflite)?;
    let pixels = calibration_pixels(&g, metadata_normalization(tflite)?.as_ref(), cal)?;
    calibration_inputs(&g, &pixels, &cal.images)
}

/// What calibration saw of one activation tensor.
#[derive(Debug, Clone)]
pub struct Stats {
    pub min: f32,
    pub max: f32,
    /// Mean per channel (last dimension).
    pub channel_mean: Vec<f64>,
    pub histogram: Vec<u64>,
}

impl Stats {
    fn bin_center(&self, i: usize) -> f64 {
        let w = (self.max as f64 - self.min as f64) / BINS as f64;
        self.min as f64 + (i as f64 + 0.5) * w
    }

    /// Expected squared error of quantizing these values to `levels` steps over `[lo, hi]`.
    fn error(&self, lo: f64, hi: f64, levels: f64) -> f64 {
        let step = (hi - lo) / (levels - 1.0);
        let noise = step * step / 12.0;
        let mut e = 0.0;
        for (i, &n) in self.histogram.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let v = self.bin_center(i);
            let d = if v < lo {
                (lo - v) * (lo - v)
            } else if v > hi {
                (v - hi) * (v - hi)
            } else {
                noise
            };
            e += n as f64 * d;
        }
        e
    }

    /// The clipping range with least expected error: each end shrunk towards zero independently
    /// (coordinate search, twice), zero always inside.
    fn mse_range(&self, levels: f64, symmetric: bool) -> Range {
        let (mn, mx) = (self.min.min(0.0) as f64, self.max.max(0.0) as f64);
        if mx - mn <= 0.0 {
            return (mn as f32, mx as f32);
        }
        let fractions: Vec<f64> = (0..=80).map(|k| 1.0 - k as f64 * 0.01).collect();
        if symmetric {
            let m = mn.abs().max(mx);
            let best = fractions
                .iter()
                .map(|&f| (self.error(-m * f, m * f, levels), f))
                .fold((f64::INFINITY, 1.0), |a, b| if b.0 < a.0 { b } else { a });
            return ((-m * best.1) as f32, (m * best.1) as f32);
        }
        let (mut fl, mut fh) = (1.0, 1.0);
        for _ in 0..2 {
            fh = best_fraction(&fractions, |f| self.error(mn * fl, mx * f, levels));
            fl = best_fraction(&fractions, |f| self.error(mn * f, mx * fh, levels));
        }
        ((mn * fl) as f32, (mx * fh) as f32)
    }
}

/// The fraction with the least error; ties keep the larger (earlier) fraction, i.e. less clipping.
fn best_fraction(fractions: &[f64], error: impl Fn(f64) -> f64) -> f64 {
    let mut best = (f64::INFINITY, 1.0);
    for &f in fractions {
        let e = error(f);
        if e < best.0 {
            best = (e, f);
        }
    }
    best.1
}

/// Runs the float graph on every calibration input (twice: ranges, then histograms) and returns
/// statistics for every activation tensor.
pub fn calibrate(g: &Graph, inputs: &[Vec<f32>]) -> Result<Vec<Option<Stats>>> {
    let plan = Plan::new(g)?;
    let mut arenas = plan.arenas();
    // Step k writes the output of the k-th non-RESHAPE node (RESHAPE outputs alias their input).
    let producers: Vec<usize> = g.nodes.iter().filter(|n| n.op != Op::Reshape).map(|n| n.output).collect();
    if producers.len() != plan.steps.len() {
        bail!(UnsupportedModel, "plan and graph disagree on the number of steps");
    }

    let n = g.tensors.len();
    let mut stats: Vec<Option<Stats>> = vec![None; n];
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut counts = vec![0u64; n];
    for pass in 0..2 {
        for input in inputs {
            let slot = plan.input.slot;
            arenas.f32[slot.range()].copy_from_slice(input);
            let mut observe = |t: usize, values: &[f32]| {
                let channels = *g.tensors[t].shape.last().unwrap_or(&1).max(&1);
                if pass == 0 {
                    let s = stats[t].get_or_insert_with(|| Stats {
                        min: f32::INFINITY,
                        max: f32::NEG_INFINITY,
                        channel_mean: Vec::new(),
                        histogram: vec![0; BINS],
                    });
                    let sum = &mut sums[t];
                    sum.resize(channels, 0.0);
                    for (i, &v) in values.iter().enumerate() {
                        s.min = s.min.min(v);
                        s.max = s.max.max(v);
                        sum[i % channels] += v as f64;
                    }
                    counts[t] += (values.len() / channels) as u64;
                } else if let Some(s) = &mut stats[t] {
                    let (lo, width) = (s.min as f64, (s.max as f64 - s.min as f64) / BINS as f64);
                    for &v in values {
                        let b = if width > 0.0 { ((v as f64 - lo) / width) as usize } else { 0 };
                        s.histogram[b.min(BINS - 1)] += 1;
                    }
                }
            };
            observe(g.input, input);
            for (k, step) in plan.steps.iter().enumerate() {
                plan.run_steps(&mut arenas, k..k + 1);
                let place = step.output();
                if place.dtype != DType::F32 {
                    bail!(UnsupportedModel, "calibration runs float graphs only");
                }
                if let Some(t) = matches!(step, Step::F32(_)).then_some(producers[k]) {
                    observe(t, &arenas.f32[place.slot.range()]);
                }
            }
        }
    }
    for (t, s) in stats.iter_mut().enumerate() {
        if let Some(s) = s {
            if !(s.min.is_finite() && s.max.is_finite()) {
                bail!(InvalidInput, "tensor {} saw non-finite values during calibration", g.tensors[t].name);
            }
            s.channel_mean = sums[t].iter().map(|&x| x / counts[t].max(1) as f64).collect();
        }
    }
    // RESHAPE outputs are their input's values.
    for node in &g.nodes {
        if node.op == Op::Reshape {
            stats[node.output] = stats[node.input(0)].clone();
        }
    }
    Ok(stats)
}

/// Folds the expected output shift of weight rounding, `Σ ΔW · E[x]`, into each float bias.
fn correct_biases(g: &mut Graph, stats: &[Option<Stats>]) -> Result<()> {
    let nodes = g.nodes.clone();
    for n in &nodes {
        let depthwise = matches!(n.op, Op::DepthwiseConv2d { .. });
        if !matches!(n.op, Op::Conv2d { .. } | Op::FullyConnected { .. }) && !depthwise {
            continue;
        }
        let Some(b) = n.optional_input(2) else { continue };
        let Some(s) = &stats[n.input(0)] else { continue };
        let f = &g.tensors[n.input(1)];
        let Some(ConstData::F32(w)) = &f.data else { continue };
        let axis = if depthwise { 3 } else { 0 };
        let (q, scales) = convert::quantize_weights(w, &f.shape, axis);
        let oc = f.shape[axis];
        let in_c = s.channel_mean.len();
        let mut shift = vec![0f64; oc];
        // Filters: CONV [oc, kh, kw, ic], DEPTHWISE [1, kh, kw, oc] (input channel = oc / multiplier),
        // FC [oc, depth] (depth a multiple of the input's channels).
        let inner = f.shape[1..].iter().product::<usize>();
        for (i, (&wv, &qv)) in w.iter().zip(&q).enumerate() {
            let (o, x_c) = if depthwise {
                let o = i % oc;
                (o, o / (oc / in_c).max(1))
            } else {
                (i / inner, (i % inner) % in_c)
            };
            let dw = qv as f64 * scales[o] as f64 - wv as f64;
            shift[o] += dw * s.channel_mean.get(x_c).copied().unwrap_or(0.0);
        }
        if let Some(ConstData::F32(bias)) = &mut g.tensors[b].data {
            for (v, d) in bias.iter_mut().zip(&shift) {
                *v = (*v as f64 - d) as f32;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_model_without_images_is_invalid_input() {
        let path =
            format!("{}/../../shared/models/dog_breeds_mobilenet_v2_160_float.tflite", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let e = quantize_file(&bytes, Precision::Int8, &Calibration::default()).unwrap_err();
        assert!(matches!(e, crate::Error::InvalidInput(_)), "{e}");
    }

    #[test]
    fn mse_range_clips_a_lone_outlier_but_not_a_uniform_spread() {
        let mut s = Stats { min: 0.0, max: 100.0, channel_mean: vec![], histogram: vec![0; BINS] };
        // 10^6 values spread over [0, 1], one at 100.
        for i in 0..BINS / 100 {
            s.histogram[i] = 1_000_000 / (BINS as u64 / 100);
        }
        s.histogram[BINS - 1] = 1;
        let (_, hi) = s.mse_range(256.0, false);
        assert!(hi < 50.0, "{hi}");
        let mut u = Stats { min: 0.0, max: 1.0, channel_mean: vec![], histogram: vec![1000; BINS] };
        u.histogram[0] = 1000;
        let (_, hi) = u.mse_range(256.0, false);
        assert!(hi > 0.95, "{hi}");
    }

    /// The dog-breed float model with the ImageNet file's TFLite Support metadata, its two 127.5
    /// normalization values patched to 2 and 64 (one becomes the mean, the other the std: either
    /// way not the default), and the dog labels under the metadata's label file name.
    fn float_model_with_metadata_normalization() -> (Vec<u8>, (Vec<f32>, Vec<f32>)) {
        let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/");
        let imagenet = std::fs::read(format!("{models}mobilenet_v2_1.0_224_quant.tflite")).unwrap();
        let m = crate::tflite::read(&imagenet).unwrap();
        let entry = m.metadata().unwrap().iter().find(|e| e.name() == Some("TFLITE_METADATA")).unwrap();
        let mut meta = m.buffers().unwrap().get(entry.buffer() as usize).data().unwrap().bytes().to_vec();
        let at: Vec<usize> = (0..meta.len() - 3).filter(|&i| meta[i..i + 4] == 127.5f32.to_le_bytes()).collect();
        assert_eq!(at.len(), 2, "the mean and the std, 127.5 each");
        meta[at[0]..at[0] + 4].copy_from_slice(&2.0f32.to_le_bytes());
        meta[at[1]..at[1] + 4].copy_from_slice(&64.0f32.to_le_bytes());
        let dog = std::fs::read(format!("{models}dog_breeds_mobilenet_v2_160_float.tflite")).unwrap();
        let mut file =
            write::write_with_metadata(&graph::lower(&dog).unwrap(), "test", &[("TFLITE_METADATA", &meta)]).unwrap();
        let labels = std::fs::read(format!("{models}dog_breeds_labels.txt")).unwrap();
        file.extend(write::associated_file_zip(file.len(), "imagenet_labels.txt", &labels));
        let n = metadata::read(&file).unwrap().unwrap().normalization.unwrap();
        assert!([(vec![2.0], vec![64.0]), (vec![64.0], vec![2.0])].contains(&(n.mean.clone(), n.std.clone())));
        (file, (n.mean, n.std))
    }

    /// Calibration sees exactly the tensors `classify` feeds the float model: its metadata's
    /// normalization, not the 127.5 default (which an earlier calibration used, quantizing such
    /// models for inputs they never get); the caller's mean / std win over both, as in `load`.
    #[test]
    fn calibration_feeds_what_classify_feeds() {
        let (file, (mean, std)) = float_model_with_metadata_normalization();
        let images: Vec<Vec<u8>> = ["chelsea.png", "hot_dog.jpg", "bird.bmp"]
            .iter()
            .map(|f| std::fs::read(format!("{}/../../shared/images/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap())
            .collect();
        for (cal_mean, cal_std) in [(None, None), (Some(100.0), None), (Some(0.0), Some(255.0))] {
            let cal = Calibration { images: images.clone(), mean: cal_mean, std: cal_std };
            let inputs = calibration_inputs_of_file(&file, &cal).unwrap();
            let options = crate::model::LoadOptions { mean: cal_mean, std: cal_std, ..Default::default() };
            let model = crate::model::Model::load(&file, &options).unwrap();
            if cal_mean.is_none() {
                assert_eq!(model.pixels(), &Pixels::Normalize { mean: mean.clone(), std: std.clone() });
            }
            for (image, input) in images.iter().zip(&inputs) {
                let fed = model.input_tensor(image).unwrap();
                assert_eq!(fed.data, TensorData::Float32(input.clone()), "{cal_mean:?} / {cal_std:?}");
            }
        }
        // And the default rule would have fed other numbers: the check above can fail.
        let default = Pixels::choose(ElementType::Float32, None, None, None, None, 3).unwrap();
        assert_ne!(default.real(200, 0), Pixels::Normalize { mean, std }.real(200, 0));
    }
}
