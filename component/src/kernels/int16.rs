//! int16 kernels: TFLite's "16x8" mode — int16 activations (symmetric, zero point 0), int8 per-channel
//! weights, int64 bias. Each op mirrors a TFLite `kReference` path (noted per item).

use super::generic::{self, AddRescale, FcRequant, MacStage, QInt};
use super::{math, Activation, PoolGeom, TensorQuant};
use crate::error::{Error, Result};
use crate::kernels::fixedpoint::{
    activation_range_quantized, checked_log2, lut_lookup_int16, lut_populate_int16, rounding_divide_by_pot_i16,
    QuantizedMultiplier,
};

const QMIN: i32 = i16::MIN as i32;
const QMAX: i32 = i16::MAX as i32;

/// CONV_2D and DEPTHWISE_CONV_2D, 16x8: `acc = Σ w·x + bias` in int64 (no offsets: TFLite requires zero
/// points 0 and ignores them), the **int64** `MultiplyByQuantizedMultiplier` (16-bit reduced
/// multiplier, single rounding), clamp. Mirrors `reference_integer_ops::ConvPerChannel<int64_t>` /
/// `DepthwiseConvPerChannel` for int16 input with int64 bias.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvParams {
    /// One per output channel, or a single one shared by all channels.
    pub multipliers: Vec<QuantizedMultiplier>,
    pub act_min: i32,
    pub act_max: i32,
}

/// DEPTHWISE_CONV_2D has the same parameters as CONV_2D.
pub type DepthwiseConvParams = ConvParams;

impl ConvParams {
    /// `PopulateConvolutionQuantizationParams`: per filter scale `(double)s_in · (double)s_w /
    /// (double)s_out`; activation range over `[-32768, 32767]`.
    pub fn prepare(input: TensorQuant, filter_scales: &[f32], output: TensorQuant, activation: Activation) -> Self {
        let multipliers = generic::conv_multipliers(input, filter_scales, output);
        let (act_min, act_max) = activation_range_quantized(activation, output.scale, output.zero_point, QMIN, QMAX);
        Self { multipliers, act_min, act_max }
    }
}

impl MacStage for ConvParams {
    type Act = i16;
    type Weight = i8;
    type Bias = i64;
    type Acc = i64;

    #[inline]
    fn zero(&self) -> i64 {
        0
    }

    #[inline]
    fn mac(&self, acc: i64, x: i16, w: i8) -> i64 {
        acc.wrapping_add(i64::from(i32::from(w) * i32::from(x)))
    }

    #[inline]
    fn finish(&self, acc: i64, bias: Option<i64>, ch: usize) -> i16 {
        let acc = acc.wrapping_add(bias.unwrap_or(0));
        generic::per_channel(&self.multipliers, ch).apply_i64(acc).clamp(self.act_min, self.act_max) as i16
    }
}

/// FULLY_CONNECTED, 16x8 with int64 bias: `acc = Σ (w + filter_offset)(x + input_offset) + bias` in
/// int64, rescaled by [`FcRequant`], `+ output_offset`, clamp. Mirrors `reference_integer_ops::
/// FullyConnected[PerChannel]<int16_t, int8_t, int16_t, int64_t>`.
pub type FullyConnectedParams = generic::QuantFcParams<i16>;

impl FullyConnectedParams {
    /// TFLite ≥ 2.20 / ai-edge-litert 2.x `kReference`: requantization in double ([`FcRequant::Float`]).
    pub fn prepare(input: TensorQuant, filter_scales: &[f32], output: TensorQuant, activation: Activation) -> Self {
        Self::with_requant(
            input,
            0, // 16x8 weights are symmetric: filter offset 0.
            output,
            activation,
            FcRequant::float(input.scale, filter_scales, output.scale),
        )
    }

    /// Older TFLite (< 2.20): fixed-point requantization with the int64 `MultiplyByQuantizedMultiplier`.
    pub fn prepare_fixed_point(
        input: TensorQuant,
        filter_scales: &[f32],
        output: TensorQuant,
        activation: Activation,
    ) -> Self {
        Self::with_requant(
            input,
            0, // 16x8 weights are symmetric: filter offset 0.
            output,
            activation,
            FcRequant::fixed_point(input.scale, filter_scales, output.scale),
        )
    }
}

