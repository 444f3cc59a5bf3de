//! The blocked (vectorisable) convolution paths against the scalar reference loops, bit for bit, in
//! every precision: `pointwise_conv2d` and `conv2d_packed` on packed filters vs `conv2d`, and the
//! channel-blocked depthwise vs `depthwise_conv2d_general`. Channel counts go past
//! [`generic::LANES`] so full blocks, partial blocks and the padded last block of a packed filter are
//! all exercised; float results must have the same bits because each output keeps TFLite's order of
//! additions.

use super::generic::{self, LANES};
use super::select::Arch;
use super::stage::Int8Stage;
use super::testutil::{activation, scale, vec_of};
use super::ConvLoop;
use super::{fp32, int16, int8, ConvGeom, ConvOp, Kernels, TensorQuant, F32, I16, I8};
use proptest::prelude::*;

/// Which blocked path a case exercises.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Depthwise,
    Pointwise,
    Packed,
}

/// A geometry for `kind` with up to ~3 blocks of channels, stride 1–2 (dilation 1–2 for k×k CONV_2D);
/// 1x1 without padding for pointwise.
fn geom(kind: Kind) -> impl Strategy<Value = ConvGeom> {
    ((1..=2usize, 1..=5usize, 1..=5usize, 1..=40usize, 1..=40usize), (1..=3usize, 1..=2usize, 0..=1usize, 1..=2usize))
        .prop_map(move |((batch, in_h, in_w, in_c, oc), (k, stride, pad, dilation))| {
            let depthwise = kind == Kind::Depthwise;
            let (k, pad) = if kind == Kind::Pointwise { (1, 0) } else { (k, pad.min(k - 1)) };
            let dilation = if kind == Kind::Packed { dilation } else { 1 };
            let in_c = if kind == Kind::Packed { in_c.min(12) } else { in_c };
            let extent = dilation * (k - 1) + 1;
            let out = |i: usize| (i + 2 * pad).saturating_sub(extent) / stride + 1;
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
                dilation_h: dilation,
                dilation_w: dilation,
                pad_top: pad,
                pad_left: pad,
                depth_multiplier: 1,
            }
        })
}

/// Runs one case as the plan runs it — the loop [`super::select::conv_loop`] picks for the geometry, the
/// filter packed for it, the arch [`Kernels::bind_conv`] picks for this build (simd128 when `cargo xtask
/// test` runs these tests in wasm32-wasip2 with simd128) — and the scalar reference loop; returns
/// (blocked, reference) outputs and the arch that ran.
// The conv signature's arguments plus the case's kind and fill values: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn both<K: Kernels>(
    p: &K::Conv,
    g: &ConvGeom,
    kind: Kind,
    x: &[K::Act],
    w: &[K::Weight],
    b: &[K::Bias],
    zero: K::Act,
) -> (Vec<K::Act>, Vec<K::Act>, Arch) {
    let (mut fast, mut slow) = (vec![zero; g.output_len()], vec![zero; g.output_len()]);
    let depthwise = kind == Kind::Depthwise;
    let (mut op, filter) = ConvOp::<K>::new(p.clone(), depthwise, g, w);
    let expected = match kind {
        // One input channel: the packed CONV_2D loop (see `conv_loop`).
        Kind::Depthwise if g.in_c == 1 => ConvLoop::Packed,
        Kind::Depthwise => ConvLoop::Depthwise,
        // A 1x1 filter drawn for the packed loop is the plan's pointwise case.
        Kind::Pointwise => ConvLoop::Pointwise,
        Kind::Packed if generic::is_pointwise(g) => ConvLoop::Pointwise,
        Kind::Packed => ConvLoop::Packed,
    };
    assert_eq!(op.kernel.lp, expected, "{g:?}");
    K::bind_conv(&mut op, &filter, Some(b), Arch::current());
    K::conv(&op, x, &filter, Some(b), &mut fast);
    if depthwise {
        generic::depthwise_conv2d_general(p, g, x, w, Some(b), &mut slow);
    } else {
        generic::conv2d(p, g, x, w, Some(b), &mut slow);
    }
    (fast, slow, op.kernel.arch)
}

