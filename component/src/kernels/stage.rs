//! What the SIMD micro-kernels read, as plain data built once when a plan is bound (never per call):
//! per output channel, what [`MacStage::finish`](super::generic::MacStage::finish) derives from the
//! params, laid out the way a 16-lane kernel loads it, and the small filters (3x3 stem, depthwise)
//! widened to i16 the way the kernel multiplies them. Plain numbers, so they are built and tested in
//! every build, and the SIMD kernels depend on these types rather than on the precision modules.
//!
//! The 1x1 filters (97% of MobileNetV2's weights) are not kept widened: measured with every filter
//! prepared here (`bench --simd-only --baseline`, interleaved, 2026-12-02), 1x1 filters widened at
//! bind time ran 1.00-1.04x the per-call widening on both 224 int8 models and 0.96-1.06x in fp32
//! (de-interleaved), within this VM's A/A spread, while peak memory grew 24.9 -> 29.6 MB (int8) and
//! 44.3 -> 58.0 MB (fp32): reading twice the bytes from memory costs what widening in cache saves.

use super::fixedpoint::reduced_multiplier_i64;
use super::generic::{per_channel, LANES};
use super::{fp32, int16, int8, ConvGeom, ConvLoop};

/// The int8 output stage (bias, TFLite's per-channel `MultiplyByQuantizedMultiplier`, output offset,
/// clamp) for groups of four channels, plus the input and filter offsets the kernels add. Per group:
/// bias, `2^left_shift`, multiplier, `2^(30 − right_shift)` (a per-lane right shift, which simd128
/// lacks, as a widening multiply and a fixed shift), and the rounding mask and half of
/// `RoundingDivideByPOT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Stage {
    pub input_offset: i32,
    pub filter_offset: i32,
    pub output_offset: i32,
    pub act_min: i32,
    pub act_max: i32,
    /// `[group][bias, lmul, mult, pmul, mask, half][lane]`, `out_c` rounded up to whole blocks.
    pub groups: Vec<[[i32; 4]; 6]>,
    /// `Some(e)` when every channel shifts right by the same `e` (per-tensor models): the stage can
    /// then round once ([`super::fixedpoint::multiply_by_quantized_multiplier_one_rounding`]).
    pub uniform_right_shift: Option<u32>,
    /// Packed and depthwise loops: the filter as i16 with `filter_offset` added (exact: within ±255),
    /// in the packed order; for the depthwise loop followed by [`LANES`] zeros, so that a block of 16
    /// channels starting at any element loads whole. Empty for the 1x1 loop (see the module doc) and
    /// from [`Self::new`].
    pub weights: Vec<i16>,
    /// Depthwise loop only: `weights` with two taps interleaved per channel, `[tap pair][channel][2]`,
    /// channels padded to whole blocks, for the kernel that does two taps per `i32x4.dot_i16x8_s`.
    pub tap_pairs: Vec<i16>,
}

impl Int8Stage {
    /// Whether every channel's multiplier shifts right by at most 30 (a multiplier below 2^-31, which
    /// no real model has, cannot be expressed as `2^(30 − right_shift)`).
    pub fn supports(p: &int8::ConvParams) -> bool {
        p.multipliers.iter().all(|m| -m.shift <= 30)
    }

    /// `None` exactly when [`Self::supports`] is false.
    pub fn new(p: &int8::ConvParams, bias: Option<&[i32]>, out_c: usize) -> Option<Self> {
        if !Self::supports(p) || out_c == 0 {
            return None;
        }
        let blocks = out_c.div_ceil(LANES);
        let groups = (0..blocks * LANES)
            .step_by(4)
            .map(|c0| {
                let mut lanes = [[0i32; 4]; 6];
                for i in 0..4 {
                    // Padding lanes past `out_c` repeat the last channel; their results are never stored.
                    let ch = (c0 + i).min(out_c - 1);
                    let m = per_channel(&p.multipliers, ch);
                    let (left, right) = (m.shift.clamp(0, 31), (-m.shift).clamp(0, 31));
                    let mask = ((1i64 << right) - 1) as i32;
                    let column = [
                        bias.map_or(0, |b| b[ch]),
                        1i32.wrapping_shl(left as u32),
                        m.multiplier,
                        1 << (30 - right),
                        mask,
                        mask >> 1,
                    ];
                    for (lane, v) in lanes.iter_mut().zip(column) {
                        lane[i] = v;
                    }
                }
                lanes
            })
            .collect();
        let first = per_channel(&p.multipliers, 0).shift;
        let uniform_right_shift = (first <= 0 && (0..out_c).all(|ch| per_channel(&p.multipliers, ch).shift == first))
            .then_some((-first) as u32);
        Some(Self {
            uniform_right_shift,
            input_offset: p.input_offset,
            filter_offset: p.filter_offset,
            output_offset: p.output_offset,
            act_min: p.act_min,
            act_max: p.act_max,
            groups,
            weights: Vec::new(),
            tap_pairs: Vec::new(),
        })
    }

    /// The stage of a convolution whose `lp` loop reads `filter` (packed for that loop).
    pub fn for_conv(
        p: &int8::ConvParams,
        bias: Option<&[i32]>,
        lp: ConvLoop,
        g: &ConvGeom,
        filter: &[i8],
    ) -> Option<Self> {
        let mut st = Self::new(p, bias, g.out_c)?;
        let widen = || filter.iter().map(|&w| (i32::from(w) + p.filter_offset) as i16);
        match lp {
            ConvLoop::Packed => st.weights = widen().collect(),
            ConvLoop::Depthwise => {
                st.weights = widen().chain([0; LANES]).collect();
                st.tap_pairs = tap_pairs(&st.weights, g.k_h * g.k_w, g.in_c);
            }
            _ => {}
        }
        Some(st)
    }
}

