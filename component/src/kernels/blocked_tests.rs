//! The blocked (vectorisable) convolution paths against the scalar reference loops, bit for bit, in
//! every precision: `pointwise_conv2d` on a packed filter vs `conv2d`, and the channel-blocked depthwise
//! vs `depthwise_conv2d_general`. Channel counts go past [`generic::LANES`] so full blocks, partial
//! blocks and the padded last block of a packed filter are all exercised; float results must have the
//! same bits because each output keeps TFLite's order of additions.

use super::generic::{self, MacStage, LANES};
use super::testutil::{activation, scale, vec_of};
use super::{fp32, int16, int8, ConvGeom, TensorQuant};
use proptest::prelude::*;

/// A 1x1 or k×k geometry with up to ~3 blocks of channels, stride 1–2, no padding for 1x1.
fn geom(depthwise: bool) -> impl Strategy<Value = ConvGeom> {
    ((1..=2usize, 1..=5usize, 1..=5usize, 1..=40usize, 1..=40usize), (1..=3usize, 1..=2usize, 0..=1usize)).prop_map(
        move |((batch, in_h, in_w, in_c, oc), (k, stride, pad))| {
            let (k, pad) = if depthwise { (k, pad.min(k - 1)) } else { (1, 0) };
            let out = |i: usize| (i + 2 * pad).saturating_sub(k) / stride + 1;
            ConvGeom {
                batch,
                in_h,
                in_w,
                in_c,
                out_h: out(in_h),
                out_w: out(in_w),
                out_c: if depthwise { in_c } else { oc },
                k_h: k,
                k_w: k,
                stride_h: stride,
                stride_w: stride,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: pad,
                pad_left: pad,
                depth_multiplier: 1,
            }
        },
    )
}

/// Runs both paths of one precision and returns (blocked, reference) outputs.
fn both<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    depthwise: bool,
    x: &[S::Act],
    w: &[S::Weight],
    b: &[S::Bias],
    pad: S::Weight,
    zero: S::Act,
) -> (Vec<S::Act>, Vec<S::Act>) {
    let (mut fast, mut slow) = (vec![zero; g.output_len()], vec![zero; g.output_len()]);
    if depthwise {
        generic::depthwise_conv2d_channels(s, g, x, w, Some(b), &mut fast);
        generic::depthwise_conv2d_general(s, g, x, w, Some(b), &mut slow);
    } else {
        assert!(generic::is_pointwise(g));
        let packed = generic::pack_pointwise(w, g.in_c, g.out_c, pad);
        generic::pointwise_conv2d(s, g, x, &packed, Some(b), &mut fast);
        generic::conv2d(s, g, x, w, Some(b), &mut slow);
    }
    (fast, slow)
}

fn filter_len(g: &ConvGeom, depthwise: bool) -> usize {
    if depthwise {
        g.depthwise_filter_len()
    } else {
        g.conv_filter_len()
    }
}

/// Which kernel (depthwise or pointwise), a geometry for it, and random tensors sized for it.
type Case<A, W, B> = (bool, ConvGeom, Vec<A>, Vec<W>, Vec<B>);

fn case<A: std::fmt::Debug + Clone, W: std::fmt::Debug + Clone, B: std::fmt::Debug + Clone>(
    a: impl Strategy<Value = A> + Clone,
    w: impl Strategy<Value = W> + Clone,
    b: impl Strategy<Value = B> + Clone,
) -> impl Strategy<Value = Case<A, W, B>> {
    any::<bool>().prop_flat_map(move |depthwise| {
        let (a, w, b) = (a.clone(), w.clone(), b.clone());
        geom(depthwise).prop_flat_map(move |g| {
            (
                Just(depthwise),
                Just(g),
                vec_of(a.clone(), g.input_len()),
                vec_of(w.clone(), filter_len(&g, depthwise)),
                vec_of(b.clone(), g.out_c),
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fp32_blocked_equals_reference(
        (depthwise, g, x, w, b) in case(-4.0f32..4.0, -1.0f32..1.0, -2.0f32..2.0),
        act in activation(),
    ) {
        let p = fp32::ConvParams::prepare(act);
        let (fast, slow) = both(&p, &g, depthwise, &x, &w, &b, 0.0, 0.0);
        prop_assert_eq!(fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), slow.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn int8_blocked_equals_reference(
        from_uint8 in any::<bool>(),
        (depthwise, g, x, w, b) in case(any::<i8>(), any::<i8>(), -5000i32..5000),
        (in_s, in_zp, out_s, out_zp, w_zp) in (scale(), -128..=127i32, scale(), -128..=127i32, -20..=20i32),
        act in activation(),
        seed_scales in vec_of(scale(), 40),
    ) {
        let scales: Vec<f32> = if from_uint8 { vec![seed_scales[0]] } else { seed_scales[..g.out_c].to_vec() };
        let p = int8::ConvParams::prepare(
            TensorQuant::new(in_s, in_zp),
            &scales,
            if from_uint8 { w_zp } else { 0 },
            TensorQuant::new(out_s, out_zp),
            act,
            from_uint8,
        );
        let (fast, slow) = both(&p, &g, depthwise, &x, &w, &b, 0, 0);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn int16_blocked_equals_reference(
        (depthwise, g, x, w, b) in case(any::<i16>(), any::<i8>(), -1_000_000i64..1_000_000),
        (in_s, out_s) in ((-16.0f32..-8.0).prop_map(|e| 2f32.powf(e)), (-12.0f32..-4.0).prop_map(|e| 2f32.powf(e))),
        act in activation(),
        seed_scales in vec_of(scale(), 40),
    ) {
        let p = int16::ConvParams::prepare(TensorQuant::new(in_s, 0), &seed_scales[..g.out_c], TensorQuant::new(out_s, 0), act);
        let (fast, slow) = both(&p, &g, depthwise, &x, &w, &b, 0, 0);
        prop_assert_eq!(fast, slow);
    }
}

/// Every weight lands in its own slot of the packed layout (pairs of input channels, then an odd
/// last one), and only the last block's padding is left over.
#[test]
fn pack_pointwise_layout() {
    for in_c in 1..=5 {
        let out_c = LANES + 2;
        let filter: Vec<i32> = (0..(in_c * out_c) as i32).collect();
        let packed = generic::pack_pointwise(&filter, in_c, out_c, -1);
        assert_eq!(packed.len(), 2 * in_c * LANES);
        for oc in 0..out_c {
            for ic in 0..in_c {
                assert_eq!(packed[generic::packed_index(in_c, oc, ic)], filter[oc * in_c + ic]);
            }
        }
        assert_eq!(packed.iter().filter(|&&v| v == -1).count(), in_c * (LANES - 2));
        // Channel pairs sit side by side for each output lane.
        if in_c >= 2 {
            assert_eq!(generic::packed_index(in_c, 1, 1), generic::packed_index(in_c, 1, 0) + 1);
        }
    }
}
