//! Which kernel runs a layer: the one table, decided at plan time.
//!
//! A kernel is named `precision/loop/arch`, e.g. `int8/pointwise/simd128`:
//!
//! * the **loop** ([`ConvLoop`]) follows from the operator and its geometry alone, and fixes the
//!   layout the plan packs the filter in, so it is the same in every build and persisted with the
//!   plan: [`conv_loop`];
//! * the **arch** ([`Arch`]) is the build's: `simd128` where this table says the micro-kernel computes
//!   the same bits for those params ([`conv_arch`], [`add_arch`]), otherwise `scalar`. SIMD kernels
//!   have no fallbacks of their own, so whatever this table picks is what runs; `Plan::kernels`
//!   lists it and the dispatch test pins it for every layer of every golden model.

use super::generic::{self, AddRescale};
use super::stage::{Int8Stage, INT16_FLUSH_PAIRS};
use super::{int16, int8, ConvGeom, ConvLoop};

/// The instruction set a kernel is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    /// Portable Rust (what every build can run; auto-vectorised natively).
    Scalar,
    /// wasm `simd128` micro-kernels (`kernels::simd128`), in `dist/classifier-simd.wasm` only.
    Simd128,
}

impl Arch {
    /// What this build can run.
    pub const fn current() -> Arch {
        if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
            Arch::Simd128
        } else {
            Arch::Scalar
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Arch::Scalar => "scalar",
            Arch::Simd128 => "simd128",
        }
    }
}

/// A chosen convolution kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConvKernel {
    pub lp: ConvLoop,
    pub arch: Arch,
}

/// The loop for a convolution, and the geometry it runs with: a DEPTHWISE_CONV_2D of one input channel
/// is a CONV_2D with `in_c = 1` (the same products, added in the same filter row, column order), so
/// it takes the packed CONV_2D loop instead of the scalar depth-multiplier one (VWW's first layer has
/// multiplier 8); its geometry then has multiplier 1 and the plan transposes its filter.
pub fn conv_loop(depthwise: bool, g: &ConvGeom) -> (ConvLoop, ConvGeom) {
    if depthwise {
        let as_conv = ConvGeom { depth_multiplier: 1, ..*g };
        if g.in_c == 1 && generic::is_packable(&as_conv) {
            (ConvLoop::Packed, as_conv)
        } else if generic::is_channel_blocked(g) {
            (ConvLoop::Depthwise, *g)
        } else {
            (ConvLoop::DepthwiseGeneral, *g)
        }
    } else if generic::is_pointwise(g) {
        (ConvLoop::Pointwise, *g)
    } else if generic::is_packable(g) {
        (ConvLoop::Packed, *g)
    } else {
        (ConvLoop::Reference, *g)
    }
}

/// What a precision's convolution needs known to pick its arch.
pub enum ConvFacts<'a> {
    Fp32,
    Int8(&'a int8::ConvParams),
    Int16,
}

/// The arch a convolution runs on with `target` available: the SIMD micro-kernels cover the three
/// blocked loops in every precision, with two exceptions that take the scalar kernel —
/// int8 multipliers shifting right by more than 30 ([`Int8Stage::supports`]), and int16 packed filters
/// of more than `2 · INT16_FLUSH_PAIRS` taps x channels (their 32-bit partial sums could overflow).
pub fn conv_arch(facts: ConvFacts, lp: ConvLoop, g: &ConvGeom, target: Arch) -> Arch {
    if target == Arch::Scalar || matches!(lp, ConvLoop::Reference | ConvLoop::DepthwiseGeneral) {
        return Arch::Scalar;
    }
    let simd = match facts {
        ConvFacts::Fp32 => true,
        ConvFacts::Int8(p) => Int8Stage::supports(p),
        ConvFacts::Int16 => lp != ConvLoop::Packed || g.k_h * g.k_w * g.in_c <= 2 * INT16_FLUSH_PAIRS,
    };
    if simd {
        Arch::Simd128
    } else {
        Arch::Scalar
    }
}