impl MacStage for FullyConnectedParams {
    type Act = i16;
    type Weight = i8;
    type Bias = i64;
    type Acc = i64;

    #[inline]
    fn zero(&self) -> i64 {
        0
    }

    #[inline]
    fn mac(&self, acc: i64, x: i16, w: i8) -> i64 {
        let product = (i32::from(w) + self.filter_offset).wrapping_mul(i32::from(x) + self.input_offset);
        acc.wrapping_add(i64::from(product))
    }

    #[inline]
    fn finish(&self, acc: i64, bias: Option<i64>, ch: usize) -> i16 {
        let acc = acc.wrapping_add(bias.unwrap_or(0));
        let scaled = self.requant.apply_i64(acc, ch).wrapping_add(self.output_offset);
        scaled.clamp(self.act_min, self.act_max) as i16
    }
}

/// AVERAGE_POOL_2D int16: `reference_integer_ops::AveragePool` (int32 sum, halves away from zero).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AvgPoolParams {
    pub act_min: i32,
    pub act_max: i32,
}

impl AvgPoolParams {
    pub fn prepare(output: TensorQuant, activation: Activation) -> Self {
        let (act_min, act_max) = activation_range_quantized(activation, output.scale, output.zero_point, QMIN, QMAX);
        Self { act_min, act_max }
    }
}

pub fn average_pool2d(p: &AvgPoolParams, g: &PoolGeom, input: &[i16], output: &mut [i16]) {
    generic::quant_average_pool2d(g, input, output, p.act_min, p.act_max, generic::rounded_average)
}

/// MEAN over H and W, int16: the same `QuantizedMeanOrSum` path as int8 (int32 sum).
pub type MeanParams = generic::QuantMeanParams;

/// Which of TFLite's two int16 ADD implementations `Prepare` picked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AddKind {
    /// The general-scale path (`reference_ops::Add(..., pot_scale = false)` → `AddElementwise` with
    /// `left_shift = 15`). Taken when the op's `pot_scale_int16` option is false — what the 16x8
    /// converter writes — or when any scale is not a power of two.
    General(AddRescale),
    /// The power-of-two path (`reference_ops::Add` int16, `pot_scale = true`): one input is rounding-
    /// shifted right by `-shift`, then a saturating int16 add. Shifts are `log2(s_in) − log2(s_out)`, one
    /// of them 0, both `<= 0`.
    PowerOfTwo { input1_shift: i32, input2_shift: i32, act_min: i32, act_max: i32 },
}

/// ADD of two same-shape int16 tensors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AddParams {
    pub kind: AddKind,
}

impl AddParams {
    /// `add.cc`'s `Prepare` for int16: `pot_scale_int16` is the ADD option (the flatbuffer default is
    /// `true`; TFLite takes the general path when the option table is absent, so pass `false` then).
    /// With it set and all three scales powers of two (`CheckedLog2`, in float) the POT path is chosen;
    /// TFLite refuses the op when that path's shift constraints fail, and so do we.
    pub fn prepare(
        input1: TensorQuant,
        input2: TensorQuant,
        output: TensorQuant,
        activation: Activation,
        pot_scale_int16: bool,
    ) -> Result<Self> {
        let pot = if pot_scale_int16 {
            checked_log2(input1.scale).zip(checked_log2(input2.scale)).zip(checked_log2(output.scale))
        } else {
            None
        };
        let kind = match pot {
            None => AddKind::General(AddRescale::prepare(15, input1, input2, output, activation, QMIN, QMAX)?),
            Some(((l1, l2), lo)) => {
                let (input1_shift, input2_shift) = (l1 - lo, l2 - lo);
                if !(input1_shift == 0 || input2_shift == 0) || input1_shift > 0 || input2_shift > 0 {
                    return Err(Error::UnsupportedModel(format!(
                        "int16 ADD with power-of-two scales needs one input at the output scale and none \
                         finer (shifts {input1_shift}, {input2_shift})"
                    )));
                }
                let (act_min, act_max) =
                    activation_range_quantized(activation, output.scale, output.zero_point, QMIN, QMAX);
                AddKind::PowerOfTwo { input1_shift, input2_shift, act_min, act_max }
            }
        };
        Ok(Self { kind })
    }
}

