//! int8 kernels — also the kernels of uint8 models, executed as int8 (every uint8 value `v` stored as
//! `v − 128`, zero points `zp − 128`, weights included).
//!
//! Each op mirrors a TFLite `kReference` path (noted per item). The uint8 → int8 shift is exact by
//! itself for CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED accumulation (`(x − zp_x)(w − zp_w)` does not
//! change), ADD, SOFTMAX, MEAN, QUANTIZE (requantize) and PAD; it is *not* exact for
//! * the CONV_2D / DEPTHWISE_CONV_2D multiplier: uint8 models take TFLite's legacy per-tensor
//!   derivation (`GetQuantizedConvolutionMultipler`: `s_in · s_w` multiplied in float) — pass
//!   `from_uint8 = true` to [`ConvParams::prepare`];
//! * AVERAGE_POOL_2D rounding: the uint8 reference rounds `(sum + n/2) / n` on non-negative sums, the
//!   int8 one rounds halves away from zero — pass `uint8_rounding = true` to [`AvgPoolParams::prepare`].

use super::generic::{self, AddRescale, FcRequant, MacStage, QInt};
use super::{Activation, PoolGeom, TensorQuant};
use crate::kernels::fixedpoint::{
    activation_range_quantized, calculate_input_radius, fixed, multiply_by_quantized_multiplier_greater_than_one,
    preprocess_softmax_scaling, rounding_divide_by_pot, saturating_rounding_doubling_high_mul, QuantizedMultiplier,
};

const QMIN: i32 = i8::MIN as i32;
const QMAX: i32 = i8::MAX as i32;

/// CONV_2D and DEPTHWISE_CONV_2D: `acc = Σ (w + filter_offset)(x + input_offset)`, `+ bias`,
/// `MultiplyByQuantizedMultiplier` per output channel, `+ output_offset`, clamp.
///
/// Mirrors `reference_integer_ops::ConvPerChannel` / `DepthwiseConvPerChannel` (int8) and
/// `reference_ops::Conv` / `DepthwiseConv` (uint8; the depthwise one with `kAwayFromZero` rounding, which
/// is plain `MultiplyByQuantizedMultiplier`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvParams {
    /// `−zp_in`.
    pub input_offset: i32,
    /// `−zp_w` (0 for int8 per-channel weights).
    pub filter_offset: i32,
    /// `zp_out`.
    pub output_offset: i32,
    /// One per output channel, or a single one shared by all channels.
    pub multipliers: Vec<QuantizedMultiplier>,
    pub act_min: i32,
    pub act_max: i32,
}

/// DEPTHWISE_CONV_2D has the same parameters as CONV_2D.
pub type DepthwiseConvParams = ConvParams;

impl ConvParams {
    /// `PopulateConvolutionQuantizationParams`: with `from_uint8 == false` (int8 model) one multiplier
    /// per filter scale from `(double)s_in · (double)s_w / (double)s_out` (a single filter scale is the
    /// per-tensor case); with `from_uint8 == true` (uint8 model) TFLite uses the legacy scalar multiplier
    /// `(double)(s_in · s_w) / (double)s_out` — product in **float** — from `filter_scales[0]`.
    /// Activation range from `CalculateActivationRangeQuantized` over `[-128, 127]`.
    pub fn prepare(
        input: TensorQuant,
        filter_scales: &[f32],
        filter_zero_point: i32,
        output: TensorQuant,
        activation: Activation,
        from_uint8: bool,
    ) -> Self {
        let multipliers = if from_uint8 {
            let w = filter_scales.first().copied().unwrap_or(0.0);
            vec![QuantizedMultiplier::new(f64::from(input.scale * w) / f64::from(output.scale))]
        } else {
            generic::conv_multipliers(input, filter_scales, output)
        };
        let (act_min, act_max) = activation_range_quantized(activation, output.scale, output.zero_point, QMIN, QMAX);
        Self {
            input_offset: -input.zero_point,
            filter_offset: -filter_zero_point,
            output_offset: output.zero_point,
            multipliers,
            act_min,
            act_max,
        }
    }
}

