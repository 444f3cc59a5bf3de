//! AVERAGE_POOL_2D, MEAN over H x W and PAD: window walks that leave the sum and the division to
//! the precision.

use super::QInt;
use crate::kernels::{PadParams, PoolGeom};

/// AVERAGE_POOL_2D: for every output element, folds the in-bounds window taps with `add` (row by row,
/// as TFLite does) and hands the sum and the number of taps to `average`.
pub fn average_pool2d<T: Copy, S: Copy>(
    g: &PoolGeom,
    input: &[T],
    output: &mut [T],
    zero: S,
    add: impl Fn(S, T) -> S,
    average: impl Fn(S, i32) -> T,
) {
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(output.len(), g.output_len());
    let PoolGeom { in_h, in_w, channels, out_h, out_w, .. } = *g;
    // The clamped window of TFLite: [start, end) of filter taps that land inside the input.
    let window = |o: usize, stride: usize, pad: usize, filter: usize, size: usize| {
        let origin = (o * stride) as isize - pad as isize;
        let start = (-origin).max(0) as usize;
        let end = (size as isize - origin).clamp(0, filter as isize) as usize;
        (origin, start, end.max(start))
    };
    for b in 0..g.batch {
        for oy in 0..out_h {
            let (y_origin, y_start, y_end) = window(oy, g.stride_h, g.pad_top, g.filter_h, in_h);
            for ox in 0..out_w {
                let (x_origin, x_start, x_end) = window(ox, g.stride_w, g.pad_left, g.filter_w, in_w);
                let count = ((y_end - y_start) * (x_end - x_start)) as i32;
                let out_base = ((b * out_h + oy) * out_w + ox) * channels;
                for c in 0..channels {
                    let mut sum = zero;
                    for fy in y_start..y_end {
                        let iy = (y_origin + fy as isize) as usize;
                        for fx in x_start..x_end {
                            let ix = (x_origin + fx as isize) as usize;
                            sum = add(sum, input[((b * in_h + iy) * in_w + ix) * channels + c]);
                        }
                    }
                    // TFLite fails the op on an empty window; geometry validation rules it out.
                    output[out_base + c] = average(sum, count.max(1));
                }
            }
        }
    }
}

/// TFLite's integer average of `n` taps summing to `sum` (`reference_integer_ops::AveragePool`, int8 and
/// int16): `(sum ± n/2) / n`, halves away from zero.
#[inline]
pub fn rounded_average(sum: i32, n: i32) -> i32 {
    if sum > 0 {
        (sum + n / 2) / n
    } else {
        (sum - n / 2) / n
    }
}

/// Quantized AVERAGE_POOL_2D (input and output share quantization, as TFLite requires): the int32 window
/// sum (wrapping, as C++'s int32 would), `average(sum, n)` — the precision's rounding —, the activation
/// clamp, the storage type.
pub fn quant_average_pool2d<T: QInt>(
    g: &PoolGeom,
    input: &[T],
    output: &mut [T],
    act_min: i32,
    act_max: i32,
    average: impl Fn(i32, i32) -> i32,
) {
    average_pool2d(
        g,
        input,
        output,
        0i32,
        |s, x| s.wrapping_add(x.to_i32()),
        |s, n| T::from_i32(average(s, n).clamp(act_min, act_max)),
    )
}

/// MEAN over H and W of an NHWC tensor of shape `[batch, h, w, c]` into `[batch, c]` (keep_dims is a
/// shape matter). Each output's sum runs over the input in memory order (h, then w), as TFLite's
/// `ReduceSumImpl` does; `finish` gets the sum and `h · w`.
pub fn mean_hw<T: Copy, S: Copy>(
    shape: [usize; 4],
    input: &[T],
    output: &mut [T],
    zero: S,
    add: impl Fn(S, T) -> S,
    finish: impl Fn(S) -> T,
) {
    let [batch, h, w, c] = shape;
    debug_assert_eq!(input.len(), batch * h * w * c);
    debug_assert_eq!(output.len(), batch * c);
    for b in 0..batch {
        for ch in 0..c {
            let mut sum = zero;
            for y in 0..h {
                for x in 0..w {
                    sum = add(sum, input[((b * h + y) * w + x) * c + ch]);
                }
            }
            output[b * c + ch] = finish(sum);
        }
    }
}

/// PAD / PADV2 with a constant over a 4-D tensor (`reference_ops::Pad` semantics: every output element
/// outside the copied input block is `p.value`).
pub fn pad<T: Copy>(p: &PadParams<T>, in_shape: [usize; 4], input: &[T], output: &mut [T]) {
    let out_shape = p.output_shape(in_shape);
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let [_, o1, o2, o3] = out_shape;
    let [_, i1, i2, i3] = in_shape;
    let [b0, b1, b2, b3] = p.before;
    let inside = |o: usize, before: usize, size: usize| o.checked_sub(before).filter(|&i| i < size);
    for n in 0..out_shape[0] {
        for y in 0..o1 {
            for x in 0..o2 {
                let row = &mut output[((n * o1 + y) * o2 + x) * o3..][..o3];
                let src = inside(n, b0, in_shape[0])
                    .zip(inside(y, b1, i1))
                    .zip(inside(x, b2, i2))
                    .map(|((n, y), x)| ((n * i1 + y) * i2 + x) * i3);
                match src {
                    None => row.fill(p.value),
                    Some(start) => {
                        row[..b3].fill(p.value);
                        row[b3..b3 + i3].copy_from_slice(&input[start..][..i3]);
                        row[b3 + i3..].fill(p.value);
                    }
                }
            }
        }
    }
}
