//! Pillow's bilinear resize, bit for bit, fed one source row at a time: a decoder that hands out rows
//! never has to hold the whole image, only the intermediate of the first pass (`out_w x in_h` or
//! `in_w x out_h`, the rows or columns the second pass reads), as Pillow's own buffers are.

use std::ops::Range;

use crate::error::{Error, Result};

use super::check_size;

// // Why not fast_image_resize (used before): its convolution is the same filter but with ≤15-bit
// fixed-point weights where Pillow uses 22 bits, so ~0.3% of the resized values came out 1 level off
// (up to 2; 4.3% of the values of resized_cat.bmp 224→160). That was enough to flip the top-1 of two
// low-confidence photos (dragonfly.bmp, imprinting_dog_test_0.bmp on dog_breeds int8). Reproducing
// Pillow's arithmetic makes the resize exact, so BMP/PNG inputs equal the golden tensors.
//
// Pillow (`ImagingResample`, 8-bit path) resizes in two separable 1-D passes, rounding to u8 in
// between. Per output coordinate of an axis: `scale = in / out`, the triangle filter (support 1)
// widened by `max(scale, 1)`, taps `[trunc(center - support + 0.5), trunc(center + support + 0.5))`
// clipped to the image, weights normalized to sum 1 in f64 and then rounded to fixed point with
// `PRECISION_BITS` fraction bits. Each pass accumulates in i32 from `1 << (PRECISION_BITS - 1)` and
// clips `acc >> PRECISION_BITS` to 0..=255. A pass whose dimension does not change is skipped.

/// Fraction bits of Pillow's 8-bit resampling weights: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// The filter of one axis: output coordinate `i` reads source taps `bounds[i].0 ..` (`bounds[i].1` of
/// them) with the fixed-point weights `weights[i * ksize ..][.. bounds[i].1]`.
struct Axis {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

/// Pillow's bilinear (triangle) filter.
#[inline]
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

impl Axis {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole source range `0..in_size`
    /// (in and out sizes ≥ 1). The f64 operations are Pillow's, in Pillow's order.
    fn bilinear(in_size: usize, out_size: usize) -> Axis {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the triangle's support (1.0) widened when shrinking
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for (i, out) in weights.chunks_exact_mut(ksize).enumerate() {
            let center = (i as f64 + 0.5) * scale;
            // `as` truncates toward zero like C's (int) cast; both ends are clipped to the image.
            let first = ((center - support + 0.5) as i64).max(0);
            let end = ((center + support + 0.5) as i64).min(in_size as i64);
            // Never more than ksize taps (2 * support + 1 spans at most that many integers).
            let len = (end - first).clamp(0, ksize as i64) as usize;
            let mut total = 0.0;
            for (x, w) in w[..len].iter_mut().enumerate() {
                *w = triangle(((first + x as i64) as f64 - center + 0.5) * ss);
                total += *w;
            }
            for (k, &w) in out.iter_mut().zip(&w[..len]) {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * (1u32 << PRECISION_BITS) as f64;
                *k = if w < 0.0 { (scaled - 0.5) as i32 } else { (scaled + 0.5) as i32 };
            }
            bounds.push((first as usize, len));
        }
        Axis { ksize, bounds, weights }
    }