impl MacStage for ConvParams {
    type Act = i8;
    type Weight = i8;
    type Bias = i32;
    type Acc = i32;

    #[inline]
    fn zero(&self) -> i32 {
        0
    }

    #[inline]
    fn mac(&self, acc: i32, x: i8, w: i8) -> i32 {
        acc.wrapping_add((i32::from(w) + self.filter_offset) * (i32::from(x) + self.input_offset))
    }

    #[inline]
    fn finish(&self, acc: i32, bias: Option<i32>, ch: usize) -> i8 {
        let acc = acc.wrapping_add(bias.unwrap_or(0));
        let scaled = generic::per_channel(&self.multipliers, ch).apply(acc).wrapping_add(self.output_offset);
        scaled.clamp(self.act_min, self.act_max) as i8
    }
}

/// FULLY_CONNECTED: `acc = Σ (w + filter_offset)(x + input_offset) + bias` (int32), rescaled by
/// [`FcRequant`], `+ output_offset`, clamp. Mirrors `reference_integer_ops::FullyConnected` /
/// `FullyConnectedPerChannel` (and `reference_ops::FullyConnected` for uint8).
pub type FullyConnectedParams = generic::QuantFcParams<i8>;

impl FullyConnectedParams {
    /// TFLite ≥ 2.20 / ai-edge-litert 2.x `kReference`: requantization in double
    /// ([`FcRequant::Float`]), per channel when there are several filter scales.
    pub fn prepare(
        input: TensorQuant,
        filter_scales: &[f32],
        filter_zero_point: i32,
        output: TensorQuant,
        activation: Activation,
    ) -> Self {
        Self::with_requant(
            input,
            filter_zero_point,
            output,
            activation,
            FcRequant::float(input.scale, filter_scales, output.scale),
        )
    }

    /// Older TFLite (< 2.20): fixed-point requantization ([`FcRequant::FixedPoint`]).
    pub fn prepare_fixed_point(
        input: TensorQuant,
        filter_scales: &[f32],
        filter_zero_point: i32,
        output: TensorQuant,
        activation: Activation,
    ) -> Self {
        Self::with_requant(
            input,
            filter_zero_point,
            output,
            activation,
            FcRequant::fixed_point(input.scale, filter_scales, output.scale),
        )
    }
}

impl MacStage for FullyConnectedParams {
    type Act = i8;
    type Weight = i8;
    type Bias = i32;
    type Acc = i32;

    #[inline]
    fn zero(&self) -> i32 {
        0
    }

    #[inline]
    fn mac(&self, acc: i32, x: i8, w: i8) -> i32 {
        acc.wrapping_add((i32::from(w) + self.filter_offset) * (i32::from(x) + self.input_offset))
    }

    #[inline]
    fn finish(&self, acc: i32, bias: Option<i32>, ch: usize) -> i8 {
        let acc = acc.wrapping_add(bias.unwrap_or(0));
        let scaled = self.requant.apply_i32(acc, ch).wrapping_add(self.output_offset);
        scaled.clamp(self.act_min, self.act_max) as i8
    }
}

/// AVERAGE_POOL_2D (input and output share quantization, as TFLite requires). Mirrors
/// `reference_integer_ops::AveragePool` (int8) or, with `uint8_rounding`, `reference_ops::AveragePool`
/// for uint8.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AvgPoolParams {
    pub act_min: i32,
    pub act_max: i32,
    /// Round like the uint8 reference: `floor((sum + n/2) / n)` on the shifted values (the uint8 sum is
    /// never negative there) instead of int8's halves-away-from-zero.
    pub uint8_rounding: bool,
}

impl AvgPoolParams {
    pub fn prepare(output: TensorQuant, activation: Activation, uint8_rounding: bool) -> Self {
        let (act_min, act_max) = activation_range_quantized(activation, output.scale, output.zero_point, QMIN, QMAX);
        Self { act_min, act_max, uint8_rounding }
    }
}

