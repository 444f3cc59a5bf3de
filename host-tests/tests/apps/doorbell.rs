//! `dist/doorbell.wasm` on the VWW test frames: its verdict is the reference's top-1
//! (`golden/`: person.bmp scores person, no_person.bmp not-person).

use anyhow::{ensure, Context, Result};

use crate::common::*;

/// Index of "person" in the VWW model's output ([notperson, person]), from its labels file.
fn person_index() -> Result<u32> {
    let labels = golden_model("person_detect").labels()?;
    labels.iter().position(|l| l == "person").map(|i| i as u32).context("vww labels have \"person\"")
}

/// Raw camera frames (fed bit-cast, as TFLite Micro's test does) and photos (decoded, gray,
/// resized by the classifier, as the reference preprocessed them) in one run.
#[test]
fn verdicts_match_the_reference() -> Result<()> {
    let model = golden_model("person_detect");
    let images = ["person.bmp", "no_person.bmp", "grace_hopper.bmp", "sunflower.bmp"];
    let args: Vec<String> = images.iter().map(|f| format!("/photos/{f}")).collect();
    let out = doorbell().run(&[images_dir()], &args)?;
    ensure!(out.exit_code == 0, "exit code {}; stderr {:?}", out.exit_code, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    ensure!(lines.len() == images.len(), "one line per image expected:\n{}", out.stdout);
    ensure!(!out.stdout.contains("TOCO"), "the converter's description is no name:\n{}", out.stdout);
    let person = person_index()?;
    for ((image, line), arg) in images.iter().zip(&lines).zip(&args) {
        let case = model.cases.iter().find(|c| c.image == *image).context("golden VWW case")?;
        let top = reference_top1(case)?;
        ensure!(top.len() == 1, "{image}: the reference has a tie, no verdict to compare");
        let expected = if top[0] == person { "person" } else { "no person" };
        let verdict = line
            .strip_prefix(&format!("{arg}: "))
            .and_then(|rest| rest.rsplit_once(" ("))
            .map(|(v, _)| v)
            .with_context(|| format!("line {line:?} is not `PATH: VERDICT (SCORE)`"))?;
        ensure!(verdict == expected, "{image}: {verdict:?}, the reference says {expected:?}");
    }
    Ok(())
}

#[test]
fn a_missing_frame_fails_with_one_line() -> Result<()> {
    let out = doorbell().run(&[images_dir()], &strings(&["/photos/nobody.bmp"]))?;
    ensure!(out.exit_code != 0, "{out:?}");
    ensure!(out.stderr.lines().count() == 1 && out.stderr.contains("nobody.bmp"), "{out:?}");
    Ok(())
}
