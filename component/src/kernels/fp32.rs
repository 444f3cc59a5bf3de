//! fp32 kernels. Each mirrors TFLite's float `reference_ops` kernel, including the order of additions
//! (so results are bit-identical to the reference wherever the platform's `expf` is), and the clamp
//! `min(max(x, lo), hi)` with C++'s comparison semantics.

use super::generic::{self, MacStage};
use super::{math, Activation, PoolGeom};
use crate::kernels::fixedpoint::activation_range_f32;

/// `ActivationFunctionWithMinMax`: `std::min(std::max(x, lo), hi)` (a NaN `x` stays NaN).
#[inline]
fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if hi < x {
        hi
    } else {
        x
    }
}

/// CONV_2D and DEPTHWISE_CONV_2D (`reference_ops::Conv` / `DepthwiseConv`, float): sum of products in
/// tap order, `+ bias` (0.0 without one), clamp.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvParams {
    pub act_min: f32,
    pub act_max: f32,
}

/// DEPTHWISE_CONV_2D has the same parameters as CONV_2D.
pub type DepthwiseConvParams = ConvParams;

impl ConvParams {
    pub fn prepare(activation: Activation) -> Self {
        let (act_min, act_max) = activation_range_f32(activation);
        Self { act_min, act_max }
    }
}

impl MacStage for ConvParams {
    type Act = f32;
    type Weight = f32;
    type Bias = f32;
    type Acc = f32;

    #[inline]
    fn zero(&self) -> f32 {
        0.0
    }

    #[inline]
    fn mac(&self, acc: f32, x: f32, w: f32) -> f32 {
        acc + x * w
    }

    #[inline]
    fn finish(&self, acc: f32, bias: Option<f32>, _ch: usize) -> f32 {
        clamp(acc + bias.unwrap_or(0.0), self.act_min, self.act_max)
    }
}

/// FULLY_CONNECTED (`reference_ops::FullyConnected`, float): same output stage as CONV_2D.
pub type FullyConnectedParams = ConvParams;

/// AVERAGE_POOL_2D (`reference_ops::AveragePool`, float): window sum / tap count, clamp.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AvgPoolParams {
    pub act_min: f32,
    pub act_max: f32,
}

impl AvgPoolParams {
    pub fn prepare(activation: Activation) -> Self {
        let (act_min, act_max) = activation_range_f32(activation);
        Self { act_min, act_max }
    }
}

pub fn average_pool2d(p: &AvgPoolParams, g: &PoolGeom, input: &[f32], output: &mut [f32]) {
    generic::average_pool2d(g, input, output, 0.0f32, |s, x| s + x, |s, n| clamp(s / n as f32, p.act_min, p.act_max))
}

/// MEAN over H and W (`reference_ops::Mean<float, float>`: sum in memory order, divided by `h · w`).
/// Nothing to prepare.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeanParams;

impl MeanParams {
    pub fn prepare() -> Self {
        Self
    }
}

/// `shape` is the NHWC input shape; output is `[batch, c]`.
pub fn mean_hw(_p: &MeanParams, shape: [usize; 4], input: &[f32], output: &mut [f32]) {
    let n = (shape[1] * shape[2]) as f32;
    generic::mean_hw(shape, input, output, 0.0f32, |s, x| s + x, |s| s / n)
}

/// ADD of two same-shape tensors (`reference_ops::Add`, float): `clamp(a + b)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AddParams {
    pub act_min: f32,
    pub act_max: f32,
}

impl AddParams {
    pub fn prepare(activation: Activation) -> Self {
        let (act_min, act_max) = activation_range_f32(activation);
        Self { act_min, act_max }
    }
}

pub fn add(p: &AddParams, input1: &[f32], input2: &[f32], output: &mut [f32]) {
    debug_assert!(input1.len() == output.len() && input2.len() == output.len());
    for ((o, &a), &b) in output.iter_mut().zip(input1).zip(input2) {
        *o = clamp(a + b, p.act_min, p.act_max);
    }
}

/// SOFTMAX (`reference_ops::Softmax`, float): `exp((x − max) · beta)`, summed in order, divided.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SoftmaxParams {
    pub beta: f32,
}

impl SoftmaxParams {
    pub fn prepare(beta: f32) -> Self {
        Self { beta }
    }
}

