//! Our JPEG decoder (`edge_classify::image::jpeg`) against Pillow 13's (libjpeg-turbo's) decode,
//! natively: every file of `golden/jpeg/` (variants of sampling, progression, restarts, tables, size
//! and colour space; `golden/jpeg_decodes.py`) and every JPEG photo of `../shared/images` must give
//! exactly Pillow's pixels, 0 elements differing. CMYK is refused with a message naming it.

use anyhow::{bail, ensure, Context, Result};
use edge_classify::image::jpeg::decode_image;
use host_tests::golden::sha256_hex;
use host_tests::npy::Npy;
use host_tests::paths::{golden_dir, images_dir};
use host_tests::TensorData;
use serde::Deserialize;

use crate::common::report;

#[derive(Deserialize)]
struct Manifest {
    files: Vec<File>,
    shared: Vec<Shared>,
}

#[derive(Deserialize)]
struct File {
    file: String,
    sha256: String,
    mode: String,
    size: [u32; 2],
    #[serde(default)]
    decoded: Option<String>,
    #[serde(default)]
    refused: bool,
}

#[derive(Deserialize)]
struct Shared {
    image: String,
    sha256: String,
    size: [u32; 2],
    decoded_sha256: String,
}

fn manifest() -> Result<Manifest> {
    let path = golden_dir().join("jpeg/manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn read_checked(path: &std::path::Path, sha256: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(sha256_hex(&bytes) == sha256, "{} is not the file the manifest describes", path.display());
    Ok(bytes)
}

/// How many elements differ, and the first that does.
fn compare(got: &[u8], want: &[u8], width: u32, channels: u32) -> (usize, Option<String>) {
    let mut first = None;
    let differing = got.iter().zip(want).enumerate().filter(|&(_, (g, w))| g != w).inspect(|&(i, (g, w))| {
        if first.is_none() {
            let px = i as u32 / channels;
            first =
                Some(format!("x {} y {} channel {}: {g} vs Pillow's {w}", px % width, px / width, i as u32 % channels));
        }
    });
    (differing.count(), first)
}

#[test]
fn every_golden_jpeg_variant_decodes_to_pillows_pixels_exactly() -> Result<()> {
    let manifest = manifest()?;
    ensure!(manifest.files.len() >= 34, "golden/jpeg has {} files", manifest.files.len());
    let mut errors = Vec::new();
    for f in &manifest.files {
        let bytes = read_checked(&golden_dir().join("jpeg").join(&f.file), &f.sha256)?;
        let result = decode_image(&bytes);
        if f.refused {
            match result {
                Err(e) if e.to_string().contains(&f.mode) => report(format!("jpeg {}: refused: {e}", f.file)),
                other => errors.push(format!(
                    "{}: {} should be refused naming it, got {:?}",
                    f.file,
                    f.mode,
                    other.map(|r| r.2)
                )),
            }
            continue;
        }
        let (w, h, channels, pixels) = result.with_context(|| format!("decoding {}", f.file))?;
        let want = Npy::read_file(&golden_dir().join("jpeg").join(f.decoded.as_deref().context("decoded file")?))?;
        let TensorData::Uint8(want) = want.data else { bail!("{}: decode is not uint8", f.file) };
        let expected_channels = if f.mode == "L" { 1 } else { 3 };
        if [w, h, channels] != [f.size[0], f.size[1], expected_channels] {
            errors.push(format!(
                "{}: {w}x{h}x{channels}, Pillow {}x{}x{expected_channels}",
                f.file, f.size[0], f.size[1]
            ));
            continue;
        }
        let (differing, first) = compare(&pixels, &want, w, channels);
        report(format!("jpeg {}: {differing} of {} elements differ", f.file, want.len()));
        if differing > 0 {
            errors.push(format!(
                "{}: {differing} of {} elements differ, first at {}",
                f.file,
                want.len(),
                first.unwrap_or_default()
            ));
        }
    }
    ensure!(errors.is_empty(), "JPEG decodes that are not Pillow's:\n  {}", errors.join("\n  "));
    Ok(())
}

#[test]
fn every_shared_jpeg_photo_decodes_to_pillows_pixels_exactly() -> Result<()> {
    let manifest = manifest()?;
    ensure!(!manifest.shared.is_empty(), "no shared JPEG photos in golden/jpeg/manifest.json");
    let mut errors = Vec::new();
    for s in &manifest.shared {
        let bytes = read_checked(&images_dir().join(&s.image), &s.sha256)?;
        let (w, h, _, pixels) = decode_image(&bytes).with_context(|| format!("decoding {}", s.image))?;
        let same = [w, h] == s.size && sha256_hex(&pixels) == s.decoded_sha256;
        report(format!("jpeg {}: {w}x{h}, {}", s.image, if same { "Pillow's pixels" } else { "DIFFERENT" }));
        if !same {
            errors.push(s.image.clone());
        }
    }
    ensure!(errors.is_empty(), "decodes differ from Pillow's (sha256 of the pixels): {errors:?}");
    Ok(())
}
