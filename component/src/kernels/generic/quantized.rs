//! What int8 and int16 compute the same way, written once over the storage type ([`QInt`]):
//! QUANTIZE / DEQUANTIZE / requantize, quantized PAD's `prepare`, the general ADD ([`AddRescale`]),
//! FULLY_CONNECTED's params and output stage, the conv multipliers and quantized MEAN.

use core::marker::PhantomData;

use super::pool::mean_hw;
use crate::kernels::fixedpoint::{
    activation_range_quantized, multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp, QuantizedMultiplier,
};
use crate::kernels::{Activation, PadParams, TensorQuant};

/// An integer storage type of quantized tensors.
pub trait QInt: Copy {
    const MIN: i32;
    const MAX: i32;
    fn to_i32(self) -> i32;
    /// `static_cast` of a value already clamped to `[MIN, MAX]` (out-of-range values are clamped).
    fn from_i32(v: i32) -> Self;
}

impl QInt for i8 {
    const MIN: i32 = i8::MIN as i32;
    const MAX: i32 = i8::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v.clamp(<Self as QInt>::MIN, <Self as QInt>::MAX) as i8
    }
}

impl QInt for i16 {
    const MIN: i32 = i16::MIN as i32;
    const MAX: i32 = i16::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v.clamp(<Self as QInt>::MIN, <Self as QInt>::MAX) as i16
    }
}

/// QUANTIZE float → int (`reference_ops::AffineQuantize`), the same for every integer storage type:
/// the output tensor's scale and zero point as stored in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantizeParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QuantizeParams {
    pub fn prepare(output: TensorQuant) -> Self {
        Self { scale: output.scale, zero_point: output.zero_point }
    }
}

/// QUANTIZE float → int (`reference_ops::AffineQuantize`): `round(x / scale)` in float (half away from
/// zero), plus the zero point and the clamp in double. NaN becomes 0 (C++ leaves it undefined).
pub fn affine_quantize<O: QInt>(p: &QuantizeParams, input: &[f32], output: &mut [O]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        let unclamped = f64::from((x / p.scale).round()) + f64::from(p.zero_point);
        let clamped = unclamped.max(f64::from(O::MIN)).min(f64::from(O::MAX));
        *o = O::from_i32(clamped as i32);
    }
}

/// DEQUANTIZE int → float (`reference_ops::Dequantize`), the same for every integer storage type: the
/// input tensor's scale and zero point as stored in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DequantizeParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl DequantizeParams {
    pub fn prepare(input: TensorQuant) -> Self {
        Self { scale: input.scale, zero_point: input.zero_point }
    }
}

/// DEQUANTIZE int → float (`reference_ops::Dequantize`): `(float)(scale · (q − zero_point))`, the
/// product in double.
pub fn dequantize<I: QInt>(p: &DequantizeParams, input: &[I], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &q) in output.iter_mut().zip(input) {
        *o = (f64::from(p.scale) * f64::from(q.to_i32() - p.zero_point)) as f32;
    }
}

/// QUANTIZE int → int (`reference_ops::Requantize`), the same for every pair of integer storage types:
/// `QuantizeMultiplier((double)s_in / (double)s_out)` and both zero points.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequantizeParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: QuantizedMultiplier,
}

impl RequantizeParams {
    pub fn prepare(input: TensorQuant, output: TensorQuant) -> Self {
        Self {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            multiplier: QuantizedMultiplier::new(f64::from(input.scale) / f64::from(output.scale)),
        }
    }
}

/// QUANTIZE int → int (`reference_ops::Requantize`): `MBQM(q − zp_in) + zp_out`, clamped. (TFLite's
/// int8↔uint8 "xor 0x80" fast path is the same function.)
pub fn requantize<I: QInt, O: QInt>(p: &RequantizeParams, input: &[I], output: &mut [O]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &q) in output.iter_mut().zip(input) {
        let v = p.multiplier.apply(q.to_i32().wrapping_sub(p.input_zero_point)).wrapping_add(p.output_zero_point);
        *o = O::from_i32(v);
    }
}

/// PAD / PADV2 of a quantized tensor: the pad value is the output zero point (TFLite's default for
/// quantized tensors), cast to the storage type.
impl<T: QInt> PadParams<T> {
    pub fn prepare(before: [usize; 4], after: [usize; 4], output_zero_point: i32) -> Self {
        Self { before, after, value: T::from_i32(output_zero_point) }
    }
}