/// Softmax over the last dimension of length `depth` (rows = `input.len() / depth`).
pub fn softmax(p: &SoftmaxParams, depth: usize, input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    if depth == 0 {
        return;
    }
    for (row, out) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        // std::max(max, x) keeps `max` when x is NaN.
        let max = row.iter().fold(f32::MIN, |m, &x| if m < x { x } else { m });
        let mut sum = 0.0f32;
        for (o, &x) in out.iter_mut().zip(row) {
            *o = math::expf((x - max) * p.beta);
            sum += *o;
        }
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
}

/// PAD with 0.0 (TFLite's default pad value for float).
pub type PadParams = super::PadParams<f32>;

impl super::PadParams<f32> {
    pub fn prepare(before: [usize; 4], after: [usize; 4]) -> Self {
        Self { before, after, value: 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic::{conv2d, depthwise_conv2d, fully_connected, pad};
    use crate::kernels::testutil::{activation, conv_geom, pool_geom, ref_conv_acc, ref_pool_windows, vec_of};
    use crate::kernels::{ConvGeom, FcGeom};
    use proptest::prelude::*;

    fn bounds(act: Activation) -> (f32, f32) {
        match act {
            Activation::None => (f32::MIN, f32::MAX),
            Activation::Relu => (0.0, f32::MAX),
            Activation::Relu6 => (0.0, 6.0),
        }
    }

    fn conv_case(
        depthwise: bool,
    ) -> impl Strategy<Value = (ConvGeom, Vec<f32>, Vec<f32>, Option<Vec<f32>>, Activation)> {
        conv_geom(depthwise).prop_flat_map(move |g| {
            let flen = if depthwise { g.depthwise_filter_len() } else { g.conv_filter_len() };
            (
                Just(g),
                vec_of(-4.0f32..4.0, g.input_len()),
                vec_of(-1.0f32..1.0, flen),
                proptest::option::of(vec_of(-2.0f32..2.0, g.out_c)),
                activation(),
            )
        })
    }

    fn check_conv(depthwise: bool, (g, x, w, b, act): (ConvGeom, Vec<f32>, Vec<f32>, Option<Vec<f32>>, Activation)) {
        let p = ConvParams::prepare(act);
        let mut got = vec![0f32; g.output_len()];
        if depthwise {
            depthwise_conv2d(&p, &g, &x, &w, b.as_deref(), &mut got);
        } else {
            conv2d(&p, &g, &x, &w, b.as_deref(), &mut got);
        }
        let (lo, hi) = bounds(act);
        // Same order of float additions as TFLite: bit-identical.
        let acc32 = ref_conv_acc(&g, depthwise, 0f32, |a, xi, wi| a + x[xi] * w[wi]);
        // And close to the exact value.
        let acc64 = ref_conv_acc(&g, depthwise, 0f64, |a, xi, wi| a + f64::from(x[xi]) * f64::from(w[wi]));
        for (i, (&a32, &a64)) in acc32.iter().zip(&acc64).enumerate() {
            let bias = b.as_ref().map_or(0.0, |b| b[i % g.out_c]);
            let want = (a32 + bias).max(lo).min(hi);
            assert_eq!(got[i].to_bits(), want.to_bits(), "{g:?} output {i}");
            let exact = (a64 + f64::from(bias)).max(f64::from(lo)).min(f64::from(hi));
            assert!((f64::from(got[i]) - exact).abs() <= 1e-4 * (1.0 + exact.abs()));
        }
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
            (batch, ind, outd, x, w, bias) in (1..=3usize, 1..=40usize, 1..=6usize).prop_flat_map(|(b, i, o)| (
                Just(b), Just(i), Just(o), vec_of(-4.0f32..4.0, b * i), vec_of(-1.0f32..1.0, o * i), vec_of(-2.0f32..2.0, o))),
            act in activation(),
        ) {
            let p = FullyConnectedParams::prepare(act);
            let mut got = vec![0f32; batch * outd];
            fully_connected(&p, &FcGeom { batch, in_depth: ind, out_depth: outd }, &x, &w, Some(&bias), &mut got);
            let (lo, hi) = bounds(act);
            for b in 0..batch {
                for o in 0..outd {
                    let total = (0..ind).fold(0f32, |t, d| t + x[b * ind + d] * w[o * ind + d]);
                    prop_assert_eq!(got[b * outd + o].to_bits(), (total + bias[o]).max(lo).min(hi).to_bits());
                }
            }
        }

        #[test]
        fn average_pool_matches_reference(
            (g, x) in pool_geom().prop_flat_map(|g| (Just(g), vec_of(-8.0f32..8.0, g.input_len()))),
            act in activation(),
        ) {
            let mut got = vec![0f32; g.output_len()];
            average_pool2d(&AvgPoolParams::prepare(act), &g, &x, &mut got);
            let (lo, hi) = bounds(act);
            for (i, taps) in ref_pool_windows(&g).iter().enumerate() {
                let sum = taps.iter().fold(0f32, |s, &t| s + x[t]);
                prop_assert_eq!(got[i].to_bits(), (sum / taps.len() as f32).max(lo).min(hi).to_bits());
            }
        }

        #[test]
        fn mean_matches_reference(
            (shape, x) in (1..=2usize, 1..=9usize, 1..=9usize, 1..=4usize)
                .prop_flat_map(|(b, h, w, c)| (Just([b, h, w, c]), vec_of(-8.0f32..8.0, b * h * w * c))),
        ) {
            let [batch, h, w, c] = shape;
            let mut got = vec![0f32; batch * c];
            mean_hw(&MeanParams::prepare(), shape, &x, &mut got);
            for b in 0..batch {
                for ch in 0..c {
                    let sum = (0..h * w).fold(0f32, |s, i| s + x[(b * h * w + i) * c + ch]);
                    prop_assert_eq!(got[b * c + ch].to_bits(), (sum / (h * w) as f32).to_bits());
                }
            }
        }

        #[test]
        fn add_and_softmax_match_their_definitions(
            (depth, a, b) in (1..=40usize).prop_flat_map(|d| (Just(d), vec_of(-10.0f32..10.0, 3 * d), vec_of(-10.0f32..10.0, 3 * d))),
            act in activation(), beta in 0.25f32..2.0,
        ) {
            let mut sum = vec![0f32; a.len()];
            add(&AddParams::prepare(act), &a, &b, &mut sum);
            let (lo, hi) = bounds(act);
            for i in 0..a.len() {
                prop_assert_eq!(sum[i].to_bits(), (a[i] + b[i]).max(lo).min(hi).to_bits());
            }
            let mut sm = vec![0f32; a.len()];
            softmax(&SoftmaxParams::prepare(beta), depth, &a, &mut sm);
            for (row, out) in a.chunks(depth).zip(sm.chunks(depth)) {
                let max = row.iter().copied().fold(f64::MIN, |m, v| m.max(f64::from(v)));
                let e: Vec<f64> = row.iter().map(|&v| ((f64::from(v) - max) * f64::from(beta)).exp()).collect();
                let total: f64 = e.iter().sum();
                for (&ei, &o) in e.iter().zip(out) {
                    prop_assert!((f64::from(o) - ei / total).abs() <= 1e-6);
                }
            }
        }

        #[test]
        fn pad_matches_reference(
            (shape, x) in (1..=2usize, 1..=4usize, 1..=4usize, 1..=3usize)
                .prop_flat_map(|(b, h, w, c)| (Just([b, h, w, c]), vec_of(-1.0f32..1.0, b * h * w * c))),
            before in proptest::array::uniform4(0..=2usize), after in proptest::array::uniform4(0..=2usize),
        ) {
            let p = PadParams::prepare(before, after);
            let os = p.output_shape(shape);
            let mut got = vec![f32::NAN; os.iter().product()];
            pad(&p, shape, &x, &mut got);
            let mut i = 0;
            for n in 0..os[0] { for y in 0..os[1] { for xx in 0..os[2] { for c in 0..os[3] {
                let src = [n, y, xx, c];
                let inside = (0..4).all(|d| src[d] >= before[d] && src[d] - before[d] < shape[d]);
                let want = if inside {
                    let [a, b, cc, dd] = core::array::from_fn::<usize, 4, _>(|d| src[d] - before[d]);
                    x[((a * shape[1] + b) * shape[2] + cc) * shape[3] + dd]
                } else { 0.0 };
                prop_assert_eq!(got[i].to_bits(), want.to_bits());
                i += 1;
            }}}}
        }
    }

    #[test]
    fn clamp_keeps_nan_like_std_min_max() {
        assert!(clamp(f32::NAN, 0.0, 6.0).is_nan());
        assert_eq!(clamp(-1.0, 0.0, 6.0), 0.0);
        assert_eq!(clamp(7.0, 0.0, 6.0), 6.0);
    }
}
