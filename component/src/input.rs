//! The input pipeline: image bytes, pixels, real values or the file's own tensor → the tensor the
//! model executes. `classify`, the quantizer's calibration, the wasi:nn provider and the CLI all come
//! through here, so every path feeds a model the same numbers (decode and resize are `image`'s, which
//! knows nothing of models).
//!
//! How a pixel becomes a real value is the convention of TFLite's own classification examples, decided
//! once at load from the file (not from the precision it runs at):
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
use crate::kernels::math::quantize_value;
use crate::types::{ElementType, Quantization, Tensor, TensorData, TensorInfo};

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
                normalize(p, pick(mean), pick(std))
            }
        }
    }

    /// The smallest and largest real value any pixel of any of `channels` channels stands for: the
    /// range a float model's input can see, whatever the photos.
    pub fn real_range(&self, channels: usize) -> (f32, f32) {
        let values = (0..channels.max(1)).flat_map(|c| [self.real(0, c), self.real(255, c)]);
        values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }

    /// Pixel `p` of channel `c` as the executing input's quantized value (`exec` its parameters, in
    /// `lo..=hi`). A raw pixel fed to a uint8 input with the file's own parameters is itself.
    #[inline]
    pub fn quantized(&self, p: u8, c: usize, exec: Quantization, lo: i32, hi: i32) -> i32 {
        match self {
            Pixels::Raw(q) if *q == exec && (lo, hi) == (0, 255) => p as i32,
            _ => quantize_value(self.real(p, c), exec.scale, exec.zero_point, lo, hi),
        }
    }
}

/// `(pixel - mean) / std`, in f32 (exactly numpy's float32 arithmetic in the golden script).
#[inline]
pub fn normalize(pixel: u8, mean: f32, std: f32) -> f32 {
    (pixel as f32 - mean) / std
}

