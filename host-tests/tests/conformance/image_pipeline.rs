//! The image pipeline natively (no component): for every photo case of every model,
//! `edge_classify::image::decode_resize`, then `input::normalize` and `kernels::math::quantize_value`, against the golden input tensor, which
//! Pillow 13 + numpy made (see `golden/README.md`, Preprocessing).
//!
//! - BMP, PNG and JPEG: exactly equal, every element. All three decode exactly like Pillow (JPEG: our
//!   decoder gives libjpeg-turbo's pixels, `jpeg.rs`) and the resize is Pillow's arithmetic, so any
//!   difference is a bug.
//!
//! Per-image statistics go to stderr.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use edge_classify::image::decode_resize;
use edge_classify::input::normalize;
use edge_classify::kernels::math::quantize_value;
use host_tests::golden::{Dtype, GoldenModel};
use host_tests::TensorData;

use crate::common::{golden, report};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Format {
    Bmp,
    Png,
    Jpeg,
}

#[derive(Default)]
struct Stats {
    cases: usize,
    elements: usize,
    differing: usize,
    max_pixel_levels: i64,
    worst_case_share: f64,
    worst_case: String,
}

/// What every pixel value 0..=255 becomes in this model's input tensor: the quantized value, or the
/// f32's bits for a float input (so equality is bit equality).
fn pixel_table(model: &GoldenModel) -> Result<Vec<i64>> {
    let input = &model.input;
    if model.pixels == "raw" {
        ensure!(input.dtype == Dtype::Uint8, "raw pixels for a {:?} input", input.dtype);
        return Ok((0..=255).collect());
    }
    ensure!(model.pixels == "normalize", "unknown pixel rule {:?}", model.pixels);
    let mean = model.mean.context("no mean in the manifest")?;
    let std = model.std.context("no std in the manifest")?;
    let range = match input.dtype {
        Dtype::Float32 => None,
        Dtype::Uint8 => Some((0, 255)),
        Dtype::Int8 => Some((-128, 127)),
        Dtype::Int16 => Some((-32768, 32767)),
    };
    Ok((0..=255u8)
        .map(|p| {
            let real = normalize(p, mean, std);
            match (range, input.scale, input.zero_point) {
                (Some((lo, hi)), Some(scale), Some(zp)) => quantize_value(real, scale, zp, lo, hi) as i64,
                _ => real.to_bits() as i64,
            }
        })
        .collect())
}

fn golden_values(data: &TensorData) -> Vec<i64> {
    match data {
        TensorData::Float32(v) => v.iter().map(|f| f.to_bits() as i64).collect(),
        TensorData::Uint8(v) => v.iter().map(|&x| x as i64).collect(),
        TensorData::Int8(v) => v.iter().map(|&x| x as i64).collect(),
        TensorData::Int16(v) => v.iter().map(|&x| x as i64).collect(),
    }
}

fn format_of(image: &str) -> Result<Format> {
    let ext = image.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    Ok(match ext.as_str() {
        "bmp" => Format::Bmp,
        "png" => Format::Png,
        "jpg" | "jpeg" => Format::Jpeg,
        _ => bail!("{image}: unexpected photo format"),
    })
}

fn check_model(model: &GoldenModel, stats: &mut BTreeMap<Format, Stats>) -> Result<()> {
    let (h, w, c) = match model.input.shape[..] {
        [1, h, w, c @ (1 | 3)] => (h, w, c),
        ref s => bail!("input shape {s:?} is not [1, H, W, 1|3]"),
    };
    let color = model.color.as_deref().context("no color in the manifest")?;
    ensure!(color == if c == 3 { "rgb" } else { "gray" }, "color {color:?} with {c} input channels");
    let table = pixel_table(model)?;
    let quantized = model.input.dtype != Dtype::Float32;
    for case in model.photo_cases() {
        let format = format_of(&case.image)?;
        let pixels = decode_resize(&case.image_bytes()?, w, h, c)
            .map_err(|e| anyhow::anyhow!("decode_resize({}): {e}", case.image))?;
        let want = case.input(golden())?;
        ensure!(
            want.shape == [1, h as usize, w as usize, c as usize],
            "{}: golden input shape {:?}",
            case.input,
            want.shape
        );
        let want = golden_values(&want.data);
        ensure!(pixels.len() == want.len(), "{}: {} pixels, golden {}", case.image, pixels.len(), want.len());
        let (mut differing, mut max_px, mut max_level) = (0usize, 0i64, 0i64);
        for (&p, &g) in pixels.iter().zip(&want) {
            let ours = table[p as usize];
            if ours == g {
                continue;
            }
            differing += 1;
            // the nearest pixel value that gives the golden element
            let px = (0..256i64)
                .filter(|&q| table[q as usize] == g)
                .map(|q| (q - p as i64).abs())
                .min()
                .with_context(|| format!("{}: golden value {g} is made by no pixel value", case.input))?;
            max_px = max_px.max(px);
            if quantized {
                max_level = max_level.max((ours - g).abs());
            }
        }
        let share = differing as f64 / pixels.len() as f64;
        let levels = if quantized { format!(", max {max_level} tensor level(s)") } else { String::new() };
        report(format!(
            "image_pipeline {:36} {:28} {differing:6}/{:6} differ ({:6.3}%), max {max_px} pixel level(s){levels}",
            model.id,
            case.image,
            pixels.len(),
            100.0 * share
        ));
        let s = stats.entry(format).or_default();
        s.cases += 1;
        s.elements += pixels.len();
        s.differing += differing;
        s.max_pixel_levels = s.max_pixel_levels.max(max_px);
        if share > s.worst_case_share || s.worst_case.is_empty() {
            s.worst_case_share = share;
            s.worst_case = format!("{} {}", model.id, case.image);
        }
    }
    Ok(())
}

#[test]
fn photo_inputs_match_the_golden_tensors() {
    let mut stats = BTreeMap::new();
    let mut errors = Vec::new();
    let mut expected_cases = 0;
    for model in golden().models() {
        expected_cases += model.photo_cases().count();
        if let Err(e) = check_model(model, &mut stats) {
            errors.push(format!("{}: {e:#}", model.id));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    let checked: usize = stats.values().map(|s| s.cases).sum();
    assert_eq!(checked, expected_cases);
    for format in [Format::Bmp, Format::Png, Format::Jpeg] {
        assert!(
            stats.get(&format).is_some_and(|s| s.cases > 0),
            "no {format:?} photo in the golden cases: the test would check nothing for it"
        );
    }
    for (format, s) in &stats {
        let share = s.differing as f64 / s.elements as f64;
        report(format!(
            "image_pipeline {format:?}: {} cases, {}/{} elements differ ({:.3}%; worst case {:.3}%, {}), max {} pixel level(s)",
            s.cases,
            s.differing,
            s.elements,
            100.0 * share,
            100.0 * s.worst_case_share,
            s.worst_case,
            s.max_pixel_levels,
        ));
        if s.differing != 0 {
            errors.push(format!(
                "{format:?}: {} of {} elements differ from the golden inputs (must be 0; worst {})",
                s.differing, s.elements, s.worst_case
            ));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