/// The general quantized ADD of TFLite (`AddElementwise`, shared by int8 with `left_shift = 20` and by
/// the int16 general-scale path with `left_shift = 15`): both inputs are shifted left, rescaled to twice
/// the larger input scale, summed, and rescaled to the output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AddRescale {
    pub left_shift: i32,
    pub input1_offset: i32,
    pub input1_multiplier: QuantizedMultiplier,
    pub input2_offset: i32,
    pub input2_multiplier: QuantizedMultiplier,
    pub output_offset: i32,
    pub output_multiplier: QuantizedMultiplier,
    pub act_min: i32,
    pub act_max: i32,
}

impl AddRescale {
    /// ADD's `Prepare` for the general path (`add.cc`): `twice_max_input_scale = 2 · max(s1, s2)` (the
    /// max and the doubling in float), input multipliers `s_i / twice_max`, output multiplier
    /// `twice_max / (2^left_shift · s_out)` (that product in float), all through
    /// `QuantizeMultiplierSmallerThanOneExp`.
    pub fn prepare(
        left_shift: i32,
        input1: TensorQuant,
        input2: TensorQuant,
        output: TensorQuant,
        activation: Activation,
        qmin: i32,
        qmax: i32,
    ) -> crate::Result<Self> {
        let twice_max_input_scale = f64::from(2.0 * input1.scale.max(input2.scale));
        let real_input1 = f64::from(input1.scale) / twice_max_input_scale;
        let real_input2 = f64::from(input2.scale) / twice_max_input_scale;
        let real_output = twice_max_input_scale / f64::from((1i32 << left_shift) as f32 * output.scale);
        // TFLite's `TFLITE_CHECK_LT(double_multiplier, 1.)` aborts on these (found by fuzzing: an
        // output scale 2^left_shift times finer than the inputs'); refuse the model instead.
        let checked = |real: f64, what: &str| {
            if real > 0.0 && real < 1.0 {
                Ok(quantize_multiplier_smaller_than_one_exp(real))
            } else {
                Err(crate::Error::UnsupportedModel(format!(
                    "ADD {what} multiplier {real} (scales {} + {} -> {}) is outside (0, 1), which TFLite's Prepare requires",
                    input1.scale, input2.scale, output.scale
                )))
            }
        };
        let (act_min, act_max) = activation_range_quantized(activation, output.scale, output.zero_point, qmin, qmax);
        Ok(Self {
            left_shift,
            input1_offset: -input1.zero_point,
            input1_multiplier: checked(real_input1, "input 1")?,
            input2_offset: -input2.zero_point,
            input2_multiplier: checked(real_input2, "input 2")?,
            output_offset: output.zero_point,
            output_multiplier: checked(real_output, "output")?,
            act_min,
            act_max,
        })
    }

    /// One element: both inputs as stored (`i32` from `i8`/`i16`), clamped result.
    #[inline]
    pub fn add(&self, x1: i32, x2: i32) -> i32 {
        let scale = |x: i32, offset: i32, m: QuantizedMultiplier| {
            let shifted = (offset + x).wrapping_mul(1 << self.left_shift);
            multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, m.multiplier, m.shift)
        };
        let raw_sum = scale(x1, self.input1_offset, self.input1_multiplier).wrapping_add(scale(
            x2,
            self.input2_offset,
            self.input2_multiplier,
        ));
        let raw_output = multiply_by_quantized_multiplier_smaller_than_one_exp(
            raw_sum,
            self.output_multiplier.multiplier,
            self.output_multiplier.shift,
        )
        .wrapping_add(self.output_offset);
        raw_output.clamp(self.act_min, self.act_max)
    }

    /// [`Self::add`] over two same-shape tensors of storage type `T`.
    pub fn add_all<T: QInt>(&self, input1: &[T], input2: &[T], output: &mut [T]) {
        debug_assert!(input1.len() == output.len() && input2.len() == output.len());
        for ((o, &a), &b) in output.iter_mut().zip(input1).zip(input2) {
            *o = T::from_i32(self.add(a.to_i32(), b.to_i32()));
        }
    }
}

/// The value for channel `ch` of a per-channel list, or the single per-tensor value.
#[inline]
pub fn per_channel<T: Copy>(values: &[T], ch: usize) -> T {
    values[if values.len() == 1 { 0 } else { ch }]
}

/// FULLY_CONNECTED's requantization of the accumulator (after the bias), one entry per output channel
/// or a single per-tensor one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FcRequant {
    /// What TFLite ≥ 2.20 / LiteRT (ai-edge-litert 2.x) does in `kReference` (`reference_integer_ops::
    /// FullyConnected[PerChannel]` overloads taking float scales, "requant in float"):
    /// `(int32)round((double)acc · (double)s_in · (double)s_w / (double)s_out)`, halves away from zero.
    /// Holds that effective scale per channel.
    Float(Vec<f64>),
    /// Older TFLite: `MultiplyByQuantizedMultiplier` with multipliers from `Prepare` (per-tensor through
    /// `GetQuantizedConvolutionMultipler`, i.e. `(double)(s_in · s_w)` with the product in **float**;
    /// per-channel with the product in double).
    FixedPoint(Vec<QuantizedMultiplier>),
}

