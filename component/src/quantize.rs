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
use crate::graph::convert::{self, Range};
use crate::graph::{self, ConstData, DType, Graph, Op, Precision};
use crate::image;
use crate::plan::{Plan, Step};
use crate::tflite::write;

/// Images to calibrate on and their pixel normalization (`real = (pixel − mean) / std`; none = the
/// defaults `load` uses).
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
}

impl Default for Options {
    fn default() -> Self {
        Options { ranges: RangeMethod::Mse, bias_correction: true }
    }
}

const BINS: usize = 2048;

/// `quantize` of the WIT interface, with the default calibration options.
pub fn quantize(tflite: &[u8], target: Precision, cal: &Calibration) -> Result<Vec<u8>> {
    quantize_with(tflite, target, cal, Options::default())
}

pub fn quantize_with(tflite: &[u8], target: Precision, cal: &Calibration, opts: Options) -> Result<Vec<u8>> {
    let g = graph::lower(tflite)?;
    let out = quantize_graph(&g, target, cal, opts)?;
    write::write(&out, &format!("edge-classify quantizer: {target:?}"))
}

/// The graph the quantizer would write: planned before it is returned, so a graph the executor
/// would refuse (found by fuzzing: an int16 source whose SOFTMAX output scale TFLite rejects, passed
/// through unchanged at its own precision) is an error here rather than a file that does not load.
pub fn quantize_graph(g: &Graph, target: Precision, cal: &Calibration, opts: Options) -> Result<Graph> {
    let out = quantize_unchecked(g, target, cal, opts)?;
    Plan::new(&out)?;
    Ok(out)
}

fn quantize_unchecked(g: &Graph, target: Precision, cal: &Calibration, opts: Options) -> Result<Graph> {
    if target == Precision::Fp32 || g.precision() != Precision::Fp32 {
        return convert::convert(g, target);
    }
    if cal.images.is_empty() {
        bail!(InvalidInput, "quantizing a float model needs calibration images (none given)");
    }
    let stats = calibrate(g, cal)?;
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
    let (mean, std) = norm(cal)?;
    let (a, b) = ((0.0 - mean) / std, (255.0 - mean) / std);
    let mut ranges = ranges;
    ranges[g.input] = Some((a.min(b), a.max(b)));
    if opts.bias_correction {
        correct_biases(&mut g, &stats)?;
    }
    convert::quantize(&g, &ranges, target)
}

fn norm(cal: &Calibration) -> Result<(f32, f32)> {
    let mean = cal.mean.unwrap_or(crate::model::DEFAULT_MEAN);
    let std = cal.std.unwrap_or(crate::model::DEFAULT_STD);
    if !mean.is_finite() || !std.is_finite() || std == 0.0 {
        bail!(InvalidInput, "calibration mean {mean} / std {std} must be finite, std non-zero");
    }
    Ok((mean, std))
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

/// Runs the float graph on every calibration image (twice: ranges, then histograms) and returns
/// statistics for every activation tensor.
pub fn calibrate(g: &Graph, cal: &Calibration) -> Result<Vec<Option<Stats>>> {
    let (mean, std) = norm(cal)?;
    let plan = Plan::new(g)?;
    let mut arenas = plan.arenas();
    let shape = &g.tensors[g.input].shape;
    let (h, w, c) = match shape[..] {
        [1, h, w, c @ (1 | 3)] => (h as u32, w as u32, c as u32),
        _ => bail!(InvalidInput, "calibration needs a [1, height, width, 1 or 3] image input, not {shape:?}"),
    };
    // Step k writes the output of the k-th non-RESHAPE node (RESHAPE outputs alias their input).
    let producers: Vec<usize> = g.nodes.iter().filter(|n| n.op != Op::Reshape).map(|n| n.output).collect();
    if producers.len() != plan.steps.len() {
        bail!(UnsupportedModel, "plan and graph disagree on the number of steps");
    }
    let inputs: Vec<Vec<f32>> = cal
        .images
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let px = image::decode_resize(bytes, w, h, c)
                .map_err(|e| crate::Error::InvalidImage(format!("calibration image {i}: {e}")))?;
            Ok(px.iter().map(|&p| image::normalize(p, mean, std)).collect())
        })
        .collect::<Result<_>>()?;

    let n = g.tensors.len();
    let mut stats: Vec<Option<Stats>> = vec![None; n];
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut counts = vec![0u64; n];
    for pass in 0..2 {
        for input in &inputs {
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
        let e = quantize(&bytes, Precision::Int8, &Calibration::default()).unwrap_err();
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
}
