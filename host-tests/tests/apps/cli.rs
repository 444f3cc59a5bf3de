//! `dist/classify.wasm` as `wasmtime run --dir <images>::/photos dist/classify.wasm ...` runs it.

use anyhow::{ensure, Context, Result};
use host_tests::apps::Output;

use crate::common::*;

fn run(dirs: &[(std::path::PathBuf, String)], args: &[&str]) -> Output {
    classify_cli().run(dirs, &strings(args)).unwrap_or_else(|e| panic!("classify {args:?}: {e:#}"))
}

/// A failure is a non-zero exit with exactly one line on stderr and nothing on stdout.
fn assert_one_line_error(out: &Output, args: &[&str], mentions: &str) {
    assert_ne!(out.exit_code, 0, "classify {args:?} should fail: {out:?}");
    assert_eq!(out.stdout, "", "classify {args:?} printed to stdout on failure");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "classify {args:?}: stderr should be one line: {:?}", out.stderr);
    assert!(lines[0].contains(mentions), "classify {args:?}: {:?} does not mention {mentions:?}", lines[0]);
}

/// The human format on every golden photo in one run, with the embedded model: one block per
/// image in argument order, blocks separated by a blank line, `label  score` lines best first,
/// and the first line's label is the reference's top-1.
#[test]
fn embedded_model_top1_matches_the_reference_on_every_photo() -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let cases: Vec<_> = model.photo_cases().collect();
    let images: Vec<String> = cases.iter().map(|c| format!("/photos/{}", c.image)).collect();
    let args: Vec<&str> = images.iter().map(String::as_str).collect();
    let out = run(&[images_dir()], &args);
    ensure!(out.exit_code == 0, "exit code {}; stderr {:?}", out.exit_code, out.stderr);
    ensure!(out.stderr.is_empty(), "stderr: {:?}", out.stderr);

    let blocks: Vec<&str> = out.stdout.trim_end_matches('\n').split("\n\n").collect();
    ensure!(blocks.len() == cases.len(), "{} blocks for {} images:\n{}", blocks.len(), cases.len(), out.stdout);
    let mut errors = Vec::new();
    for (case, block) in cases.iter().zip(&blocks) {
        let lines: Vec<(&str, f32)> = block
            .lines()
            .map(|l| {
                let (label, score) =
                    l.rsplit_once("  ").with_context(|| format!("line {l:?} is not `label  score`"))?;
                Ok((label, score.parse::<f32>().with_context(|| format!("score in {l:?}"))?))
            })
            .collect::<Result<_>>()?;
        ensure!(lines.len() == 5, "{}: {} lines, the default is the top 5", case.image, lines.len());
        ensure!(lines.windows(2).all(|w| w[0].1 >= w[1].1), "{}: scores not best first: {block}", case.image);
        if let Err(e) = check_top1_label(model, case, lines[0].0) {
            errors.push(format!("{e:#}"));
        }
    }
    ensure!(errors.is_empty(), "{}", errors.join("\n"));
    Ok(())
}

/// `--model --labels --precision --top --json` on two images: one JSON object per line, in order.
#[test]
fn json_output_with_a_model_from_the_preopened_dir() -> Result<()> {
    let model = golden_model("mobilenet_v2_1.0_224_ptq_int8");
    let labels_file = model.labels.as_deref().context("the ptq model has labels")?;
    let cases: Vec<_> = model.photo_cases().filter(|c| c.image == "cat.bmp" || c.image == "parrot.jpg").collect();
    ensure!(cases.len() == 2, "golden has cat.bmp and parrot.jpg for {}", model.id);
    let model_arg = format!("/models/{}", model.file);
    let labels_arg = format!("/models/{labels_file}");
    let images: Vec<String> = cases.iter().map(|c| format!("/photos/{}", c.image)).collect();
    let mut args = vec!["--model", &model_arg, "--labels", &labels_arg, "--precision", "int8", "--top", "3", "--json"];
    args.extend(images.iter().map(String::as_str));
    let out = run(&[images_dir(), models_dir()], &args);
    ensure!(out.exit_code == 0, "exit code {}; stderr {:?}", out.exit_code, out.stderr);

    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() == 2, "one JSON line per image expected:\n{}", out.stdout);
    let labels = model.labels()?;
    for ((case, line), image) in cases.iter().zip(&lines).zip(&images) {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        ensure!(v["image"] == image.as_str(), "image field {} for {image}", v["image"]);
        ensure!(v["precision"] == "int8", "precision field {}", v["precision"]);
        let predictions = v["predictions"].as_array().context("predictions is a list")?;
        ensure!(predictions.len() == 3, "--top 3 gave {} predictions", predictions.len());
        for p in predictions {
            let index = p["index"].as_u64().context("index is a number")? as usize;
            ensure!(p["label"] == labels[index].as_str(), "label {} for index {index}", p["label"]);
        }
        let top = predictions[0]["index"].as_u64().context("index")? as u32;
        ensure!(reference_top1(case)?.contains(&top), "{}: top-1 index {top}, reference {:?}", case.image, case.top5);
    }
    Ok(())
}

#[test]
fn missing_image_is_one_line_on_stderr_and_a_failure() {
    let args = ["/photos/there-is-no-such-photo.jpg"];
    assert_one_line_error(&run(&[images_dir()], &args), &args, "there-is-no-such-photo.jpg");
}