impl FcRequant {
    /// The float-requant scales: `(double)s_in · (double)s_w / (double)s_out` per filter scale.
    pub fn float(input_scale: f32, filter_scales: &[f32], output_scale: f32) -> Self {
        Self::Float(
            filter_scales.iter().map(|&w| f64::from(input_scale) * f64::from(w) / f64::from(output_scale)).collect(),
        )
    }

    /// The fixed-point multipliers of TFLite < 2.20's `Prepare`.
    pub fn fixed_point(input_scale: f32, filter_scales: &[f32], output_scale: f32) -> Self {
        let multipliers = if let [w] = filter_scales {
            vec![quantize_multiplier(f64::from(input_scale * w) / f64::from(output_scale))]
        } else {
            filter_scales
                .iter()
                .map(|&w| quantize_multiplier(f64::from(input_scale) * f64::from(w) / f64::from(output_scale)))
                .collect()
        };
        Self::FixedPoint(multipliers)
    }

    /// Rescale a 32-bit accumulator (int8 kernels).
    #[inline]
    pub fn apply_i32(&self, acc: i32, ch: usize) -> i32 {
        match self {
            Self::Float(scales) => (f64::from(acc) * per_channel(scales, ch)).round() as i32,
            Self::FixedPoint(ms) => per_channel(ms, ch).apply(acc),
        }
    }

    /// Rescale a 64-bit accumulator (16x8 kernels with int64 bias).
    #[inline]
    pub fn apply_i64(&self, acc: i64, ch: usize) -> i32 {
        match self {
            Self::Float(scales) => (acc as f64 * per_channel(scales, ch)).round() as i32,
            Self::FixedPoint(ms) => per_channel(ms, ch).apply_i64(acc),
        }
    }
}

/// FULLY_CONNECTED's quantized params, the same fields for int8 and 16x8: `−zp_in`, `−zp_w`, `zp_out`,
/// the [`FcRequant`] and the activation range over the storage type `T`. Each precision implements
/// [`MacStage`] (its accumulator and output stage) and its `prepare` on its own `QuantFcParams<T>`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantFcParams<T> {
    pub input_offset: i32,
    pub filter_offset: i32,
    pub output_offset: i32,
    pub requant: FcRequant,
    pub act_min: i32,
    pub act_max: i32,
    storage: PhantomData<T>,
}

impl<T: QInt> QuantFcParams<T> {
    /// The offsets from the zero points, the activation range from `CalculateActivationRangeQuantized`
    /// over `T`'s range, and the given requantization.
    pub fn with_requant(
        input: TensorQuant,
        filter_zero_point: i32,
        output: TensorQuant,
        activation: Activation,
        requant: FcRequant,
    ) -> Self {
        let (act_min, act_max) =
            activation_range_quantized(activation, output.scale, output.zero_point, T::MIN, T::MAX);
        Self {
            input_offset: -input.zero_point,
            filter_offset: -filter_zero_point,
            output_offset: output.zero_point,
            requant,
            act_min,
            act_max,
            storage: PhantomData,
        }
    }
}

/// `PopulateConvolutionQuantizationParams`' per-channel multipliers (int8 and 16x8 CONV_2D /
/// DEPTHWISE_CONV_2D): one per filter scale from `(double)s_in · (double)s_w / (double)s_out` (a single
/// filter scale is the per-tensor case).
pub fn conv_multipliers(input: TensorQuant, filter_scales: &[f32], output: TensorQuant) -> Vec<QuantizedMultiplier> {
    filter_scales
        .iter()
        .map(|&w| QuantizedMultiplier::new(f64::from(input.scale) * f64::from(w) / f64::from(output.scale)))
        .collect()
}

/// The multiplier MEAN uses after `Prepare`'s `QuantizeMultiplier(s_in / s_out)`: TFLite's
/// `QuantizedMeanOrSum` folds `1 / num_elements` into it at eval time — `shift = floor(log2 n)` capped
/// at 32 and at `31 + shift`, `multiplier = (multiplier << shift) / n` (integer division), shift reduced.
pub fn mean_multiplier(m: QuantizedMultiplier, num_elements: usize) -> QuantizedMultiplier {
    let n = num_elements as i64;
    if n <= 0 {
        return m;
    }
    let shift = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + m.shift).max(0);
    QuantizedMultiplier { multiplier: ((i64::from(m.multiplier) << shift) / n) as i32, shift: m.shift - shift }
}