pub fn add(p: &AddParams, input1: &[i16], input2: &[i16], output: &mut [i16]) {
    debug_assert!(input1.len() == output.len() && input2.len() == output.len());
    match &p.kind {
        AddKind::General(rescale) => rescale.add_all(input1, input2, output),
        &AddKind::PowerOfTwo { input1_shift, input2_shift, act_min, act_max } => {
            let (ready, shifted, right_shift) =
                if input1_shift == 0 { (input1, input2, -input2_shift) } else { (input2, input1, -input1_shift) };
            for ((o, &r), &s) in output.iter_mut().zip(ready).zip(shifted) {
                let sum = rounding_divide_by_pot_i16(s, right_shift).saturating_add(r);
                *o = i32::from(sum).clamp(act_min, act_max) as i16;
            }
        }
    }
}

/// SOFTMAX int16 → int16 (input and output zero point 0, output scale 1/32768): `reference_ops::
/// SoftmaxInt16` with `Prepare`'s lookup tables — `exp` over `[-10, 0]` and `1/(1+x)` over `[0, 1]`,
/// 513 entries each, generated by `LUTPopulate<int16_t>` in double.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SoftmaxParams {
    /// `QuantizeMultiplier(s_in · beta / (10 / 65535))`, the product `s_in · beta` in float.
    pub input_multiplier: QuantizedMultiplier,
    pub exp_lut: Vec<i16>,
    pub one_over_one_plus_x_lut: Vec<i16>,
}

impl SoftmaxParams {
    pub fn prepare(beta: f32, input: TensorQuant) -> Self {
        let range = f64::from(i32::from(i16::MAX) - i32::from(i16::MIN));
        let exp_lut = lut_populate_int16(math::exp_f64, 10.0 / range, i32::from(i16::MAX), 2.0 / range, 0);
        let one_over_one_plus_x_lut =
            lut_populate_int16(|x| 1.0 / (1.0 + x), 1.0 / range, i32::from(i16::MIN), 2.0 / range, 0);
        // Scale the input difference so that [-65535, 0] covers [-10, 0].
        let input_scale_beta_rescale = f64::from(input.scale * beta) / (10.0 / 65535.0);
        Self { input_multiplier: QuantizedMultiplier::new(input_scale_beta_rescale), exp_lut, one_over_one_plus_x_lut }
    }

    /// `SoftMaxCalculateExp`: exp of `x − max` in Q0.15.
    #[inline]
    fn exp(&self, x: i16, max_in_row: i16) -> i16 {
        let input_diff = i32::from(x) - i32::from(max_in_row);
        let scaled_diff = self.input_multiplier.apply(input_diff);
        let sym_scaled_diff = scaled_diff.wrapping_add(32767);
        lut_lookup_int16(sym_scaled_diff.clamp(QMIN, QMAX) as i16, &self.exp_lut)
    }
}

/// Softmax over the last dimension of length `depth` (rows = `input.len() / depth`).
pub fn softmax(p: &SoftmaxParams, depth: usize, input: &[i16], output: &mut [i16]) {
    debug_assert_eq!(input.len(), output.len());
    if depth == 0 {
        return;
    }
    for (row, out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        let max_in_row = row.iter().copied().max().unwrap_or(i16::MIN);
        // The exps are cached in the output, as TFLite does.
        let mut sum_of_exps: i32 = 0; // Q16.15
        for (o, &x) in out.iter_mut().zip(row) {
            *o = p.exp(x, max_in_row);
            sum_of_exps = sum_of_exps.wrapping_add(i32::from(*o));
        }
        // 1 / sum: normalise the sum to [1, 2), look up 1/(1+x) on x = sum − 1 recentred to int16.
        let headroom_plus_one = (sum_of_exps as u32).leading_zeros() as i32;
        let shifted_sum = (((i64::from(sum_of_exps) << (headroom_plus_one - 1).clamp(0, 62)) + (1 << 13)) >> 14) as i32;
        let sym_shifted_sum = shifted_sum.wrapping_add(-((1 << 15) + (1 << 16)));
        let reciprocal_scale_q015 =
            lut_lookup_int16(sym_shifted_sum.clamp(QMIN, QMAX) as i16, &p.one_over_one_plus_x_lut);
        let right_shift = (31 - headroom_plus_one).clamp(1, 62);
        let round = 1i64 << (right_shift - 1);
        for o in out.iter_mut() {
            let result = ((i64::from(*o) * i64::from(reciprocal_scale_q015) + round) >> right_shift) as i32;
            *o = result.clamp(0, QMAX) as i16;
        }
    }
}