/// The average of `n` taps summing to `sum`, rounded like TFLite's int8 (or uint8) reference.
#[inline]
fn average_i32(sum: i32, n: i32, uint8_rounding: bool) -> i32 {
    if uint8_rounding {
        // uint8: (Σu + n/2) / n with Σu = sum + 128·n ≥ 0, minus 128 again.
        (sum + n / 2).div_euclid(n)
    } else {
        generic::rounded_average(sum, n)
    }
}

pub fn average_pool2d(p: &AvgPoolParams, g: &PoolGeom, input: &[i8], output: &mut [i8]) {
    generic::quant_average_pool2d(g, input, output, p.act_min, p.act_max, |s, n| average_i32(s, n, p.uint8_rounding))
}

/// MEAN over H and W. Mirrors `reduce.cc`'s `kReference` path for int8/uint8 (`EvalQuantizedMean` →
/// `reference_ops::QuantizedMeanOrSum`): the multiplier `QuantizeMultiplier(s_in / s_out)` is prepared
/// here and `1/(h·w)` is folded into it at run time ([`generic::mean_multiplier`]). This path has no
/// special case for equal input/output quantization, and uint8 models give the same bits through the
/// −128 shift.
pub type MeanParams = generic::QuantMeanParams;

/// ADD of two same-shape tensors: TFLite's general 8-bit path (`left_shift = 20`), mirrors
/// `reference_integer_ops::Add` (and `reference_ops::Add` for uint8).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AddParams {
    pub rescale: AddRescale,
}

impl AddParams {
    pub fn prepare(
        input1: TensorQuant,
        input2: TensorQuant,
        output: TensorQuant,
        activation: Activation,
    ) -> crate::Result<Self> {
        Ok(Self { rescale: AddRescale::prepare(20, input1, input2, output, activation, QMIN, QMAX)? })
    }
}

pub fn add(p: &AddParams, input1: &[i8], input2: &[i8], output: &mut [i8]) {
    p.rescale.add_all(input1, input2, output)
}

/// SOFTMAX int8 → int8 (output scale 1/256, zero point −128, as TFLite requires). Mirrors
/// `reference_ops::Softmax<int8_t, int8_t>` with `Prepare`'s `kReference` branch: fixed-point exp on
/// Q5.26 differences, sum in Q12.19, reciprocal by Newton-Raphson.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SoftmaxParams {
    /// `input_beta_multiplier` and its left shift, from `PreprocessSoftmaxScaling(beta, s_in, 5)`.
    pub input_multiplier: QuantizedMultiplier,
    /// `-CalculateInputRadius(5, left_shift)`: differences below it contribute nothing.
    pub diff_min: i32,
}

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

impl SoftmaxParams {
    pub fn prepare(beta: f32, input: TensorQuant) -> Self {
        let input_multiplier =
            preprocess_softmax_scaling(f64::from(beta), f64::from(input.scale), SCALED_DIFF_INTEGER_BITS);
        let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, input_multiplier.shift, 31);
        Self { input_multiplier, diff_min }
    }

    /// `exp(diff · beta · s_in)` in Q0.31 for a (non-positive) input difference.
    #[inline]
    fn exp(&self, input_diff: i32) -> i32 {
        let rescaled = multiply_by_quantized_multiplier_greater_than_one(
            input_diff,
            self.input_multiplier.multiplier,
            self.input_multiplier.shift,
        );
        fixed::exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    }
}

