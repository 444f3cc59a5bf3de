//! The image path: `classify(photo, 5)` for every model and every photo case.
//!
//! - Asserted: our top-5 equals the reference's, index for index and every score within 1e-5 (the
//!   golden file's rounding), for every photo whatever its format: every decoder gives Pillow's
//!   pixels (`image_pipeline`, `jpeg`) and inference is TFLite's bit for bit (`exactness`), so
//!   `classify` is TFLite-on-Pillow end to end. A top-1 that differs is reported on its own.
//! - Snapshotted (insta), one snapshot per model named `top5__<model id>`, stored in
//!   `tests/conformance/snapshots/conformance__classify__top5__<model id>.snap`: for each photo,
//!   our top-5 (score, index, label as returned by the component) next to the reference's top-5
//!   (labels from the model's labels file). The snapshot is made from our outputs; a change in
//!   preprocessing or kernels shows up as a diff to review with `cargo insta review`.

use std::fmt::Write as _;

use anyhow::{ensure, Context, Result};
use host_tests::golden::GoldenModel;
use host_tests::{Prediction, Runtime};

use crate::common::{golden, load, report, runtimes};

const TOP_K: u32 = 5;

struct ModelResult {
    snapshot: String,
    mismatches: Vec<String>,
    /// Photos whose top-5 (indices, and scores within 1e-5) equals the reference's.
    same_top5: usize,
}

fn classify_model(runtime: &dyn Runtime, model: &GoldenModel) -> Result<ModelResult> {
    let labels = model.labels()?;
    let label = |i: u32| labels.get(i as usize).map(String::as_str).unwrap_or("?");
    let mut instance = load(runtime, model, &model.load_options(true)?)?;

    let mut snapshot = String::new();
    let mut mismatches = Vec::new();
    let mut same_top5 = 0;
    writeln!(
        snapshot,
        "{}: classify(photo, {TOP_K}), ours | reference (TFLite BUILTIN_REF on the golden input)",
        model.id
    )?;
    for case in model.photo_cases() {
        let image = case.image_bytes()?;
        let ours: Vec<Prediction> = instance
            .classify(&image, TOP_K)
            .with_context(|| format!("{}: classify({}) trapped", model.id, case.image))?
            .with_context(|| format!("{}: classify({}) returned an error", model.id, case.image))?;

        ensure!(
            !ours.is_empty() && ours.len() <= TOP_K as usize,
            "{}: classify({}) returned {} predictions for top-k {TOP_K}",
            model.id,
            case.image,
            ours.len()
        );
        ensure!(
            ours.windows(2).all(|w| w[0].score >= w[1].score),
            "{}: classify({}) predictions are not sorted by score: {ours:?}",
            model.id,
            case.image
        );
        for p in &ours {
            ensure!(
                p.label.as_deref() == labels.get(p.index as usize).map(String::as_str),
                "{}: classify({}) labels index {} as {:?}, the labels file says {:?}",
                model.id,
                case.image,
                p.index,
                p.label,
                labels.get(p.index as usize)
            );
        }

        let (ref_top, ref_score) = *case.top5.first().context("golden case without top5")?;
        let tied: Vec<u32> = case.top5.iter().filter(|(_, s)| *s == ref_score).map(|&(i, _)| i).collect();
        if !tied.contains(&ours[0].index) {
            mismatches.push(format!(
                "{}: {}: top-1 is {} {:?} ({:.4}), reference {} {:?} ({:.4})",
                model.id,
                case.image,
                ours[0].index,
                label(ours[0].index),
                ours[0].score,
                ref_top,
                label(ref_top),
                ref_score
            ));
        }

        if ours.len() == case.top5.len()
            && ours.iter().zip(&case.top5).all(|(p, &(i, s))| p.index == i && (p.score - s).abs() <= 1e-5)
        {
            same_top5 += 1;
        } else {
            mismatches
                .push(format!("{}: {}: top-5 differs from the reference's (see the snapshot)", model.id, case.image));
        }

        writeln!(snapshot, "{}", case.image)?;
        for rank in 0..ours.len().max(case.top5.len()) {
            let left = ours
                .get(rank)
                .map(|p| format!("{:.4} {:>4} {}", p.score, p.index, p.label.as_deref().unwrap_or("<no label>")))
                .unwrap_or_default();
            let right = case.top5.get(rank).map(|&(i, s)| format!("{s:.4} {i:>4} {}", label(i))).unwrap_or_default();
            writeln!(snapshot, "  {}. {left:<44} | {right}", rank + 1)?;
        }
    }
    Ok(ModelResult { snapshot, mismatches, same_top5 })
}

#[test]
fn photos_top5_equals_the_reference_and_is_snapshotted() {
    let mut errors = Vec::new();
    let mut snapshots = Vec::new();
    for runtime in runtimes() {
        for model in golden().models() {
            if model.photo_cases().next().is_none() {
                continue;
            }
            match classify_model(runtime, model) {
                Ok(result) => {
                    report(format!(
                        "classify [{}] {}: {} photos, {} with the reference's top-5",
                        runtime.name(),
                        model.id,
                        model.photo_cases().count(),
                        result.same_top5
                    ));
                    errors.extend(result.mismatches.into_iter().map(|m| format!("[{}] {m}", runtime.name())));
                    snapshots.push((format!("top5__{}", model.id), result.snapshot));
                }
                Err(e) => errors.push(format!("[{}] {}: {e:#}", runtime.name(), model.id)),
            }
        }
    }
    // Every runtime is held to the same snapshot: the component must give the same bits anywhere.
    // Each snapshot is checked even if an earlier one or a top-1 check failed, so one run shows
    // (and, outside CI, writes as .snap.new) every change; the failures are reported together.
    for (name, text) in snapshots {
        let checked = std::panic::catch_unwind(|| {
            insta::with_settings!({ omit_expression => true, prepend_module_to_snapshot => true }, {
                insta::assert_snapshot!(name.clone(), text);
            });
        });
        if checked.is_err() {
            errors.push(format!("snapshot {name} differs (see above; review with `cargo insta review`)"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
