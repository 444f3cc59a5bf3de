//! fp32 micro-kernels: 1x1 and packed CONV_2D, DEPTHWISE_CONV_2D, each output's products added in
//! the portable kernel's order.

use core::arch::wasm32::*;

use super::load4;
use crate::kernels::generic::{self, MacStage, LANES};
use crate::kernels::stage::F32Stage;
use crate::kernels::ConvGeom;

/// The fp32 output stage of `MacStage::finish` for `fp32::ConvParams`, four channels at a time:
/// `acc + bias` (`+ 0.0` without a bias, which turns a `-0.0` sum into `+0.0` exactly like the scalar
/// code), then `pmax`/`pmin`, whose `a < b ? b : a` / `b < a ? b : a` are the scalar clamp's comparisons
/// (a NaN stays NaN, `-0.0` is not raised to a `0.0` bound), unlike the NaN-propagating `f32x4.min/max`.
struct Out<'a> {
    /// Padded to whole blocks ([`F32Stage`]).
    bias: &'a [f32],
    lo: v128,
    hi: v128,
}

impl<'a> Out<'a> {
    fn of(st: &'a F32Stage) -> Self {
        Self { bias: &st.bias, lo: f32x4_splat(st.lo), hi: f32x4_splat(st.hi) }
    }

    /// Finishes the LANES accumulators of `block` into `out` (its first `out.len()` channels).
    #[inline(always)]
    fn store16(&self, out: &mut [f32], v: &[v128; 4], block: usize) {
        let r: [v128; 4] = core::array::from_fn(|k| {
            f32x4_pmin(
                f32x4_pmax(
                    f32x4_add(v[k], load4(self.bias[4 * (4 * block + k)..][..4].try_into().expect("4 lanes"))),
                    self.lo,
                ),
                self.hi,
            )
        });
        let mut lanes = [0f32; LANES];
        let dst = match <&mut [f32; LANES]>::try_from(&mut *out) {
            Ok(out) => out,
            Err(_) => &mut lanes,
        };
        for (k, r) in r.into_iter().enumerate() {
            // SAFETY: `dst` is LANES = 16 f32, four vectors.
            unsafe { v128_store(dst.as_mut_ptr().add(4 * k).cast(), r) };
        }
        let n = out.len();
        if n < LANES {
            out.copy_from_slice(&lanes[..n]);
        }
    }
}

/// `acc + x · w` on four lanes: the product rounded, then the sum rounded (no fusing), operands in the
/// scalar code's order so even NaN payloads come out the same.
#[inline(always)]
fn mac_f32(acc: v128, x: v128, w: v128) -> v128 {
    f32x4_add(acc, f32x4_mul(x, w))
}