#[test]
fn image_outside_the_preopened_dirs_is_refused() {
    // The host path exists, but the guest sees only what --dir grants.
    let host_path = host_tests::paths::images_dir().join("cat.bmp");
    let host_path = host_path.to_string_lossy().into_owned();
    let args = [host_path.as_str()];
    assert_one_line_error(&run(&[], &args), &args, "cat.bmp");
}

#[test]
fn a_file_that_is_not_an_image_is_one_line_on_stderr_and_a_failure() {
    let labels = format!("/models/{}", golden_model(EMBEDDED_MODEL_ID).labels.as_deref().unwrap());
    let args = [labels.as_str()];
    assert_one_line_error(&run(&[models_dir()], &args), &args, "not a usable image");
}

#[test]
fn a_file_that_is_not_a_model_is_one_line_on_stderr_and_a_failure() {
    let args = ["--model", "/photos/cat.bmp", "/photos/cat.bmp"];
    assert_one_line_error(&run(&[images_dir()], &args), &args, "malformed model");
}

#[test]
fn bad_command_lines_are_one_line_on_stderr_and_a_failure() {
    for args in [&[][..], &["--top", "0", "/photos/cat.bmp"], &["--frobnicate", "/photos/cat.bmp"]] {
        assert_one_line_error(&run(&[images_dir()], args), args, "classify");
    }
}

#[test]
fn labels_that_do_not_fit_the_model_are_refused() {
    // The VWW labels (2 lines) for the 1001-class embedded model.
    let vww = golden_model("person_detect").labels.clone().expect("person_detect has labels");
    let labels = format!("/models/{vww}");
    let args = ["--labels", labels.as_str(), "/photos/cat.bmp"];
    assert_one_line_error(&run(&[images_dir(), models_dir()], &args), &args, "labels");
}

/// `--model` without `--labels` on a model that carries TFLite metadata: the labels come from the
/// file's own label file, and `--precision int16` works on the embedded model too.
#[test]
fn labels_from_the_model_metadata_and_every_precision_of_the_embedded_model() -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let case = model.photo_cases().find(|c| c.image == "grace_hopper.bmp").context("golden photo")?;
    let photo = format!("/photos/{}", case.image);
    let model_arg = format!("/models/{}", model.file);
    let out = run(&[images_dir(), models_dir()], &["--model", &model_arg, "--top", "1", &photo]);
    ensure!(out.exit_code == 0, "{out:?}");
    let (label, _) = out.stdout.trim().rsplit_once("  ").context("a `label  score` line")?;
    check_top1_label(model, case, label)?;
    for precision in edge_classify::model::Precision::ALL.map(edge_classify::model::Precision::name) {
        let out = run(&[images_dir()], &["--precision", precision, "--top", "1", &photo]);
        ensure!(out.exit_code == 0, "embedded model at {precision}: {out:?}");
        let (label, _) = out.stdout.trim().rsplit_once("  ").context("a `label  score` line")?;
        check_top1_label(model, case, label)?;
    }
    Ok(())
}

/// `--json` names the model: by its metadata (the embedded model's "ImageClassifier"), else by the
/// file's stem; never by the converter's description ("TOCO Converted.", the person detector's).
#[test]
fn json_names_the_model_by_its_metadata_else_its_file_stem() -> Result<()> {
    let photo = "/photos/grace_hopper.bmp";
    let out = run(&[images_dir()], &["--json", "--top", "1", photo]);
    ensure!(out.exit_code == 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())?;
    ensure!(v["model"] == "ImageClassifier", "{v}");
    let out = run(&[images_dir(), models_dir()], &["--model", "/models/person_detect.tflite", "--json", photo]);
    ensure!(out.exit_code == 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())?;
    ensure!(v["model"] == "person_detect" && !out.stdout.contains("TOCO"), "{v}");
    Ok(())
}

/// A run whose instance goes over its memory cap fails with an error that names the limit (as
/// every trap here is an error, never an exit code), and a run that fits under the same cap
/// does not.
#[test]
fn a_run_over_the_memory_cap_fails_naming_the_limit() -> Result<()> {
    use host_tests::apps::{LimitHit, Limits};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-memory-cap");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("big.jpg"), crate::http::progressive_444())?;
    let limited =
        classify_cli().with_limits(Limits { memory_bytes: crate::http::SMALL_CAP, ..classify_cli().limits() });
    let fits = limited.run(&[images_dir()], &strings(&["/photos/grace_hopper.bmp"]))?;
    ensure!(fits.exit_code == 0, "{fits:?}");
    let Err(e) = limited.run(&[(dir, "/big".to_owned())], &strings(&["/big/big.jpg"])) else {
        anyhow::bail!("a 2048x1536 4:4:4 progressive JPEG was classified under a 28 MiB cap");
    };
    ensure!(matches!(e.downcast_ref::<LimitHit>(), Some(LimitHit::Memory { .. })), "{e:#}");
    ensure!(format!("{e:#}").contains("memory limit exceeded"), "{e:#}");
    Ok(())
}

/// A run past its deadline is stopped with an error that says so: it cannot hang a test.
#[test]
fn a_run_past_its_deadline_is_stopped() {
    use host_tests::apps::{LimitHit, Limits};
    let limited =
        classify_cli().with_limits(Limits { deadline: Some(std::time::Duration::ZERO), ..classify_cli().limits() });
    match limited.run(&[images_dir()], &strings(&["/photos/grace_hopper.bmp"])) {
        Ok(out) => panic!("ran to the end past a zero deadline: {out:?}"),
        Err(e) => assert!(matches!(e.downcast_ref::<LimitHit>(), Some(LimitHit::Deadline(_))), "{e:#}"),
    }
}
