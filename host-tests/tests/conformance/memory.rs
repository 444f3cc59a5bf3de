//! Memory bounded by design: `classify` of a 12 MP photo (4000x3000 JPEG), of a 50 MP baseline JPEG
//! and of a 9000x9000 PNG (a 0.2 MB file of 243 MB of pixels) in `dist/classifier-simd.wasm`, embedded
//! model included, peaks at most [`BOUND`] of linear memory (measured by the store's
//! `ResourceLimiter`: linear memory never shrinks, so the largest size asked for is the peak): both
//! decoders stream rows. Images a decoder must hold whole (BMP, progressive JPEG) and that are over its
//! budget are `too-large` from their header, before anything is decoded.

use anyhow::{ensure, Context, Result};
use host_tests::budget_images::{bmp_header, jpeg, jpeg_flat, png_black, progressive};
use host_tests::paths;
use host_tests::wasmtime_rt::WasmtimeRuntime;
use host_tests::{ErrorKind, LoadOptions, Runtime};

use crate::common::report;

/// The bound per request, the model included.
const BOUND: u64 = 64 << 20;

fn simd() -> Result<WasmtimeRuntime> {
    let path = paths::component_path()?.with_file_name("classifier-simd.wasm");
    WasmtimeRuntime::cranelift(
        &path,
        Some(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-classify-cwasm")),
    )
}

fn classify_peak(runtime: &WasmtimeRuntime, image: &[u8], what: &str) -> Result<u64> {
    let mut model = runtime
        .embedded(&LoadOptions::default())
        .context("embedded() trapped")?
        .map_err(|e| anyhow::anyhow!("embedded(): {e}"))?;
    let p = model.classify(image, 3).context("classify trapped")?.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    ensure!(p.len() == 3, "{what}: {p:?}");
    let peak = model.peak_memory_bytes().context("wasmtime reports the peak")?;
    report(format!(
        "memory: classify of {what} ({} KB): peak linear memory {:.1} MiB",
        image.len() >> 10,
        peak as f64 / (1 << 20) as f64
    ));
    Ok(peak)
}

#[test]
fn classify_of_a_12_mp_jpeg_a_50_mp_jpeg_and_a_9000x9000_png_stays_under_64_mib() -> Result<()> {
    let runtime = simd()?;
    for (what, image) in [
        ("a 4000x3000 JPEG", jpeg(4000, 3000)),
        // Four times MAX_BUFFERED_PIXELS: a baseline JPEG is never held whole.
        ("a 8192x6144 baseline JPEG", jpeg_flat(8192, 6144)),
        ("a 9000x9000 PNG", png_black(9000, 9000)),
    ] {
        let peak = classify_peak(&runtime, &image, what)?;
        ensure!(peak <= BOUND, "{what}: peak linear memory {} MiB > {} MiB", peak >> 20, BOUND >> 20);
    }
    Ok(())
}

#[test]
fn images_over_the_decode_budget_are_too_large_from_their_header() -> Result<()> {
    let runtime = simd()?;
    let mut model = runtime.embedded(&LoadOptions::default()).context("trap")?.map_err(|e| anyhow::anyhow!("{e}"))?;
    // One pixel row more than MAX_BUFFERED_PIXELS allows (4096 x 3072), and only a header: refused
    // before any pixel is read.
    match model.classify(&bmp_header(4096, 3073), 1).context("classify trapped")? {
        Err(e) => ensure!(e.kind == ErrorKind::TooLarge && e.message.contains("MAX_BUFFERED_PIXELS"), "{e}"),
        Ok(p) => anyhow::bail!("a 4096x3073 BMP was decoded: {p:?}"),
    }
    Ok(())
}

/// Progressive JPEG keeps every DCT coefficient while it decodes: at its own budget (2048x1536), 4:4:4
/// (the most coefficients) and 4:2:0 stay under the bound; one row more is `too-large`.
#[test]
fn progressive_jpeg_at_its_budget_stays_under_64_mib() -> Result<()> {
    use jpeg_encoder::SamplingFactor;
    let runtime = simd()?;
    for (sampling, name) in [(SamplingFactor::R_4_4_4, "4:4:4"), (SamplingFactor::R_4_2_0, "4:2:0")] {
        let what = format!("a 2048x1536 progressive {name} JPEG");
        let peak = classify_peak(&runtime, &progressive(2048, 1536, sampling), &what)?;
        ensure!(peak <= BOUND, "{what}: peak linear memory {} MiB > {} MiB", peak >> 20, BOUND >> 20);
    }
    let mut model = runtime.embedded(&LoadOptions::default()).context("trap")?.map_err(|e| anyhow::anyhow!("{e}"))?;
    match model.classify(&progressive(2048, 1537, SamplingFactor::R_4_2_0), 1).context("classify trapped")? {
        Err(e) => ensure!(e.kind == ErrorKind::TooLarge && e.message.contains("MAX_PROGRESSIVE_PIXELS"), "{e}"),
        Ok(p) => anyhow::bail!("a 2048x1537 progressive JPEG was decoded: {p:?}"),
    }
    Ok(())
}