/// Quantized MEAN's output stage (`QuantizedMeanOrSum`, `compute_sum = false`): the int32 sum minus
/// `zp_in · n` (computed in 64 bits, truncated to 32), rescaled with the 32-bit
/// `MultiplyByQuantizedMultiplier`, plus `zp_out`, clamped by the caller's storage type.
#[inline]
pub fn mean_output(
    sum: i32,
    num_elements: usize,
    input_zero_point: i32,
    m: QuantizedMultiplier,
    output_zero_point: i32,
) -> i32 {
    let shifted_sum = (i64::from(sum) - i64::from(input_zero_point) * num_elements as i64) as i32;
    m.apply(shifted_sum).wrapping_add(output_zero_point)
}

/// Quantized MEAN over H and W, the same for every integer storage type (`reduce.cc`'s `kReference`
/// path, `EvalQuantizedMean` → `reference_ops::QuantizedMeanOrSum`): the multiplier
/// `QuantizeMultiplier(s_in / s_out)` is prepared here and `1/(h·w)` is folded into it at run time
/// ([`mean_multiplier`]). This path has no special case for equal input/output quantization.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantMeanParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: QuantizedMultiplier,
}

impl QuantMeanParams {
    pub fn prepare(input: TensorQuant, output: TensorQuant) -> Self {
        Self {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            multiplier: QuantizedMultiplier::new(f64::from(input.scale) / f64::from(output.scale)),
        }
    }
}

/// Quantized MEAN over H and W: int32 sum (wrapping, as C++'s int32 would), then [`mean_output`] and
/// the storage type's clamp. `shape` is the NHWC input shape; output is `[batch, c]`.
pub fn quant_mean_hw<T: QInt>(p: &QuantMeanParams, shape: [usize; 4], input: &[T], output: &mut [T]) {
    let n = shape[1] * shape[2];
    let m = mean_multiplier(p.multiplier, n);
    mean_hw(
        shape,
        input,
        output,
        0i32,
        |s, x| s.wrapping_add(x.to_i32()),
        |s| T::from_i32(mean_output(s, n, p.input_zero_point, m, p.output_zero_point)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_multiplier_folds_the_element_count() {
        // s_in / s_out = 1 → (2^30, 1); n = 49: shift = floor(log2 49) = 5, multiplier = 2^35 / 49.
        let m = mean_multiplier(QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }, 49);
        assert_eq!(m, QuantizedMultiplier { multiplier: ((1i64 << 35) / 49) as i32, shift: -4 });
        // A sum of 49 · 100 then means 100.
        assert_eq!(m.apply(4900), 100);
        // The shift is capped at 31 + shift so the result stays a valid multiplier.
        let m = mean_multiplier(QuantizedMultiplier { multiplier: 1 << 30, shift: -30 }, 1 << 10);
        assert_eq!(m.shift, -31);
    }

    #[test]
    fn fc_fixed_point_per_tensor_multiplies_scales_in_float() {
        let (s_in, s_w, s_out) = (0.1f32, 0.3f32, 0.7f32);
        let FcRequant::FixedPoint(ms) = FcRequant::fixed_point(s_in, &[s_w], s_out) else { unreachable!() };
        assert_eq!(ms, vec![quantize_multiplier(f64::from(s_in * s_w) / f64::from(s_out))]);
        let FcRequant::FixedPoint(ms) = FcRequant::fixed_point(s_in, &[s_w, s_w], s_out) else { unreachable!() };
        assert_eq!(ms[1], quantize_multiplier(f64::from(s_in) * f64::from(s_w) / f64::from(s_out)));
        // Float requant rounds halves away from zero: 5 · 0.5 = 2.5 → 3, −2.5 → −3.
        let r = FcRequant::Float(vec![0.5]);
        assert_eq!((r.apply_i32(5, 0), r.apply_i32(-5, 0), r.apply_i64(-5, 3)), (3, -3, -3));
    }

    #[test]
    fn add_rescale_of_equal_scales_is_a_plain_sum() {
        let q = TensorQuant::new(0.05, 3);
        let a = AddRescale::prepare(20, q, q, TensorQuant::new(0.05, 3), Activation::None, -128, 127).unwrap();
        assert_eq!(a.input1_multiplier, QuantizedMultiplier { multiplier: 1 << 30, shift: 0 });
        // (10 − 3) + (20 − 3) + 3 = 27.
        assert_eq!(a.add(10, 20), 27);
    }
}
