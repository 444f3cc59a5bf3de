//! `cargo run --release -p host-tests --bin jpeg-variants -- DIR`: writes the JPEG variants Pillow
//! cannot encode (4:4:0, 4:1:1 and other sampling factors, jpeg-encoder's progressive scans,
//! restart intervals on subsampled files) into DIR as `rust-*.jpg`. `golden/generate.py` runs it,
//! decodes every file with Pillow and commits both; the suite then requires our decoder to give
//! Pillow's pixels exactly (tests/conformance/jpeg.rs).

use anyhow::{Context, Result};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

/// A synthetic picture with what stresses a decoder: smooth gradients, fine stripes, a hard-edged
/// saturated block (chroma far from neutral, so colour conversion clamps) and hashed noise.
fn picture(width: usize, height: usize) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let noise = ((x * 7919 + y * 104_729) ^ (x * y * 31)) % 61;
            let edge = x > width / 3 && x < width * 2 / 3 && y > height / 4 && y < height * 3 / 4;
            let stripes = if (x / 2 + y / 3) % 2 == 0 { 40 } else { 0 };
            let (r, g, b) = if edge {
                (250, 10 + noise, 5)
            } else {
                (x * 255 / width.max(1), (y * 255 / height.max(1) + stripes) % 256, 128 + noise)
            };
            rgb.extend([r as u8, g as u8, b as u8]);
        }
    }
    rgb
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).context("usage: jpeg-variants DIR")?;
    std::fs::create_dir_all(&dir)?;
    use SamplingFactor::*;
    // (name, sampling, progressive, restart interval, width, height)
    let cases = [
        ("rust-440", R_4_4_0, false, 0, 61, 43),
        ("rust-411", R_4_1_1, false, 0, 61, 43),
        ("rust-410", R_4_1_0, false, 0, 61, 43),
        ("rust-421", R_4_2_1, false, 0, 61, 43),
        ("rust-441", R_4_4_1, false, 0, 61, 43),
        ("rust-420-restart", R_4_2_0, false, 3, 61, 43),
        ("rust-440-restart", R_4_4_0, false, 2, 53, 70),
        ("rust-444-progressive", R_4_4_4, true, 0, 61, 43),
        ("rust-420-progressive", R_4_2_0, true, 0, 61, 43),
        ("rust-440-progressive-restart", R_4_4_0, true, 4, 45, 66),
        ("rust-422-narrow", R_4_2_2, false, 0, 3, 17),
        ("rust-420-tiny", R_4_2_0, false, 0, 1, 1),
    ];
    for (name, sampling, progressive, restart, w, h) in cases {
        let mut bytes = Vec::new();
        let mut encoder = Encoder::new(&mut bytes, 80);
        encoder.set_sampling_factor(sampling);
        encoder.set_progressive(progressive);
        if restart > 0 {
            encoder.set_restart_interval(restart);
        }
        encoder.encode(&picture(w, h), w as u16, h as u16, ColorType::Rgb).with_context(|| name.to_owned())?;
        std::fs::write(format!("{dir}/{name}.jpg"), &bytes)?;
    }
    let mut gray = Vec::new();
    let luma: Vec<u8> = picture(37, 29).chunks(3).map(|p| p[1]).collect();
    let mut encoder = Encoder::new(&mut gray, 70);
    encoder.set_progressive(true);
    encoder.encode(&luma, 37, 29, ColorType::Luma)?;
    std::fs::write(format!("{dir}/rust-gray-progressive.jpg"), &gray)?;
    println!("wrote {} files to {dir}", cases.len() + 1);
    Ok(())
}