/// `fw` (`[tap][channel]`, `c` channels) as `[tap pair][channel][2]` with channels padded to whole
/// blocks of [`LANES`]; a last unpaired tap is left out.
fn tap_pairs(fw: &[i16], taps: usize, c: usize) -> Vec<i16> {
    let cp = c.next_multiple_of(LANES);
    let mut paired = vec![0i16; taps / 2 * cp * 2];
    for (j, dst) in paired.chunks_exact_mut(cp * 2).enumerate() {
        for (ch, d) in dst[..2 * c].chunks_exact_mut(2).enumerate() {
            d[0] = fw[2 * j * c + ch];
            d[1] = fw[(2 * j + 1) * c + ch];
        }
    }
    paired
}

/// Pairs of input channels an int16 SIMD accumulator lane takes before it is widened to 64 bits: each
/// `dot_i16x8_s` lane adds at most 2 · 2^15 · 2^7 = 2^23, so 128 of them stay below 2^30.
pub const INT16_FLUSH_PAIRS: usize = 128;

/// The 16x8 output stage with each channel's bias, reduced multiplier and shift looked up once (simd128
/// has no per-lane 64-bit shift, so this one is applied per lane).
#[derive(Debug, Clone, PartialEq)]
pub struct Int16Stage {
    pub channels: Vec<(i64, i64, u32)>,
    pub min: i32,
    pub max: i32,
    /// Packed loop only: the filter sign-extended to i16 (the depthwise kernel extends its 16 weights
    /// in registers, one load where two would be needed; 1x1: see the module doc); else empty.
    pub weights: Vec<i16>,
}

impl Int16Stage {
    pub fn new(p: &int16::ConvParams, bias: Option<&[i64]>, out_c: usize) -> Self {
        let channels = (0..out_c)
            .map(|ch| {
                let m = per_channel(&p.multipliers, ch);
                let (rm, shift) = reduced_multiplier_i64(m.multiplier, m.shift);
                (bias.map_or(0, |b| b[ch]), rm, shift)
            })
            .collect();
        Self { channels, min: p.act_min, max: p.act_max, weights: Vec::new() }
    }

    /// The stage of a convolution whose `lp` loop reads `filter` (packed for that loop).
    pub fn for_conv(p: &int16::ConvParams, bias: Option<&[i64]>, lp: ConvLoop, g: &ConvGeom, filter: &[i8]) -> Self {
        let mut st = Self::new(p, bias, g.out_c);
        if lp == ConvLoop::Packed {
            st.weights = filter.iter().map(|&w| i16::from(w)).collect();
        }
        st
    }

    /// What `int16::ConvParams::finish` gives for accumulator `acc` of channel `ch`.
    #[inline(always)]
    pub fn finish(&self, acc: i64, ch: usize) -> i16 {
        let (bias, rm, shift) = self.channels[ch];
        let x = acc.wrapping_add(bias).wrapping_mul(rm).wrapping_add(1 << (shift - 1));
        ((x >> shift) as i32).clamp(self.min, self.max) as i16
    }
}

/// The fp32 output stage: the bias padded to whole blocks of [`LANES`] (0.0 in the padding, whose
/// results are never stored) and the activation bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Stage {
    pub bias: Vec<f32>,
    pub lo: f32,
    pub hi: f32,
}

impl F32Stage {
    pub fn new(p: &fp32::ConvParams, bias: Option<&[f32]>, out_c: usize) -> Self {
        let mut b = vec![0f32; out_c.div_ceil(LANES) * LANES];
        if let Some(bias) = bias {
            b[..out_c].copy_from_slice(&bias[..out_c]);
        }
        Self { bias: b, lo: p.act_min, hi: p.act_max }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fixedpoint::QuantizedMultiplier;
    use crate::kernels::generic::MacStage;
    use proptest::prelude::*;

    #[test]
    fn int8_stage_refuses_right_shifts_past_30() {
        let mut p = int8::ConvParams {
            input_offset: 0,
            filter_offset: 0,
            output_offset: 0,
            multipliers: vec![QuantizedMultiplier { multiplier: 1 << 30, shift: -30 }],
            act_min: -128,
            act_max: 127,
        };
        assert!(Int8Stage::new(&p, None, 3).is_some());
        p.multipliers.push(QuantizedMultiplier { multiplier: 1 << 30, shift: -31 });
        assert!(!Int8Stage::supports(&p));
        assert!(Int8Stage::new(&p, None, 3).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn int16_stage_equals_finish(
            multipliers in proptest::collection::vec(
                ((1i32 << 30)..=i32::MAX, -40..=10i32).prop_map(|(multiplier, shift)| QuantizedMultiplier { multiplier, shift }),
                1..=20,
            ),
            acc in proptest::collection::vec(prop_oneof![-(1i64 << 20)..=(1i64 << 20), any::<i64>()], 20),
            bias in proptest::collection::vec(any::<i64>(), 20),
            with_bias in any::<bool>(),
            range in (-32768..=32767i32, -32768..=32767i32),
        ) {
            let out_c = multipliers.len();
            let p = int16::ConvParams {
                multipliers,
                act_min: range.0.min(range.1),
                act_max: range.0.max(range.1),
            };
            let bias = with_bias.then_some(&bias[..out_c]);
            let stage = Int16Stage::new(&p, bias, out_c);
            for ch in 0..out_c {
                prop_assert_eq!(stage.finish(acc[ch], ch), p.finish(acc[ch], bias.map(|b| b[ch]), ch), "channel {}", ch);
            }
        }
    }
}