/// Whether the general quantized ADD of `r` runs 16 lanes at a time: its three multipliers must shift
/// right by 0..=30 and its left shift fit a lane.
pub fn rescale_fits_simd(r: &AddRescale) -> bool {
    let right = |m: super::fixedpoint::QuantizedMultiplier| (0..=30).contains(&-m.shift);
    right(r.input1_multiplier)
        && right(r.input2_multiplier)
        && right(r.output_multiplier)
        && (0..32).contains(&r.left_shift)
}

/// What a precision's ADD needs known to pick its arch.
pub enum AddFacts<'a> {
    Fp32,
    Int8(&'a int8::AddParams),
    Int16(&'a int16::AddParams),
}

/// The arch of an ADD: SIMD for the general quantized path when [`rescale_fits_simd`]; float ADD and
/// int16's power-of-two path are scalar (auto-vectorised natively).
pub fn add_arch(facts: AddFacts, target: Arch) -> Arch {
    let simd = match facts {
        AddFacts::Fp32 => false,
        AddFacts::Int8(p) => rescale_fits_simd(&p.rescale),
        AddFacts::Int16(p) => matches!(&p.kind, int16::AddKind::General(r) if rescale_fits_simd(r)),
    };
    if simd && target == Arch::Simd128 {
        Arch::Simd128
    } else {
        Arch::Scalar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(k: usize, in_c: usize, out_c: usize, depth_multiplier: usize) -> ConvGeom {
        ConvGeom {
            batch: 1,
            in_h: 8,
            in_w: 8,
            in_c,
            out_h: 8,
            out_w: 8,
            out_c,
            k_h: k,
            k_w: k,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: k / 2,
            pad_left: k / 2,
            depth_multiplier,
        }
    }

    #[test]
    fn loops_follow_geometry() {
        assert_eq!(conv_loop(false, &geom(1, 32, 64, 1)).0, ConvLoop::Pointwise);
        assert_eq!(conv_loop(false, &geom(3, 3, 32, 1)).0, ConvLoop::Packed);
        assert_eq!(conv_loop(false, &geom(9, 3, 32, 1)).0, ConvLoop::Reference);
        assert_eq!(conv_loop(true, &geom(3, 32, 32, 1)).0, ConvLoop::Depthwise);
        assert_eq!(conv_loop(true, &geom(3, 4, 8, 2)).0, ConvLoop::DepthwiseGeneral);
        assert_eq!(conv_loop(true, &geom(9, 32, 32, 1)).0, ConvLoop::DepthwiseGeneral);
        // One input channel with multiplier 8: the packed CONV_2D loop, multiplier 1.
        let (lp, g) = conv_loop(true, &geom(3, 1, 8, 8));
        assert_eq!((lp, g.depth_multiplier), (ConvLoop::Packed, 1));
    }

    #[test]
    fn scalar_target_and_scalar_only_loops_stay_scalar() {
        for lp in [ConvLoop::Reference, ConvLoop::Packed, ConvLoop::Pointwise, ConvLoop::Depthwise] {
            assert_eq!(conv_arch(ConvFacts::Fp32, lp, &geom(3, 3, 8, 1), Arch::Scalar), Arch::Scalar);
        }
        assert_eq!(conv_arch(ConvFacts::Fp32, ConvLoop::Reference, &geom(9, 3, 8, 1), Arch::Simd128), Arch::Scalar);
        assert_eq!(
            conv_arch(ConvFacts::Int16, ConvLoop::DepthwiseGeneral, &geom(3, 4, 8, 2), Arch::Simd128),
            Arch::Scalar
        );
    }

    #[test]
    fn int16_packed_filters_past_the_flush_bound_are_scalar() {
        let small = geom(3, 28, 8, 1); // 252 taps x channels
        let large = geom(3, 29, 8, 1); // 261
        assert_eq!(conv_arch(ConvFacts::Int16, ConvLoop::Packed, &small, Arch::Simd128), Arch::Simd128);
        assert_eq!(conv_arch(ConvFacts::Int16, ConvLoop::Packed, &large, Arch::Simd128), Arch::Scalar);
        assert_eq!(
            conv_arch(ConvFacts::Int16, ConvLoop::Pointwise, &geom(1, 2000, 8, 1), Arch::Simd128),
            Arch::Simd128
        );
    }
}