fn filter_len(g: &ConvGeom, kind: Kind) -> usize {
    if kind == Kind::Depthwise {
        g.depthwise_filter_len()
    } else {
        g.conv_filter_len()
    }
}

/// Which blocked path, a geometry for it, and random tensors sized for it.
type Case<A, W, B> = (Kind, ConvGeom, Vec<A>, Vec<W>, Vec<B>);

fn case<A: std::fmt::Debug + Clone, W: std::fmt::Debug + Clone, B: std::fmt::Debug + Clone>(
    a: impl Strategy<Value = A> + Clone,
    w: impl Strategy<Value = W> + Clone,
    b: impl Strategy<Value = B> + Clone,
) -> impl Strategy<Value = Case<A, W, B>> {
    prop_oneof![Just(Kind::Depthwise), Just(Kind::Pointwise), Just(Kind::Packed)].prop_flat_map(move |kind| {
        let (a, w, b) = (a.clone(), w.clone(), b.clone());
        geom(kind).prop_flat_map(move |g| {
            (
                Just(kind),
                Just(g),
                vec_of(a.clone(), g.input_len()),
                vec_of(w.clone(), filter_len(&g, kind)),
                vec_of(b.clone(), g.out_c),
            )
        })
    })
}

/// Mostly values from `r`, sometimes the ones where float kernels can differ without changing a
/// finite sum: NaNs (two payloads), infinities (`inf · 0` and `inf − inf`
/// make NaNs inside a sum) and both zeros (`0.0 + -0.0` and the clamp's `-0.0 < 0.0`).
fn f32_or_special(r: core::ops::Range<f32>) -> impl Strategy<Value = f32> + Clone {
    prop_oneof![
        // Rare enough that most outputs of a case stay finite.
        2000 => r,
        1 => Just(f32::NAN),
        1 => Just(f32::from_bits(0xffc0_1234)),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        20 => Just(-0.0f32),
        20 => Just(0.0f32),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fp32_blocked_equals_reference(
        (kind, g, x, w, b) in case(f32_or_special(-4.0..4.0), f32_or_special(-1.0..1.0), f32_or_special(-2.0..2.0)),
        act in activation(),
    ) {
        let p = fp32::ConvParams::prepare(act);
        let (fast, slow, arch) = both::<F32>(&p, &g, kind, &x, &w, &b, 0.0);
        // A SIMD build that ran the scalar kernel would test nothing new.
        prop_assert_eq!(arch, Arch::current());
        // Bits, except a NaN's sign and payload: neither LLVM nor wasm (`nondeterministic NaN`
        // propagation) fixes those, so even the native build's two scalar paths may disagree on them.
        let bits = |v: &[f32]| v.iter().map(|v| if v.is_nan() { f32::NAN.to_bits() } else { v.to_bits() }).collect::<Vec<_>>();
        prop_assert_eq!(bits(&fast), bits(&slow));
    }

    #[test]
    fn int8_blocked_equals_reference(
        from_uint8 in any::<bool>(),
        (kind, g, x, w, b) in case(any::<i8>(), any::<i8>(), -5000i32..5000),
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
        let (fast, slow, arch) = both::<I8>(&p, &g, kind, &x, &w, &b, 0);
        if Int8Stage::supports(&p) {
            prop_assert_eq!(arch, Arch::current());
        }
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn int16_blocked_equals_reference(
        (kind, g, x, w, b) in case(any::<i16>(), any::<i8>(), -1_000_000i64..1_000_000),
        (in_s, out_s) in ((-16.0f32..-8.0).prop_map(|e| 2f32.powf(e)), (-12.0f32..-4.0).prop_map(|e| 2f32.powf(e))),
        act in activation(),
        seed_scales in vec_of(scale(), 40),
    ) {
        let p = int16::ConvParams::prepare(TensorQuant::new(in_s, 0), &seed_scales[..g.out_c], TensorQuant::new(out_s, 0), act);
        let (fast, slow, arch) = both::<I16>(&p, &g, kind, &x, &w, &b, 0);
        prop_assert_eq!(arch, Arch::current());
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