/// Where the executing input lives while a model runs: its arena slot, in the arena's element type
/// (a uint8 input executes as int8, re-centred by −128 as its weights were).
pub enum Dest<'a> {
    F32(&'a mut [f32]),
    I8(&'a mut [i8]),
    I16(&'a mut [i16]),
}

/// A model's input side: the rule for pixels, the file's own input and the one that executes.
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    pub rule: &'a Pixels,
    /// The file's input, before any precision conversion (what a uint8 pixel tensor is in).
    pub file: &'a TensorInfo,
    /// The input the plan executes.
    pub exec: &'a TensorInfo,
}

impl Pipeline<'_> {
    /// Height, width and channels of an image input (`[1, H, W, 1 or 3]`).
    pub fn image_size(&self) -> Result<(u32, u32, u32)> {
        match self.exec.shape[..] {
            [1, h, w, c @ (1 | 3)] => Ok((h, w, c)),
            _ => bail!(
                InvalidInput,
                "classify needs a [1, height, width, 1 or 3] image input; this model takes {:?}",
                self.exec.shape
            ),
        }
    }

    /// Decoded and resized to the input's size: HWC pixels.
    pub fn pixels(&self, image_bytes: &[u8]) -> Result<Vec<u8>> {
        let (h, w, c) = self.image_size()?;
        image::decode_resize(image_bytes, w, h, c)
    }

    /// The tensor `classify` feeds for `image_bytes`.
    pub fn from_image(&self, image_bytes: &[u8]) -> Result<Tensor> {
        let pixels = self.pixels(image_bytes)?;
        Ok(self.from_pixels(&pixels))
    }

    /// The tensor for resized HWC pixels, by the rule: what [`Pipeline::write_pixels`] writes, as a
    /// tensor of the executing input's element type.
    pub fn from_pixels(&self, pixels: &[u8]) -> Tensor {
        let n = pixels.len();
        let data = match self.exec.element {
            ElementType::Float32 => {
                let mut v = vec![0f32; n];
                self.write_pixels(pixels, Dest::F32(&mut v));
                TensorData::Float32(v)
            }
            ElementType::Int16 => {
                let mut v = vec![0i16; n];
                self.write_pixels(pixels, Dest::I16(&mut v));
                TensorData::Int16(v)
            }
            element => {
                let mut v = vec![0i8; n];
                self.write_pixels(pixels, Dest::I8(&mut v));
                if element == ElementType::Uint8 {
                    // The arena holds uint8 re-centred by −128; the tensor holds the values themselves.
                    TensorData::Uint8(v.iter().map(|&q| (q as i32 + 128) as u8).collect())
                } else {
                    TensorData::Int8(v)
                }
            }
        };
        Tensor { shape: self.exec.shape.clone(), data }
    }

    /// As [`Pipeline::from_pixels`], straight into the arena: `classify` allocates no tensor.
    pub fn write_pixels(&self, pixels: &[u8], dest: Dest<'_>) {
        let channels = self.channels();
        let q = self.exec.quantization;
        let quant = |i: usize, p: u8, lo: i32, hi: i32, shift: i32| {
            self.rule.quantized(p, i % channels, q.expect("quantized inputs carry parameters"), lo, hi) - shift
        };
        let px = pixels.iter().copied().enumerate();
        match (dest, self.exec.element) {
            (Dest::F32(d), _) => d.iter_mut().zip(px).for_each(|(d, (i, p))| *d = self.rule.real(p, i % channels)),
            (Dest::I8(d), ElementType::Uint8) => {
                d.iter_mut().zip(px).for_each(|(d, (i, p))| *d = quant(i, p, 0, 255, 128) as i8)
            }
            (Dest::I8(d), _) => d.iter_mut().zip(px).for_each(|(d, (i, p))| *d = quant(i, p, -128, 127, 0) as i8),
            (Dest::I16(d), _) => d.iter_mut().zip(px).for_each(|(d, (i, p))| *d = quant(i, p, -32768, 32767, 0) as i16),
        }
    }

    /// The input tensor for real (normalized) values: quantized with the executing input's own
    /// parameters, exactly as `classify` does for pixels (and TFLite's QUANTIZE op: rounded half away
    /// from zero, clamped).
    pub fn from_real(&self, real: &[f32]) -> Tensor {
        let quant = |lo: i32, hi: i32| -> Vec<i32> {
            let q = self.exec.quantization.expect("quantized inputs carry parameters");
            real.iter().map(|&r| quantize_value(r, q.scale, q.zero_point, lo, hi)).collect()
        };
        let data = match self.exec.element {
            ElementType::Float32 => TensorData::Float32(real.to_vec()),
            ElementType::Uint8 => TensorData::Uint8(quant(0, 255).into_iter().map(|v| v as u8).collect()),
            ElementType::Int8 => TensorData::Int8(quant(-128, 127).into_iter().map(|v| v as i8).collect()),
            ElementType::Int16 => TensorData::Int16(quant(-32768, 32767).into_iter().map(|v| v as i16).collect()),
        };
        Tensor { shape: self.exec.shape.clone(), data }
    }

    /// The executing tensor for values of the file's own uint8 input (what a wasi:nn guest holding
    /// the file's pixels sends): themselves at the file's precision, else the real values they stand
    /// for, quantized as [`Pipeline::from_real`] does.
    pub fn from_file_uint8(&self, values: &[u8]) -> Result<Tensor> {
        let Some(q) = self.file.quantization.filter(|_| self.file.element == ElementType::Uint8) else {
            bail!(InvalidInput, "this model's own input is {}, not uint8", self.file.element.name());
        };
        if self.exec.element == ElementType::Uint8 {
            return Ok(Tensor { shape: self.exec.shape.clone(), data: TensorData::Uint8(values.to_vec()) });
        }
        let rule = Pixels::Raw(q);
        let real: Vec<f32> = values.iter().map(|&p| rule.real(p, 0)).collect();
        Ok(self.from_real(&real))
    }

    /// Checks a caller's tensor against the executing input and copies it into the arena.
    pub fn write_tensor(&self, input: &Tensor, dest: Dest<'_>) -> Result<()> {
        let want = self.exec;
        if input.shape != want.shape {
            bail!(InvalidInput, "input shape {:?} does not match the model's {:?}", input.shape, want.shape);
        }
        if input.data.element_type() != want.element {
            bail!(
                InvalidInput,
                "input elements are {}, the model takes {}",
                input.data.element_type().name(),
                want.element.name()
            );
        }
        let numel: usize = want.shape.iter().map(|&d| d as usize).product();
        if input.data.len() != numel {
            bail!(InvalidInput, "input has {} elements, shape {:?} needs {numel}", input.data.len(), input.shape);
        }
        match (&input.data, dest) {
            (TensorData::Float32(v), Dest::F32(d)) => d.copy_from_slice(v),
            (TensorData::Int8(v), Dest::I8(d)) => d.copy_from_slice(v),
            (TensorData::Int16(v), Dest::I16(d)) => d.copy_from_slice(v),
            (TensorData::Uint8(v), Dest::I8(d)) => {
                d.iter_mut().zip(v).for_each(|(d, &s)| *d = (s as i32 - 128) as i8);
            }
            _ => bail!(InvalidInput, "the plan stores a {} input elsewhere", want.element.name()),
        }
        Ok(())
    }

    fn channels(&self) -> usize {
        self.exec.shape.last().copied().unwrap_or(1).max(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ElementType::*;

    const U8: Quantization = Quantization { scale: 1.0 / 128.0, zero_point: 128 };

    #[test]
    fn pixels_quantize_with_ties_away_from_zero() {
        assert_eq!(quantize_value(0.5, 1.0, 0, -128, 127), 1);
        assert_eq!(quantize_value(-0.5, 1.0, 0, -128, 127), -1);
        assert_eq!(quantize_value(1.5, 1.0, 0, -128, 127), 2);
        assert_eq!(quantize_value(-2.5, 1.0, 0, -128, 127), -3);
        assert_eq!(quantize_value(0.49999997, 1.0, 0, -128, 127), 0);
        assert_eq!(quantize_value(-0.49999997, 1.0, 0, -128, 127), 0);
        assert_eq!(quantize_value(1.0, 1.0 / 128.0, 128, 0, 255), 255); // 256 clamps
        assert_eq!(quantize_value(f32::NAN, 1.0, 3, 0, 255), 3);
        assert_eq!(quantize_value(f32::INFINITY, 1.0, 3, 0, 255), 255);
        assert_eq!(quantize_value(-1e30, 1.0, 3, -32768, 32767), -32768);
        // The real input scale 1/127.5 (mobilenet_v2 ptq, zero point 127), values checked with numpy
        // float32: pixel 127 → -0.5 and 200 → 72.5 exactly (ties: away from zero, not to even), pixel 0
        // → -127.49999 (not a tie).
        let scale = 0.007_843_138_f32; // 1/127.5 as stored in the models (f32 0.0078431377...)
        let q = |p: u8| quantize_value(normalize(p, 127.5, 127.5), scale, 127, 0, 255);
        assert_eq!(normalize(127, 127.5, 127.5) / scale, -0.5);
        assert_eq!(normalize(200, 127.5, 127.5) / scale, 72.5);
        assert_eq!((q(127), q(128), q(200)), (126, 128, 200));
        assert_eq!((q(0), q(255)), (0, 254));
        assert_eq!(normalize(255, 127.5, 127.5), 1.0);
        assert_eq!(normalize(0, 127.5, 127.5), -1.0);
    }

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
            assert_eq!(m.real_range(3), ((0.0 - 123.0) / 58.0, (255.0 - 104.0) / 57.5));
        }
        assert_eq!(default.real_range(3), (-1.0, 1.0));
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

    /// The tensor a pipeline builds and the one it writes into an arena are the same numbers, at every
    /// executing element type; a file's own uint8 values convert as their pixels do.
    #[test]
    fn written_and_built_inputs_agree() {
        let pixels: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let info =
            |element, quantization| TensorInfo { name: "in".into(), shape: vec![1, 2, 3, 3], element, quantization };
        let file = info(Uint8, Some(U8));
        let rule = Pixels::Raw(U8);
        let q8 = Quantization { scale: 0.01, zero_point: -3 };
        let q16 = Quantization { scale: 1.0 / 30000.0, zero_point: 0 };
        for exec in [info(Float32, None), info(Uint8, Some(U8)), info(Int8, Some(q8)), info(Int16, Some(q16))] {
            let pipe = Pipeline { rule: &rule, file: &file, exec: &exec };
            let built = pipe.from_pixels(&pixels);
            let (mut f, mut i8s, mut i16s) = (vec![0f32; 18], vec![0i8; 18], vec![0i16; 18]);
            let dest = match exec.element {
                Float32 => Dest::F32(&mut f),
                Uint8 | Int8 => Dest::I8(&mut i8s),
                Int16 => Dest::I16(&mut i16s),
            };
            pipe.write_pixels(&pixels, dest);
            let (mut f2, mut a8, mut a16) = (vec![0f32; 18], vec![0i8; 18], vec![0i16; 18]);
            let dest = match exec.element {
                Float32 => Dest::F32(&mut f2),
                Uint8 | Int8 => Dest::I8(&mut a8),
                Int16 => Dest::I16(&mut a16),
            };
            pipe.write_tensor(&built, dest).unwrap();
            assert_eq!((&f, &i8s, &i16s), (&f2, &a8, &a16), "{:?}", exec.element);
            assert_eq!(pipe.from_file_uint8(&pixels).unwrap(), built, "{:?}", exec.element);
        }
    }
}
