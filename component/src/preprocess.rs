//! How `classify` turns resized pixels into the model's input tensor: the convention of TFLite's own
//! classification examples, decided once at load from the file (not from the precision it runs at).
//!
//! | the file's input | caller gives `mean`/`std` | metadata `NormalizationOptions` | pixel `p` becomes |
//! |---|---|---|---|
//! | any | yes (either) | ignored | `(p − mean) / std`, unset one = 127.5 |
//! | uint8 | no | ignored | `p` itself (`label_image`, Coral `classify.py`, TFLite Support's Task Library) |
//! | float32, int8, int16 | no | present | `(p − mean[c]) / std[c]` (the Task Library's float rule) |
//! | float32, int8, int16 | no | absent | `(p − 127.5) / 127.5` (`label_image`'s float default) |
//!
//! Quantized inputs then take `round_half_away(real / scale) + zero_point`, saturated, with the
//! *executing* input's parameters: TFLite's examples quantize a normalized float image exactly so for
//! int8 models. For a uint8 file run at another precision (converted at load), `p` stands for the real
//! value `scale · (p − zero_point)` of the file's input, computed in f32 as the golden script does, so
//! every precision sees the same image.

use crate::error::{bail, Result};
use crate::image;
use crate::model::{ElementType, Quantization};

/// Normalization when neither the caller nor the model's metadata gives one: `[−1, 1]`.
pub const DEFAULT_MEAN: f32 = 127.5;
pub const DEFAULT_STD: f32 = 127.5;

/// The rule chosen at load; persisted with a prepared model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Pixels {
    /// The file's input is uint8: the pixel is the quantized value, with these parameters.
    Raw(Quantization),
    /// `real = (p − mean[c]) / std[c]` for channel `c` (one entry: every channel).
    Normalize { mean: Vec<f32>, std: Vec<f32> },
}

impl Pixels {
    /// Picks the rule of the table above. `file_input` is the file's own input tensor (before any
    /// precision conversion), `metadata` the model's NormalizationOptions, `channels` the image's.
    pub fn choose(
        file_input: ElementType,
        file_quant: Option<Quantization>,
        mean: Option<f32>,
        std: Option<f32>,
        metadata: Option<(&[f32], &[f32])>,
        channels: usize,
    ) -> Result<Pixels> {
        let rule = match (mean, std, file_input, file_quant, metadata) {
            (None, None, ElementType::Uint8, Some(q), _) => return Ok(Pixels::Raw(q)),
            (None, None, _, _, Some((m, s))) => Pixels::Normalize { mean: m.to_vec(), std: s.to_vec() },
            _ => Pixels::Normalize { mean: vec![mean.unwrap_or(DEFAULT_MEAN)], std: vec![std.unwrap_or(DEFAULT_STD)] },
        };
        rule.check(channels)?;
        Ok(rule)
    }

    fn check(&self, channels: usize) -> Result<()> {
        let Pixels::Normalize { mean, std } = self else { return Ok(()) };
        for v in [mean, std] {
            if v.len() != 1 && v.len() != channels {
                bail!(InvalidInput, "normalization has {} values for a {channels}-channel input", v.len());
            }
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            bail!(InvalidInput, "mean {m} is not a finite number");
        }
        if let Some(s) = std.iter().find(|s| !s.is_finite() || **s == 0.0) {
            bail!(InvalidInput, "std {s} must be finite and non-zero");
        }
        Ok(())
    }

    /// The real value pixel `p` of channel `c` stands for.
    #[inline]
    pub fn real(&self, p: u8, c: usize) -> f32 {
        match self {
            Pixels::Raw(q) => (p as i32 - q.zero_point) as f32 * q.scale,
            Pixels::Normalize { mean, std } => {
                let pick = |v: &[f32]| if v.len() == 1 { v[0] } else { v[c] };
                image::normalize(p, pick(mean), pick(std))
            }
        }
    }

    /// Pixel `p` of channel `c` as the executing input's quantized value (`exec` its parameters, in
    /// `lo..=hi`). A raw pixel fed to a uint8 input with the file's own parameters is itself.
    #[inline]
    pub fn quantized(&self, p: u8, c: usize, exec: Quantization, lo: i32, hi: i32) -> i32 {
        match self {
            Pixels::Raw(q) if *q == exec && (lo, hi) == (0, 255) => p as i32,
            _ => image::quantize(self.real(p, c), exec.scale, exec.zero_point, lo, hi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ElementType::*;

    const U8: Quantization = Quantization { scale: 1.0 / 128.0, zero_point: 128 };

    #[test]
    fn preprocess_table() {
        let meta = ([123.0f32, 117.0, 104.0], [58.0f32, 57.0, 57.5]);
        let meta = Some((&meta.0[..], &meta.1[..]));
        let default = Pixels::Normalize { mean: vec![127.5], std: vec![127.5] };
        // uint8 file: raw pixels, with or without metadata; the caller's normalization wins
        assert_eq!(Pixels::choose(Uint8, Some(U8), None, None, None, 3).unwrap(), Pixels::Raw(U8));
        assert_eq!(Pixels::choose(Uint8, Some(U8), None, None, meta, 3).unwrap(), Pixels::Raw(U8));
        assert_eq!(
            Pixels::choose(Uint8, Some(U8), Some(0.0), None, meta, 3).unwrap(),
            Pixels::Normalize { mean: vec![0.0], std: vec![127.5] }
        );
        // float / int8 / int16 files: metadata, else 127.5 / 127.5
        for file in [Float32, Int8, Int16] {
            assert_eq!(Pixels::choose(file, None, None, None, None, 3).unwrap(), default);
            let m = Pixels::choose(file, None, None, None, meta, 3).unwrap();
            assert_eq!(m, Pixels::Normalize { mean: vec![123.0, 117.0, 104.0], std: vec![58.0, 57.0, 57.5] });
            assert_eq!(m.real(181, 0), 1.0);
            assert_eq!(m.real(104, 2), 0.0);
        }
        // three values for a gray image, a zero std, NaN: refused
        assert!(Pixels::choose(Float32, None, None, None, meta, 1).is_err());
        assert!(Pixels::choose(Float32, None, None, Some(0.0), None, 3).is_err());
        assert!(Pixels::choose(Int8, None, Some(f32::NAN), None, None, 3).is_err());
    }

    #[test]
    fn preprocess_raw_pixels_are_the_input() {
        let raw = Pixels::Raw(U8);
        for p in 0..=255u8 {
            // the own uint8 input takes the pixel unchanged
            assert_eq!(raw.quantized(p, 0, U8, 0, 255), p as i32);
            // converted precisions see the real value the pixel stands for, re-quantized exactly
            assert_eq!(raw.real(p, 1), (p as f32 - 128.0) / 128.0);
            let q16 = Quantization { scale: 1.0 / 32768.0, zero_point: 0 };
            assert_eq!(raw.quantized(p, 2, q16, -32768, 32767), (p as i32 - 128) * 256);
        }
    }
}