/// fp32 1x1 CONV_2D. The pair-interleaved packing of [`generic::pack_pointwise`] suits a widening dot
/// product, not float lanes (each output must add channel `2j` before `2j + 1`), so the weights are
/// first de-interleaved into `[block][in channel][LANES]`: one pass over the filter per call, against
/// one pass per pixel in the product. Then two pixels by 16 output channels at a time: 8 accumulators,
/// 2 input splats and a weight vector. Cranelift still moves 4 of the accumulators through the stack on
/// every channel; tiles of 8 channels or of one pixel avoid that but measured slower. Each
/// output adds its input channels in ascending order from `0.0`, as [`generic::pointwise_conv2d`] does.
pub fn pointwise(st: &F32Stage, g: &ConvGeom, input: &[f32], packed: &[f32], output: &mut [f32]) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let stage = Out::of(st);
    let pairs = in_c / 2;
    let mut weights = vec![0f32; packed.len()];
    for (src, dst) in packed.chunks_exact(in_c * LANES).zip(weights.chunks_exact_mut(in_c * LANES)) {
        for (s, d) in src[..pairs * 2 * LANES].chunks_exact(2 * LANES).zip(dst.chunks_exact_mut(2 * LANES)) {
            let (even, odd) = d.split_at_mut(LANES);
            for i in 0..LANES {
                even[i] = s[2 * i];
                odd[i] = s[2 * i + 1];
            }
        }
        let tail = pairs * 2 * LANES;
        dst[tail..].copy_from_slice(&src[tail..]);
    }
    generic::pointwise_groups(g, input, output, |rows, out| {
        for block in 0..out_c.div_ceil(LANES) {
            let ws = &weights[block * in_c * LANES..][..in_c * LANES];
            let oc0 = block * LANES;
            let lanes = LANES.min(out_c - oc0);
            for (half, out) in out.chunks_mut(2 * out_c).enumerate() {
                let x = [rows[2 * half].as_ptr(), rows[2 * half + 1].as_ptr()];
                let mut v = [[f32x4_splat(0.0); LANES / 4]; 2];
                for (ic, w) in ws.chunks_exact(LANES).enumerate() {
                    // SAFETY: `ic < in_c`, the length of each row; `w` is LANES = 16 f32, four vectors.
                    unsafe {
                        let xs = [v128_load32_splat(x[0].add(ic).cast()), v128_load32_splat(x[1].add(ic).cast())];
                        // `k` picks the k-th vector of both rows' accumulators and of the weights at once.
                        #[allow(clippy::needless_range_loop)]
                        for k in 0..LANES / 4 {
                            let wk = v128_load(w.as_ptr().add(4 * k).cast());
                            v[0][k] = mac_f32(v[0][k], xs[0], wk);
                            v[1][k] = mac_f32(v[1][k], xs[1], wk);
                        }
                    }
                }
                for (vp, out) in v.iter().zip(out.chunks_exact_mut(out_c)) {
                    stage.store16(&mut out[oc0..][..lanes], vp, block);
                }
            }
        }
    });
}

/// fp32 CONV_2D on a filter packed by [`generic::pack_conv`] (the 3x3 stem): per tap and input
/// channel, one input splat times 16 weights, in [`generic::conv2d_packed`]'s order.
pub fn conv_packed(st: &F32Stage, g: &ConvGeom, input: &[f32], packed: &[f32], output: &mut [f32]) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let stage = Out::of(st);
    let k = g.k_h * g.k_w * in_c;
    generic::packed_walk(g, output, |taps, out| {
        for (block, ws) in packed.chunks_exact(k * LANES).enumerate() {
            let mut v = [f32x4_splat(0.0); 4];
            for &(xo, wo) in taps {
                for (&x, w) in input[xo..][..in_c].iter().zip(ws[wo * LANES..][..in_c * LANES].chunks_exact(LANES)) {
                    let x = f32x4_splat(x);
                    for (kk, v) in v.iter_mut().enumerate() {
                        // SAFETY: `w` is LANES = 16 f32, four vectors.
                        *v = mac_f32(*v, x, unsafe { v128_load(w.as_ptr().add(4 * kk).cast()) });
                    }
                }
            }
            let oc0 = block * LANES;
            stage.store16(&mut out[oc0..][..LANES.min(out_c - oc0)], &v, block);
        }
    });
}

/// fp32 DEPTHWISE_CONV_2D (multiplier 1): per tap, 16 channels of `x · w` added to four accumulators,
/// taps in TFLite's order; a last partial block takes the scalar [`generic::depthwise_block`].
pub fn depthwise<S: MacStage<Act = f32, Weight = f32, Bias = f32>>(
    st: &F32Stage,
    s: &S,
    g: &ConvGeom,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let stage = Out::of(st);
    generic::depthwise_walk(g, output, |taps, c0, out| {
        if out.len() < LANES {
            return generic::depthwise_block_into(s, input, filter, bias, taps, c0, out);
        }
        let mut v = [f32x4_splat(0.0); 4];
        for &(xo, wo) in taps {
            let (xs, ws) = (&input[xo + c0..][..LANES], &filter[wo + c0..][..LANES]);
            for (k, v) in v.iter_mut().enumerate() {
                // SAFETY: both slices are LANES = 16 f32, four vectors each.
                let (x, w) =
                    unsafe { (v128_load(xs.as_ptr().add(4 * k).cast()), v128_load(ws.as_ptr().add(4 * k).cast())) };
                *v = mac_f32(*v, x, w);
            }
        }
        stage.store16(out, &v, c0 / LANES);
    });
}