    /// The source range this axis reads (Pillow crops the intermediate image to it).
    fn span(&self) -> Range<usize> {
        let first = self.bounds.iter().map(|b| b.0).min().unwrap_or(0);
        let end = self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
        first..end.max(first)
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (first, len) = self.bounds[i];
        (first, &self.weights[i * self.ksize..][..len])
    }
}

/// Pillow's `clip8`: the accumulator's integer part, clipped to a u8.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

// Overflow: weights are ≥ 0 and each is rounded up by at most 0.5, so an accumulator stays below
// HALF + 255 * (2^22 + ksize / 2) < 1.08e9 for ksize ≤ 2 * MAX_DIMENSION + 1: i32 is enough, as in Pillow.

/// Horizontal pass: rows `rows` of `src` (`src_w` pixels of `C` channels each), whose leftmost stored
/// column is source column `col_offset`, into `dst` (`axis.bounds.len()` pixels per row).
fn horizontal<const C: usize>(
    src: &[u8],
    src_w: usize,
    rows: Range<usize>,
    col_offset: usize,
    axis: &Axis,
    dst: &mut [u8],
) {
    let out_w = axis.bounds.len();
    for (dst_row, y) in dst.chunks_exact_mut(out_w * C).zip(rows) {
        let src_row = &src[y * src_w * C..][..src_w * C];
        for (x, px) in dst_row.chunks_exact_mut(C).enumerate() {
            let (first, k) = axis.taps(x);
            let taps = &src_row[(first - col_offset) * C..][..k.len() * C];
            let mut acc = [HALF; C];
            for (t, &k) in taps.chunks_exact(C).zip(k) {
                for c in 0..C {
                    acc[c] += t[c] as i32 * k;
                }
            }
            for c in 0..C {
                px[c] = clip8(acc[c]);
            }
        }
    }
}

/// Vertical pass: columns `cols` of `src` (`src_w` pixels of `channels` each per row), whose top stored
/// row is source row `row_offset`, into `dst` (`cols.len()` pixels per row, `axis.bounds.len()` rows).
fn vertical(
    src: &[u8],
    src_w: usize,
    channels: usize,
    cols: Range<usize>,
    row_offset: usize,
    axis: &Axis,
    dst: &mut [u8],
) {
    let row_len = cols.len() * channels;
    if row_len == 0 {
        return;
    }
    let mut acc = vec![0i32; row_len];
    for (y, dst_row) in dst.chunks_exact_mut(row_len).enumerate() {
        let (first, k) = axis.taps(y);
        acc.fill(HALF);
        for (t, &k) in k.iter().enumerate() {
            let row = (first - row_offset + t) * src_w + cols.start;
            for (a, &p) in acc.iter_mut().zip(&src[row * channels..][..row_len]) {
                *a += p as i32 * k;
            }
        }
        for (d, &a) in dst_row.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
}

/// Vertical pass fed row by row: the output rows whose taps include the current source row each keep
/// an accumulator, finished (clipped to u8) at their last tap. Taps are in source order, as in
/// [`vertical`], and integer sums do not depend on order anyway, so the result is the same bits.
struct VStream {
    axis: Axis,
    cols: Range<usize>,
    channels: usize,
    /// Output rows started and not finished, in order (their tap windows start and end in order).
    open: std::collections::VecDeque<(usize, Vec<i32>)>,
    /// Accumulators of finished rows, reused.
    spare: Vec<Vec<i32>>,
    next: usize,
    dst: Vec<u8>,
}

impl VStream {
    fn new(axis: Axis, cols: Range<usize>, channels: usize) -> VStream {
        let dst = vec![0u8; cols.len() * channels * axis.bounds.len()];
        VStream { axis, cols, channels, open: Default::default(), spare: Vec::new(), next: 0, dst }
    }

    /// Source row `y` (whole rows, `channels` per pixel), in order.
    fn push(&mut self, y: usize, row: &[u8]) {
        let row_len = self.cols.len() * self.channels;
        while self.next < self.axis.bounds.len() && self.axis.bounds[self.next].0 <= y {
            let mut acc = self.spare.pop().unwrap_or_default();
            acc.clear();
            acc.resize(row_len, HALF);
            self.open.push_back((self.next, acc));
            self.next += 1;
        }
        let src = &row[self.cols.start * self.channels..][..row_len];
        for (i, acc) in self.open.iter_mut() {
            let (first, k) = self.axis.taps(*i);
            if let Some(&k) = k.get(y - first) {
                for (a, &p) in acc.iter_mut().zip(src) {
                    *a += p as i32 * k;
                }
            }
        }
        while let Some((i, _)) = self.open.front() {
            let (first, len) = self.axis.bounds[*i];
            if first + len > y + 1 {
                break;
            }
            let (i, acc) = self.open.pop_front().expect("front exists");
            for (d, &a) in self.dst[i * row_len..][..row_len].iter_mut().zip(&acc) {
                *d = clip8(a);
            }
            self.spare.push(acc);
        }
    }

    /// The pass's output; rows never reached (a window past the last source row) are finished too.
    fn finish(mut self) -> Vec<u8> {
        let row_len = self.cols.len() * self.channels;
        while self.next < self.axis.bounds.len() {
            self.open.push_back((self.next, vec![HALF; row_len]));
            self.next += 1;
        }
        for (i, acc) in std::mem::take(&mut self.open) {
            for (d, &a) in self.dst[i * row_len..][..row_len].iter_mut().zip(&acc) {
                *d = clip8(a);
            }
        }
        self.dst
    }
}

/// What the resize does with each source row, decided by the sizes as Pillow decides.
enum Stage {
    /// Same size: Pillow returns a copy.
    Copy(Vec<u8>),
    /// Only the width changes: each row resized on arrival.
    Across { axis: Axis, dst: Vec<u8> },
    /// Only the height changes, or it shrinks more than twice as much as the width: vertical first.
    Down { v: VStream, across: Option<(Axis, Range<usize>)> },
    /// Horizontal first: the rows the vertical pass reads, resized on arrival.
    AcrossThenDown { across: Axis, down: Axis, rows: Range<usize>, tmp: Vec<u8> },
}

/// Pillow 13's `Image.resize((width, height), Image.BILINEAR)` of a `src_w` x `src_h` image with
/// `channels` (1 or 3) u8 channels, fed its rows top to bottom with [`Resizer::push_row`].
pub struct Resizer {
    src_w: usize,
    channels: usize,
    width: usize,
    y: usize,
    stage: Stage,
}

impl Resizer {
    pub fn new(src_w: u32, src_h: u32, channels: u32, width: u32, height: u32) -> Result<Resizer> {
        check_size(width, height, channels)?;
        if src_w == 0 || src_h == 0 {
            return Err(Error::InvalidInput(format!("cannot resize a {src_w}x{src_h} image")));
        }
        let (sw, sh, w, h, c) = (src_w as usize, src_h as usize, width as usize, height as usize, channels as usize);
        let stage = match (w != sw, h != sh) {
            (false, false) => Stage::Copy(Vec::with_capacity(sw * sh * c)),
            (true, false) => Stage::Across { axis: Axis::bilinear(sw, w), dst: Vec::with_capacity(w * sh * c) },
            (false, true) => Stage::Down { v: VStream::new(Axis::bilinear(sh, h), 0..sw, c), across: None },
            (true, true) => {
                let (across, down) = (Axis::bilinear(sw, w), Axis::bilinear(sh, h));
                // Pillow 13 goes vertical-first iff the height shrinks by more than twice as much as the
                // width (older Pillow: always horizontal-first). The order changes ~17% of the values by one
                // level. The intermediate keeps only the rows (columns) the second pass reads, as Pillow's.
                let (shrink_h, shrink_w) = (sh as i64 - h as i64, sw as i64 - w as i64);
                if shrink_h > 0 && shrink_h > 2 * shrink_w {
                    let cols = across.span();
                    Stage::Down { v: VStream::new(down, cols.clone(), c), across: Some((across, cols)) }
                } else {
                    let rows = down.span();
                    let tmp = Vec::with_capacity(rows.len() * w * c);
                    Stage::AcrossThenDown { across, down, rows, tmp }
                }
            }
        };
        Ok(Resizer { src_w: sw, channels: c, width: w, y: 0, stage })
    }

    /// The next source row (`src_w * channels` bytes).
    pub fn push_row(&mut self, row: &[u8]) {
        debug_assert_eq!(row.len(), self.src_w * self.channels);
        let (y, c, w) = (self.y, self.channels, self.width);
        self.y += 1;
        let across = |axis: &Axis, dst: &mut Vec<u8>| {
            let at = dst.len();
            dst.resize(at + w * c, 0);
            match c {
                1 => horizontal::<1>(row, row.len(), 0..1, 0, axis, &mut dst[at..]),
                _ => horizontal::<3>(row, row.len() / 3, 0..1, 0, axis, &mut dst[at..]),
            }
        };
        match &mut self.stage {
            Stage::Copy(dst) => dst.extend_from_slice(row),
            Stage::Across { axis, dst } => across(axis, dst),
            Stage::Down { v, .. } => v.push(y, row),
            Stage::AcrossThenDown { across: axis, rows, tmp, .. } if rows.contains(&y) => across(axis, tmp),
            Stage::AcrossThenDown { .. } => {}
        }
    }

    /// The resized `width x height` image, once every source row was pushed.
    pub fn finish(self) -> Vec<u8> {
        let c = self.channels;
        match self.stage {
            Stage::Copy(dst) | Stage::Across { dst, .. } => dst,
            Stage::Down { v, across: None } => v.finish(),
            Stage::Down { v, across: Some((axis, cols)) } => {
                let h = v.axis.bounds.len();
                let tmp = v.finish();
                let mut dst = vec![0u8; axis.bounds.len() * h * c];
                match c {
                    1 => horizontal::<1>(&tmp, cols.len(), 0..h, cols.start, &axis, &mut dst),
                    _ => horizontal::<3>(&tmp, cols.len(), 0..h, cols.start, &axis, &mut dst),
                }
                dst
            }
            Stage::AcrossThenDown { down, rows, tmp, .. } => {
                let mut dst = vec![0u8; self.width * down.bounds.len() * c];
                vertical(&tmp, self.width, c, 0..self.width, rows.start, &down, &mut dst);
                dst
            }
        }
    }
}

/// Resize HWC u8 pixels (`channels` 1 or 3) from `src_w` x `src_h` to `width` x `height` exactly as
/// Pillow 13's `Image.resize((width, height), Image.BILINEAR)` does (see `golden/README.md`).
pub fn resize_bilinear(src: &[u8], src_w: u32, src_h: u32, channels: u32, width: u32, height: u32) -> Result<Vec<u8>> {
    let (sw, sh, c) = (src_w as usize, src_h as usize, channels as usize);
    check_size(width, height, channels)?;
    if sw == 0 || sh == 0 || sw.checked_mul(sh).and_then(|n| n.checked_mul(c)) != Some(src.len()) {
        return Err(Error::InvalidInput(format!("{} bytes are not a {src_w}x{src_h}x{channels} image", src.len())));
    }
    let mut r = Resizer::new(src_w, src_h, channels, width, height)?;
    for row in src.chunks_exact(sw * c) {
        r.push_row(row);
    }
    Ok(r.finish())
}