/// Softmax over the last dimension of length `depth` (rows = `input.len() / depth`).
pub fn softmax(p: &SoftmaxParams, depth: usize, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    if depth == 0 {
        return;
    }
    for (row, out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        let max_in_row = i32::from(row.iter().copied().max().unwrap_or(i8::MIN));
        let mut sum_of_exps: i32 = 0; // Q12.19
        for &x in row {
            let diff = i32::from(x) - max_in_row;
            if diff >= p.diff_min {
                sum_of_exps = sum_of_exps.wrapping_add(rounding_divide_by_pot(p.exp(diff), ACCUMULATION_INTEGER_BITS));
            }
        }
        let (shifted_scale, num_bits_over_unit) = fixed::get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
        let exponent = num_bits_over_unit + 31 - 8;
        for (o, &x) in out.iter_mut().zip(row) {
            let diff = i32::from(x) - max_in_row;
            *o = if diff >= p.diff_min {
                let unsat =
                    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted_scale, p.exp(diff)), exponent);
                (unsat + QMIN).clamp(QMIN, QMAX) as i8
            } else {
                i8::MIN
            };
        }
    }
}

/// QUANTIZE float → int8 (`reference_ops::AffineQuantize`).
pub type QuantizeParams = generic::QuantizeParams;

pub fn affine_quantize(p: &QuantizeParams, input: &[f32], output: &mut [i8]) {
    generic::affine_quantize(p, input, output)
}

/// DEQUANTIZE int8 → float (`reference_ops::Dequantize`).
pub type DequantizeParams = generic::DequantizeParams;

pub fn dequantize(p: &DequantizeParams, input: &[i8], output: &mut [f32]) {
    generic::dequantize(p, input, output)
}

/// QUANTIZE int8 → int8 (also uint8 ↔ int8 through the −128 shift): `reference_ops::Requantize` with
/// `QuantizeMultiplier((double)s_in / (double)s_out)`.
pub type RequantizeParams = generic::RequantizeParams;

/// Requantize int8 into `O` (`i8`; TFLite has no int8 → int16 QUANTIZE, but the arithmetic is the same).
pub fn requantize<O: QInt>(p: &RequantizeParams, input: &[i8], output: &mut [O]) {
    generic::requantize(p, input, output)
}