/// QUANTIZE float → int16 (`reference_ops::AffineQuantize`).
pub type QuantizeParams = generic::QuantizeParams;

pub fn affine_quantize(p: &QuantizeParams, input: &[f32], output: &mut [i16]) {
    generic::affine_quantize(p, input, output)
}

/// DEQUANTIZE int16 → float (`reference_ops::Dequantize`).
pub type DequantizeParams = generic::DequantizeParams;

pub fn dequantize(p: &DequantizeParams, input: &[i16], output: &mut [f32]) {
    generic::dequantize(p, input, output)
}

/// QUANTIZE int16 → int16 or int16 → int8: `reference_ops::Requantize` with
/// `QuantizeMultiplier((double)s_in / (double)s_out)`.
pub type RequantizeParams = generic::RequantizeParams;

/// Requantize int16 into `O` (`i16` or `i8`).
pub fn requantize<O: QInt>(p: &RequantizeParams, input: &[i16], output: &mut [O]) {
    generic::requantize(p, input, output)
}

/// PAD with the output zero point.
pub type PadParams = super::PadParams<i16>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fixedpoint::{multiply_by_quantized_multiplier_i64, quantize_multiplier};
    use crate::kernels::generic::{conv2d, depthwise_conv2d, fully_connected, quant_mean_hw as mean_hw};
    use crate::kernels::testutil::{
        act_range, activation, conv_geom, pool_geom, ref_conv_acc, ref_pool_windows, scale, vec_of,
    };
    use crate::kernels::{ConvGeom, FcGeom};
    use proptest::prelude::*;

    /// Geometry, input, filter, bias, filter scales, input scale, output scale, activation.
    type ConvCase = (ConvGeom, Vec<i16>, Vec<i8>, Option<Vec<i64>>, Vec<f32>, f32, f32, Activation);

    fn conv_case(depthwise: bool) -> impl Strategy<Value = ConvCase> {
        conv_geom(depthwise).prop_flat_map(move |g| {
            let flen = if depthwise { g.depthwise_filter_len() } else { g.conv_filter_len() };
            (
                Just(g),
                vec_of(any::<i16>(), g.input_len()),
                vec_of(any::<i8>(), flen),
                proptest::option::of(vec_of(-(1i64 << 40)..(1i64 << 40), g.out_c)),
                prop_oneof![vec_of(scale(), 1), vec_of(scale(), g.out_c)],
                (-16.0f32..-8.0).prop_map(|e| 2f32.powf(e)),
                (-16.0f32..-6.0).prop_map(|e| 2f32.powf(e)),
                activation(),
            )
        })
    }

    fn check_conv(depthwise: bool, (g, x, w, bias, ws, in_s, out_s, act): ConvCase) {
        let p = ConvParams::prepare(TensorQuant::new(in_s, 0), &ws, TensorQuant::new(out_s, 0), act);
        let mut got = vec![0i16; g.output_len()];
        if depthwise {
            depthwise_conv2d(&p, &g, &x, &w, bias.as_deref(), &mut got);
        } else {
            conv2d(&p, &g, &x, &w, bias.as_deref(), &mut got);
        }
        let (lo, hi) = act_range(act, out_s, 0, -32768, 32767);
        let acc = ref_conv_acc(&g, depthwise, 0i64, |a, xi, wi| a + i64::from(w[wi]) * i64::from(x[xi]));
        let want: Vec<i16> = acc
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let ch = i % g.out_c;
                let m = quantize_multiplier(
                    f64::from(in_s) * f64::from(ws[if ws.len() == 1 { 0 } else { ch }]) / f64::from(out_s),
                );
                let a = a + bias.as_ref().map_or(0, |b| b[ch]);
                multiply_by_quantized_multiplier_i64(a, m.multiplier, m.shift).clamp(lo, hi) as i16
            })
            .collect();
        assert_eq!(got, want, "{g:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn conv2d_matches_reference(case in conv_case(false)) {
            check_conv(false, case);
        }

        #[test]
        fn depthwise_conv2d_matches_reference(case in conv_case(true)) {
            check_conv(true, case);
        }

        #[test]
        fn fully_connected_matches_reference(
            (batch, ind, outd, x, w, bias, ws) in (1..=3usize, 1..=40usize, 1..=6usize).prop_flat_map(|(b, i, o)| (
                Just(b), Just(i), Just(o), vec_of(any::<i16>(), b * i), vec_of(any::<i8>(), o * i),
                vec_of(-(1i64 << 40)..(1i64 << 40), o), prop_oneof![vec_of(scale(), 1), vec_of(scale(), o)])),
            in_s in (-16.0f32..-8.0).prop_map(|e| 2f32.powf(e)), out_s in (-12.0f32..-4.0).prop_map(|e| 2f32.powf(e)),
            act in activation(),
        ) {
            let p = FullyConnectedParams::prepare(TensorQuant::new(in_s, 0), &ws, TensorQuant::new(out_s, 0), act);
            let mut got = vec![0i16; batch * outd];
            fully_connected(&p, &FcGeom { batch, in_depth: ind, out_depth: outd }, &x, &w, Some(&bias), &mut got);
            let (lo, hi) = act_range(act, out_s, 0, -32768, 32767);
            for b in 0..batch {
                for o in 0..outd {
                    let acc = bias[o] + (0..ind).map(|d| i64::from(w[o * ind + d]) * i64::from(x[b * ind + d])).sum::<i64>();
                    let s = f64::from(in_s) * f64::from(ws[if ws.len() == 1 { 0 } else { o }]) / f64::from(out_s);
                    let want = ((acc as f64 * s).round() as i32).clamp(lo, hi);
                    prop_assert_eq!(i32::from(got[b * outd + o]), want);
                }
            }
        }

        #[test]
        fn average_pool_matches_reference(
            (g, x) in pool_geom().prop_flat_map(|g| (Just(g), vec_of(any::<i16>(), g.input_len()))),
            out_s in scale(), act in activation(),
        ) {
            let p = AvgPoolParams::prepare(TensorQuant::new(out_s, 0), act);
            let mut got = vec![0i16; g.output_len()];
            average_pool2d(&p, &g, &x, &mut got);
            let (lo, hi) = act_range(act, out_s, 0, -32768, 32767);
            for (i, taps) in ref_pool_windows(&g).iter().enumerate() {
                let n = taps.len() as i32;
                let sum: i32 = taps.iter().map(|&t| i32::from(x[t])).sum();
                // Halves away from zero: compare with the exact rational.
                let exact = f64::from(sum) / f64::from(n);
                let rounded = exact.round() as i32;
                prop_assert_eq!(i32::from(got[i]), rounded.clamp(lo, hi));
            }
        }

        #[test]
        fn mean_matches_reference(
            (shape, x) in (1..=2usize, 1..=9usize, 1..=9usize, 1..=4usize)
                .prop_flat_map(|(b, h, w, c)| (Just([b, h, w, c]), vec_of(any::<i16>(), b * h * w * c))),
            in_s in scale(), out_s in scale(),
        ) {
            let [batch, h, w, c] = shape;
            let p = MeanParams::prepare(TensorQuant::new(in_s, 0), TensorQuant::new(out_s, 0));
            let mut got = vec![0i16; batch * c];
            mean_hw(&p, shape, &x, &mut got);
            let n = (h * w) as i64;
            let m = quantize_multiplier(f64::from(in_s) / f64::from(out_s));
            let shift = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + m.shift);
            let mult = ((i64::from(m.multiplier) << shift) / n) as i32;
            for b in 0..batch {
                for ch in 0..c {
                    let sum: i64 = (0..h * w).map(|i| i64::from(x[(b * h * w + i) * c + ch])).sum();
                    let want = crate::kernels::fixedpoint::multiply_by_quantized_multiplier(sum as i32, mult, m.shift - shift).clamp(-32768, 32767);
                    prop_assert_eq!(i32::from(got[b * c + ch]), want);
                    // And it is the real mean to within a couple of units.
                    let real = sum as f64 / n as f64 * f64::from(in_s) / f64::from(out_s);
                    prop_assert!(real.abs() > 32000.0 || (f64::from(got[b * c + ch]) - real).abs() <= 2.0);
                }
            }
        }

        #[test]
        fn general_add_matches_reference(
            (a, b) in (1..=64usize).prop_flat_map(|n| (vec_of(any::<i16>(), n), vec_of(any::<i16>(), n))),
            s1 in scale(), s2 in scale(), so in scale(), act in activation(), pot_option in any::<bool>(),
        ) {
            // Random scales are (almost never) all powers of two: the general path, whatever the option.
            prop_assume!(crate::kernels::fixedpoint::checked_log2(s1).is_none());
            let p = AddParams::prepare(TensorQuant::new(s1, 0), TensorQuant::new(s2, 0), TensorQuant::new(so, 0), act, pot_option).unwrap();
            prop_assert!(matches!(p.kind, AddKind::General(_)));
            let mut got = vec![0i16; a.len()];
            add(&p, &a, &b, &mut got);
            let twice = f64::from(2.0 * s1.max(s2));
            let m1 = quantize_multiplier(f64::from(s1) / twice);
            let m2 = quantize_multiplier(f64::from(s2) / twice);
            let mo = quantize_multiplier(twice / f64::from((1 << 15) as f32 * so));
            let (lo, hi) = act_range(act, so, 0, -32768, 32767);
            let r = |x: i32, m: crate::kernels::fixedpoint::QuantizedMultiplier| {
                crate::kernels::fixedpoint::rounding_divide_by_pot(crate::kernels::fixedpoint::saturating_rounding_doubling_high_mul(x, m.multiplier), -m.shift)
            };
            for i in 0..a.len() {
                let sum = r(i32::from(a[i]) << 15, m1) + r(i32::from(b[i]) << 15, m2);
                prop_assert_eq!(i32::from(got[i]), r(sum, mo).clamp(lo, hi));
            }
        }

        #[test]
        fn pot_add_matches_reference(
            (a, b) in (1..=64usize).prop_flat_map(|n| (vec_of(any::<i16>(), n), vec_of(any::<i16>(), n))),
            lo in -15i32..-5, d in 0i32..4, swap in any::<bool>(), act in activation(),
        ) {
            let (mut l1, mut l2) = (lo, lo - d);
            if swap { core::mem::swap(&mut l1, &mut l2); }
            let s = |l: i32| 2f32.powi(l);
            let p = AddParams::prepare(TensorQuant::new(s(l1), 0), TensorQuant::new(s(l2), 0), TensorQuant::new(s(lo), 0), act, true).unwrap();
            let mut got = vec![0i16; a.len()];
            add(&p, &a, &b, &mut got);
            let (amin, amax) = act_range(act, s(lo), 0, -32768, 32767);
            for i in 0..a.len() {
                // The finer input is divided by 2^d, rounding halves away from zero; then a saturating add.
                let (ready, fine) = if l1 == lo { (a[i], b[i]) } else { (b[i], a[i]) };
                let scaled = (f64::from(fine) / f64::from(1 << d)).round() as i32;
                let want = (i32::from(ready) + scaled).clamp(-32768, 32767).clamp(amin, amax);
                prop_assert_eq!(i32::from(got[i]), want);
            }
        }

        #[test]
        fn softmax_is_close_to_the_real_softmax(
            (depth, x) in (1..=40usize).prop_flat_map(|d| (Just(d), vec_of(any::<i16>(), 2 * d))),
            in_s in (-14.0f32..-8.0).prop_map(|e| 2f32.powf(e)), beta in 0.5f32..2.0,
        ) {
            let p = SoftmaxParams::prepare(beta, TensorQuant::new(in_s, 0));
            let mut got = vec![0i16; x.len()];
            softmax(&p, depth, &x, &mut got);
            for (row, out) in x.chunks(depth).zip(got.chunks(depth)) {
                let max = row.iter().map(|&v| f64::from(v)).fold(f64::MIN, f64::max);
                let e: Vec<f64> = row.iter().map(|&v| {
                    let d = (f64::from(v) - max) * f64::from(in_s) * f64::from(beta);
                    // TFLite treats exp below -10 as the LUT's floor.
                    if d < -10.0 { 0.0 } else { d.exp() }
                }).collect();
                let sum: f64 = e.iter().sum();
                for (&ei, &o) in e.iter().zip(out) {
                    let want = ((ei / sum) * 32768.0).min(32767.0);
                    // The LUTs are accurate to a few units of 2^-15.
                    prop_assert!((f64::from(o) - want).abs() <= 40.0 + want * 0.002, "{o} vs {want}");
                }
            }
        }

        #[test]
        fn quantize_dequantize_requantize_match_their_definitions(
            xs in vec_of(-1000.0f32..1000.0, 1..64), qs in vec_of(any::<i16>(), 1..64),
            s in scale(), s2 in scale(), zp8 in -128..=127i32,
        ) {
            let mut q = vec![0i16; xs.len()];
            affine_quantize(&QuantizeParams::prepare(TensorQuant::new(s, 0)), &xs, &mut q);
            for (&x, &v) in xs.iter().zip(&q) {
                prop_assert_eq!(i32::from(v), ((x / s).round() as i64).clamp(-32768, 32767) as i32);
            }
            let mut f = vec![0f32; qs.len()];
            dequantize(&DequantizeParams::prepare(TensorQuant::new(s, 0)), &qs, &mut f);
            for (&v, &y) in qs.iter().zip(&f) {
                prop_assert_eq!(y, f32::from(v) * s);
            }
            let m = quantize_multiplier(f64::from(s) / f64::from(s2));
            let p = RequantizeParams::prepare(TensorQuant::new(s, 0), TensorQuant::new(s2, 0));
            let mut r16 = vec![0i16; qs.len()];
            requantize(&p, &qs, &mut r16);
            let p8 = RequantizeParams::prepare(TensorQuant::new(s, 0), TensorQuant::new(s2, zp8));
            let mut r8 = vec![0i8; qs.len()];
            requantize(&p8, &qs, &mut r8);
            for i in 0..qs.len() {
                let v = m.apply(i32::from(qs[i]));
                prop_assert_eq!(i32::from(r16[i]), v.clamp(-32768, 32767));
                prop_assert_eq!(i32::from(r8[i]), (v + zp8).clamp(-128, 127));
            }
        }
    }

    #[test]
    fn add_refuses_pot_scales_tflite_refuses() {
        // Both inputs finer than the output: TFLite's POT path needs one of them at the output scale.
        let q = |l: i32| TensorQuant::new(2f32.powi(l), 0);
        assert!(AddParams::prepare(q(-12), q(-11), q(-10), Activation::None, true).is_err());
        // An input coarser than the output would need a left shift.
        assert!(AddParams::prepare(q(-9), q(-10), q(-10), Activation::None, true).is_err());
        // With the option off the general path takes any scales.
        assert!(matches!(
            AddParams::prepare(q(-12), q(-11), q(-10), Activation::None, false).unwrap().kind,
            AddKind::General(_)
        ));
    }

    #[test]
    fn softmax_luts_have_tflite_endpoints() {
        let p = SoftmaxParams::prepare(1.0, TensorQuant::new(1.0 / 4096.0, 0));
        assert_eq!(p.exp_lut.len(), crate::kernels::fixedpoint::LUT_INT16_SIZE);
        // exp(-10) · 32768 ≈ 1.49 → 1 at the bottom, exp(0) clamped to 32767 at the top.
        assert_eq!(p.exp_lut[512], 32767);
        assert!(p.exp_lut[0] <= 2);
        // 1/(1+x): 1 at x = 0 (clamped), 0.5 at x = 1.
        assert_eq!(p.one_over_one_plus_x_lut[0], 32767);
        assert_eq!(p.one_over_one_plus_x_lut[512], 16384);
        // input_multiplier: (1/4096) · 1 / (10/65535) = 1.5999… = 0.7999… · 2^1.
        assert_eq!(p.input_multiplier.shift, 1);
    }
}