/// PAD with the output zero point (TFLite's default pad value for quantized tensors).
pub type PadParams = super::PadParams<i8>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fixedpoint::multiply_by_quantized_multiplier;
    use crate::kernels::generic::{conv2d, depthwise_conv2d, fully_connected, pad, quant_mean_hw as mean_hw};
    use crate::kernels::testutil::{
        act_range, activation, conv_geom, pool_geom, ref_conv_acc, ref_pool_windows, scale, vec_of,
    };
    use crate::kernels::ConvGeom;
    use crate::kernels::FcGeom;
    use proptest::prelude::*;

    /// Quantization of a convolution-like op: input, filter scales (1 = per-tensor) and zero point,
    /// output, activation, and whether the model was uint8.
    #[derive(Debug, Clone)]
    struct ConvQuant {
        input: TensorQuant,
        filter_scales: Vec<f32>,
        filter_zp: i32,
        output: TensorQuant,
        act: Activation,
        from_uint8: bool,
    }

    fn conv_quant(out_c: usize) -> impl Strategy<Value = ConvQuant> {
        (
            scale(),
            -128..=127i32,
            any::<bool>(),
            vec_of(scale(), out_c),
            scale(),
            -128..=127i32,
            activation(),
            -100..=100i32,
        )
            .prop_map(move |(in_s, in_zp, from_uint8, fs, out_s, out_zp, act, wzp)| ConvQuant {
                input: TensorQuant::new(in_s, in_zp),
                // uint8 models: per-tensor weights with a zero point; int8: per-channel, zero point 0
                // (a single channel is the per-tensor case).
                filter_scales: if from_uint8 { fs[..1].to_vec() } else { fs },
                filter_zp: if from_uint8 { wzp } else { 0 },
                output: TensorQuant::new(out_s, out_zp),
                act,
                from_uint8,
            })
    }

    /// The output stage written out from TFLite's definition.
    fn ref_output(acc: i64, ch: usize, q: &ConvQuant) -> i8 {
        let real = if q.from_uint8 {
            f64::from(q.input.scale * q.filter_scales[0]) / f64::from(q.output.scale)
        } else {
            let w = q.filter_scales[if q.filter_scales.len() == 1 { 0 } else { ch }];
            f64::from(q.input.scale) * f64::from(w) / f64::from(q.output.scale)
        };
        let m = crate::kernels::fixedpoint::quantize_multiplier(real);
        let v = multiply_by_quantized_multiplier(acc as i32, m.multiplier, m.shift) + q.output.zero_point;
        let (lo, hi) = act_range(q.act, q.output.scale, q.output.zero_point, -128, 127);
        v.clamp(lo, hi) as i8
    }

    fn check_conv(depthwise: bool, g: ConvGeom, x: Vec<i8>, w: Vec<i8>, bias: Option<Vec<i32>>, q: ConvQuant) {
        let p = ConvParams::prepare(q.input, &q.filter_scales, q.filter_zp, q.output, q.act, q.from_uint8);
        let mut got = vec![0i8; g.output_len()];
        if depthwise {
            depthwise_conv2d(&p, &g, &x, &w, bias.as_deref(), &mut got);
        } else {
            conv2d(&p, &g, &x, &w, bias.as_deref(), &mut got);
        }
        let acc = ref_conv_acc(&g, depthwise, 0i64, |a, xi, wi| {
            a + (i64::from(w[wi]) - i64::from(q.filter_zp)) * (i64::from(x[xi]) - i64::from(q.input.zero_point))
        });
        let want: Vec<i8> = acc
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let ch = i % g.out_c;
                ref_output(a + bias.as_ref().map_or(0, |b| i64::from(b[ch])), ch, &q)
            })
            .collect();
        assert_eq!(got, want, "{g:?} {q:?}");
    }

    fn conv_case(depthwise: bool) -> impl Strategy<Value = (ConvGeom, Vec<i8>, Vec<i8>, Option<Vec<i32>>, ConvQuant)> {
        conv_geom(depthwise).prop_flat_map(move |g| {
            let flen = if depthwise { g.depthwise_filter_len() } else { g.conv_filter_len() };
            (
                Just(g),
                vec_of(any::<i8>(), g.input_len()),
                vec_of(any::<i8>(), flen),
                proptest::option::of(vec_of(-20000..20000i32, g.out_c)),
                conv_quant(g.out_c),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn conv2d_matches_reference((g, x, w, b, q) in conv_case(false)) {
            check_conv(false, g, x, w, b, q);
        }

        #[test]
        fn depthwise_conv2d_matches_reference((g, x, w, b, q) in conv_case(true)) {
            check_conv(true, g, x, w, b, q);
        }

        /// The design claim for convolutions: a uint8 model run as int8 (values, zero points and
        /// weights shifted by −128, `from_uint8`) gives the uint8 reference's bits, shifted.
        #[test]
        fn conv2d_uint8_models_are_exact_through_the_shift(
            (g, xu, wu, in_s, in_zp, w_s, w_zp, out_s, out_zp, act) in conv_geom(false).prop_flat_map(|g| (
                Just(g), vec_of(any::<u8>(), g.input_len()), vec_of(any::<u8>(), g.conv_filter_len()),
                scale(), 0..=255i32, scale(), 0..=255i32, scale(), 0..=255i32, activation()))
        ) {
            // uint8 reference: reference_ops::Conv with the legacy multiplier, clamped over [0, 255].
            let m = crate::kernels::fixedpoint::quantize_multiplier(f64::from(in_s * w_s) / f64::from(out_s));
            let (lo, hi) = act_range(act, out_s, out_zp, 0, 255);
            let acc = ref_conv_acc(&g, false, 0i32, |a, xi, wi| a + (i32::from(wu[wi]) - w_zp) * (i32::from(xu[xi]) - in_zp));
            let want: Vec<i32> = acc.iter().map(|&a| (m.apply(a) + out_zp).clamp(lo, hi)).collect();

            let shift = |v: &[u8]| v.iter().map(|&u| (i32::from(u) - 128) as i8).collect::<Vec<i8>>();
            let p = ConvParams::prepare(
                TensorQuant::new(in_s, in_zp - 128), &[w_s], w_zp - 128, TensorQuant::new(out_s, out_zp - 128), act, true);
            let mut got = vec![0i8; g.output_len()];
            conv2d(&p, &g, &shift(&xu), &shift(&wu), None, &mut got);
            let got: Vec<i32> = got.iter().map(|&v| i32::from(v) + 128).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn fully_connected_matches_reference(
            (batch, ind, outd, x, w, bias) in (1..=3usize, 1..=40usize, 1..=6usize).prop_flat_map(|(b, i, o)| (
                Just(b), Just(i), Just(o), vec_of(any::<i8>(), b * i), vec_of(any::<i8>(), o * i), vec_of(-30000..30000i32, o))),
            q in conv_quant(6),
        ) {
            let scales: Vec<f32> = q.filter_scales.iter().copied().cycle().take(if q.filter_scales.len() == 1 { 1 } else { outd }).collect();
            let p = FullyConnectedParams::prepare(q.input, &scales, q.filter_zp, q.output, q.act);
            let mut got = vec![0i8; batch * outd];
            fully_connected(&p, &FcGeom { batch, in_depth: ind, out_depth: outd }, &x, &w, Some(&bias), &mut got);
            let (lo, hi) = act_range(q.act, q.output.scale, q.output.zero_point, -128, 127);
            for b in 0..batch {
                for o in 0..outd {
                    let mut acc = i64::from(bias[o]);
                    for d in 0..ind {
                        acc += (i64::from(w[o * ind + d]) - i64::from(q.filter_zp)) * (i64::from(x[b * ind + d]) - i64::from(q.input.zero_point));
                    }
                    let s = f64::from(q.input.scale) * f64::from(scales[if scales.len() == 1 { 0 } else { o }]) / f64::from(q.output.scale);
                    let want = ((acc as f64 * s).round() as i32 + q.output.zero_point).clamp(lo, hi);
                    prop_assert_eq!(i32::from(got[b * outd + o]), want);
                }
            }
        }

        #[test]
        fn average_pool_matches_reference(
            (g, x) in pool_geom().prop_flat_map(|g| (Just(g), vec_of(any::<i8>(), g.input_len()))),
            out_s in scale(), zp in -128..=127i32, act in activation(), uint8_rounding in any::<bool>(),
        ) {
            let p = AvgPoolParams::prepare(TensorQuant::new(out_s, zp), act, uint8_rounding);
            let mut got = vec![0i8; g.output_len()];
            average_pool2d(&p, &g, &x, &mut got);
            let windows = ref_pool_windows(&g);
            for (i, taps) in windows.iter().enumerate() {
                let n = taps.len() as i32;
                let want = if uint8_rounding {
                    // The uint8 reference, in the uint8 domain: (Σu + n/2) / n over u = x + 128, with
                    // its activation range over [0, 255], shifted back.
                    let sum_u: i32 = taps.iter().map(|&t| i32::from(x[t]) + 128).sum();
                    let (lo, hi) = act_range(act, out_s, zp + 128, 0, 255);
                    ((sum_u + n / 2) / n).clamp(lo, hi) - 128
                } else {
                    let sum: i32 = taps.iter().map(|&t| i32::from(x[t])).sum();
                    let (lo, hi) = act_range(act, out_s, zp, -128, 127);
                    let avg = if sum > 0 { (sum + n / 2) / n } else { (sum - n / 2) / n };
                    avg.clamp(lo, hi)
                };
                prop_assert_eq!(i32::from(got[i]), want, "output {}", i);
            }
        }

        #[test]
        fn mean_matches_reference_and_uint8(
            (shape, xu) in (1..=2usize, 1..=7usize, 1..=7usize, 1..=4usize)
                .prop_flat_map(|(b, h, w, c)| (Just([b, h, w, c]), vec_of(any::<u8>(), b * h * w * c))),
            in_s in scale(), in_zp in 0..=255i32, out_s in scale(), out_zp in 0..=255i32,
        ) {
            let [batch, h, w, c] = shape;
            let n = (h * w) as i64;
            let x: Vec<i8> = xu.iter().map(|&u| (i32::from(u) - 128) as i8).collect();
            let p = MeanParams::prepare(TensorQuant::new(in_s, in_zp - 128), TensorQuant::new(out_s, out_zp - 128));
            let mut got = vec![0i8; batch * c];
            mean_hw(&p, shape, &x, &mut got);
            // QuantizedMeanOrSum<uint8_t> written out, in the uint8 domain.
            let m = crate::kernels::fixedpoint::quantize_multiplier(f64::from(in_s) / f64::from(out_s));
            let shift = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + m.shift);
            let mult = ((i64::from(m.multiplier) << shift) / n) as i32;
            for b in 0..batch {
                for ch in 0..c {
                    let mut sum = 0i64;
                    for y in 0..h { for xx in 0..w { sum += i64::from(xu[((b * h + y) * w + xx) * c + ch]); } }
                    let shifted = (sum - i64::from(in_zp) * n) as i32;
                    let want = (multiply_by_quantized_multiplier(shifted, mult, m.shift - shift) + out_zp).clamp(0, 255);
                    prop_assert_eq!(i32::from(got[b * c + ch]) + 128, want);
                }
            }
        }

        #[test]
        fn add_matches_reference_and_uint8(
            (a, b) in (1..=64usize).prop_flat_map(|n| (vec_of(any::<u8>(), n), vec_of(any::<u8>(), n))),
            s1 in scale(), z1 in 0..=255i32, s2 in scale(), z2 in 0..=255i32, so in scale(), zo in 0..=255i32,
            act in activation(),
        ) {
            let shift = |v: &[u8]| v.iter().map(|&u| (i32::from(u) - 128) as i8).collect::<Vec<i8>>();
            let p = AddParams::prepare(TensorQuant::new(s1, z1 - 128), TensorQuant::new(s2, z2 - 128), TensorQuant::new(so, zo - 128), act).unwrap();
            let mut got = vec![0i8; a.len()];
            add(&p, &shift(&a), &shift(&b), &mut got);
            // uint8 AddElementwise written out.
            let twice = f64::from(2.0 * s1.max(s2));
            let m1 = crate::kernels::fixedpoint::quantize_multiplier(f64::from(s1) / twice);
            let m2 = crate::kernels::fixedpoint::quantize_multiplier(f64::from(s2) / twice);
            let mo = crate::kernels::fixedpoint::quantize_multiplier(twice / f64::from((1 << 20) as f32 * so));
            let (lo, hi) = act_range(act, so, zo, 0, 255);
            let rescale = |x: i32, m: crate::kernels::fixedpoint::QuantizedMultiplier| {
                crate::kernels::fixedpoint::rounding_divide_by_pot(crate::kernels::fixedpoint::saturating_rounding_doubling_high_mul(x * (1 << 20), m.multiplier), -m.shift)
            };
            for i in 0..a.len() {
                let sum = rescale(i32::from(a[i]) - z1, m1) + rescale(i32::from(b[i]) - z2, m2);
                let out = crate::kernels::fixedpoint::rounding_divide_by_pot(crate::kernels::fixedpoint::saturating_rounding_doubling_high_mul(sum, mo.multiplier), -mo.shift) + zo;
                prop_assert_eq!(i32::from(got[i]) + 128, out.clamp(lo, hi));
            }
        }

        #[test]
        fn softmax_is_close_to_the_real_softmax(
            (depth, x) in (1..=40usize).prop_flat_map(|d| (Just(d), vec_of(any::<i8>(), 2 * d))),
            in_s in (-6.0f32..-1.0).prop_map(|e| 2f32.powf(e)), zp in -128..=127i32, beta in 0.5f32..2.0,
        ) {
            let p = SoftmaxParams::prepare(beta, TensorQuant::new(in_s, zp));
            let mut got = vec![0i8; x.len()];
            softmax(&p, depth, &x, &mut got);
            for (row, out) in x.chunks(depth).zip(got.chunks(depth)) {
                let max = row.iter().map(|&v| f64::from(v)).fold(f64::MIN, f64::max);
                let e: Vec<f64> = row.iter().map(|&v| ((f64::from(v) - max) * f64::from(in_s) * f64::from(beta)).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (&ei, &o) in e.iter().zip(out) {
                    let want = ((ei / sum) * 256.0).round() - 128.0;
                    prop_assert!((f64::from(o) - want.min(127.0)).abs() <= 1.0, "{o} vs {want}");
                }
            }
        }

        #[test]
        fn quantize_dequantize_requantize_match_their_definitions(
            xs in vec_of(-1000.0f32..1000.0, 1..64), qs in vec_of(any::<i8>(), 1..64),
            s in scale(), zp in -128..=127i32, s2 in scale(), zp2 in -128..=127i32,
        ) {
            let mut q = vec![0i8; xs.len()];
            affine_quantize(&QuantizeParams::prepare(TensorQuant::new(s, zp)), &xs, &mut q);
            for (&x, &v) in xs.iter().zip(&q) {
                prop_assert_eq!(i32::from(v), ((x / s).round() as i64 + i64::from(zp)).clamp(-128, 127) as i32);
            }
            let mut f = vec![0f32; qs.len()];
            dequantize(&DequantizeParams::prepare(TensorQuant::new(s, zp)), &qs, &mut f);
            for (&v, &y) in qs.iter().zip(&f) {
                // The double product rounded once equals the float product (it is exact in double).
                prop_assert_eq!(y, (i32::from(v) - zp) as f32 * s);
            }
            let p = RequantizeParams::prepare(TensorQuant::new(s, zp), TensorQuant::new(s2, zp2));
            let mut r = vec![0i8; qs.len()];
            requantize(&p, &qs, &mut r);
            for (&v, &o) in qs.iter().zip(&r) {
                let exact = f64::from(i32::from(v) - zp) * f64::from(s) / f64::from(s2) + f64::from(zp2);
                let want = exact.round().clamp(-128.0, 127.0);
                prop_assert!((f64::from(o) - want).abs() <= 1.0);
                let m = crate::kernels::fixedpoint::quantize_multiplier(f64::from(s) / f64::from(s2));
                prop_assert_eq!(i32::from(o), (m.apply(i32::from(v) - zp) + zp2).clamp(-128, 127));
            }
        }
    }

    #[test]
    fn softmax_of_equal_inputs_is_uniform() {
        // Two equal logits: 0.5 each → 128/256 → -128 + 128 = 0.
        let p = SoftmaxParams::prepare(1.0, TensorQuant::new(0.1, 0));
        let mut out = [0i8; 2];
        softmax(&p, 2, &[5, 5], &mut out);
        assert_eq!(out, [0, 0]);
        // One dominant logit saturates at 127, the other at -128.
        let mut out = [0i8; 2];
        softmax(&p, 2, &[127, -128], &mut out);
        assert_eq!(out, [127, -128]);
    }

    #[test]
    fn pad_fills_with_the_zero_point() {
        let p = PadParams::prepare([0, 1, 0, 0], [0, 0, 2, 1], -5);
        let input = [1i8, 2, 3, 4]; // [1, 2, 1, 2]
        let mut out = vec![0i8; p.output_shape([1, 2, 1, 2]).iter().product()];
        pad(&p, [1, 2, 1, 2], &input, &mut out);
        // Output [1, 3, 3, 3]: row 0 all padding; rows 1-2 have the input at column 0, channels 0-1.
        let mut want = vec![-5i8; 27];
        want[9..11].copy_from_slice(&[1, 2]);
        want[18..20].copy_from_slice(&[3, 4]);
        assert_eq!(out, want);
    }
}
