//! The installed binary, run as users run it, on the shared models and photos.

use std::path::PathBuf;
use std::process::{Command, Output};

use edge_classify::model::{LoadOptions, Model};

fn shared(dir: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("{}/../../shared/{dir}/{name}", env!("CARGO_MANIFEST_DIR")))
}

fn model(name: &str) -> PathBuf {
    shared("models", name)
}

fn image(name: &str) -> PathBuf {
    shared("images", name)
}

const QUANT: &str = "mobilenet_v2_1.0_224_quant.tflite";
const FLOAT: &str = "dog_breeds_mobilenet_v2_160_float.tflite";

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-classify")).args(args).output().expect("starting edge-classify")
}

fn run_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// A failure is exactly one `edge-classify:` line on stderr, nothing on stdout, and a non-zero exit.
fn assert_one_line_error(args: &[&std::ffi::OsStr]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.starts_with("edge-classify: "), "{args:?}: {stderr:?}");
    stderr
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

/// The words of the row of `inspect`'s text output whose key (first word, after indentation) is
/// `key`: the key and its value, whatever the alignment.
fn row(text: &str, key: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} row in\n{text}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn inspect_quantized_model() {
    let text = run_ok(args!["inspect", model(QUANT)]);
    assert_eq!(row(&text, "CONV_2D"), "CONV_2D 36");
    assert_eq!(row(&text, "DEPTHWISE_CONV_2D"), "DEPTHWISE_CONV_2D 17");
    assert_eq!(row(&text, "int16"), "int16 yes (converted on load)");
    assert_eq!(row(&text, "int8"), "int8 yes (its own precision)");
    assert_eq!(row(&text, "fp32"), "fp32 yes (converted on load)");
    // Operator counts line up in one column, under the values.
    let column = |key: &str| text.lines().find(|l| l.trim_start().starts_with(key)).unwrap().rfind(' ').unwrap();
    assert_eq!(column("CONV_2D"), column("DEPTHWISE_CONV_2D"));
    assert_eq!(column("CONV_2D"), column("ADD"));
    assert!(row(&text, "input").contains("[1, 224, 224, 3] UINT8, scale 0.0078125, zero point 128"), "{text}");
    assert!(row(&text, "output").contains("[1, 1001] UINT8"), "{text}");
    let info = Model::load(&std::fs::read(model(QUANT)).unwrap(), &LoadOptions::default()).unwrap().info().clone();
    assert!(row(&text, "MACs").starts_with(&format!("MACs {} (", info.macs)), "{text}");
    assert!(row(&text, "parameters").contains(&format!("{} bytes", info.parameter_bytes)), "{text}");
    assert_eq!(row(&text, "operators"), format!("operators {}", info.operators));
    assert_eq!(row(&text, "name"), "name ImageClassifier", "the metadata's name");
}

#[test]
fn inspect_float_model_needs_quantizing_for_int8() {
    let text = run_ok(args!["inspect", model(FLOAT)]);
    assert!(row(&text, "precision").ends_with("fp32"), "{text}");
    assert_eq!(row(&text, "fp32"), "fp32 yes (its own precision)");
    for p in ["int8", "int16"] {
        let r = row(&text, p);
        assert!(r.contains("no: a float model needs calibration"), "{text}");
        assert!(r.contains(&format!("edge-classify quantize --target {p} --calibrate")), "{text}");
    }
}

#[test]
fn inspect_json() {
    let text = run_ok(args!["inspect", "--json", model(QUANT)]);
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["operators"]["CONV_2D"], 36);
    assert_eq!(v["operators"]["DEPTHWISE_CONV_2D"], 17);
    assert_eq!(v["precision"], "int8");
    assert_eq!(v["precisions"]["int16"]["runs"], true);
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 224, 224, 3]));
    assert_eq!(v["inputs"][0]["type"], "UINT8");
    assert_eq!(v["inputs"][0]["quantization"]["zero_point"], 128);
    assert_eq!(v["file_bytes"], std::fs::metadata(model(QUANT)).unwrap().len());

    let float: serde_json::Value = serde_json::from_str(&run_ok(args!["inspect", "--json", model(FLOAT)])).unwrap();
    assert_eq!(float["precisions"]["int8"]["runs"], false);
    assert!(float["precisions"]["int8"]["error"].as_str().unwrap().contains("edge-classify quantize"));
    assert_eq!(float["precisions"]["fp32"]["native"], true);
}

/// `--kernels`: one kernel per executed step (36 CONV_2D + 17 DEPTHWISE_CONV_2D of the 224 model are
/// 53 convolution steps), each convolution on a simd128 micro-kernel, in both output forms.
#[test]
fn inspect_kernels() {
    let v: serde_json::Value =
        serde_json::from_str(&run_ok(args!["inspect", "--json", "--kernels", model(QUANT)])).unwrap();
    let int8: Vec<&str> = v["kernels"]["int8"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    let convs: Vec<&&str> =
        int8.iter().filter(|k| ["/conv-packed/", "/pointwise/", "/depthwise/"].iter().any(|l| k.contains(l))).collect();
    assert_eq!(convs.len(), 53, "{int8:?}");
    assert!(convs.iter().all(|k| k.starts_with("int8/") && k.ends_with("/simd128")), "{int8:?}");
    // int16 is the int8 plan step for step, plus the DEQUANTIZE before its float SOFTMAX (issue 31).
    let int16: Vec<&str> = v["kernels"]["int16"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(int16.len(), int8.len() + 1, "{int16:?}");
    assert!(int16[int16.len() - 1].starts_with("fp32/softmax"), "{int16:?}");
    let text = run_ok(args!["inspect", "--kernels", model(QUANT)]);
    assert!(text.contains("kernels at int8 (simd128 build)\n    0  int8/conv-packed/simd128\n"), "{text}");
}

/// A model is named by its metadata, else by its file's stem: never by the file's description, which
/// for these files is the converter's "TOCO Converted." (and not by the subgraph's "main").
#[test]
fn inspect_and_classify_name_a_model_without_metadata_by_its_file_stem() {
    for file in ["person_detect.tflite", "mobilenet_v3_small_224_1.0_uint8.tflite"] {
        let stem = file.trim_end_matches(".tflite");
        let text = run_ok(args!["inspect", model(file)]);
        assert_eq!(row(&text, "name"), format!("name {stem}"), "{file}");
        assert!(!text.contains("TOCO"), "{file}: {text}");
        let v: serde_json::Value = serde_json::from_str(&run_ok(args!["inspect", "--json", model(file)])).unwrap();
        assert_eq!(v["name"], stem, "{file}");
    }
    let out = run_ok(args!["classify", "--json", "--model", model("person_detect.tflite"), image("grace_hopper.bmp")]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["model"], "person_detect", "{v}");
    assert!(!out.contains("TOCO"), "{out}");
}

/// The binary's text against `Model::classify` on the same bytes, formatted here independently.
#[test]
fn classify_matches_the_library() {
    let labels = model("imagenet_labels.txt");
    let photos = [image("grace_hopper.bmp"), image("cat.bmp")];
    let text =
        run_ok(args!["classify", "--model", model(QUANT), "--labels", labels, "--top", "3", photos[0], photos[1]]);

    let options = LoadOptions { labels: Some(std::fs::read_to_string(&labels).unwrap()), ..LoadOptions::default() };
    let mut m = Model::load(&std::fs::read(model(QUANT)).unwrap(), &options).unwrap();
    let blocks: Vec<String> = photos
        .iter()
        .map(|p| {
            let preds = m.classify(&std::fs::read(p).unwrap(), 3).unwrap();
            preds.iter().map(|p| format!("{}  {:.4}\n", p.label.as_deref().unwrap(), p.score)).collect()
        })
        .collect();
    assert_eq!(text, blocks.join("\n"));
    assert!(text.starts_with("military uniform  0."), "{text}");
    assert_eq!(text.lines().filter(|l| l.is_empty()).count(), 1, "one blank line between two blocks");
}

#[test]
fn classify_at_another_precision_without_a_labels_file() {
    let photo = image("grace_hopper.bmp");
    let text = run_ok(args!["classify", "--model", model(QUANT), "--precision", "int16", "--top", "2", photo]);
    let options = LoadOptions { precision: Some(edge_classify::model::Precision::Int16), ..LoadOptions::default() };
    let mut m = Model::load(&std::fs::read(model(QUANT)).unwrap(), &options).unwrap();
    let want: String = m
        .classify(&std::fs::read(&photo).unwrap(), 2)
        .unwrap()
        .iter()
        .map(|p| match &p.label {
            // The model carries its own labels in its metadata; without them the line names the index.
            Some(l) => format!("{l}  {:.4}\n", p.score),
            None => format!("class {}  {:.4}\n", p.index, p.score),
        })
        .collect();
    assert_eq!(text, want);
    assert!(text.starts_with("military uniform  "), "{text}");

    // No labels anywhere: `class N  score`.
    let text = run_ok(args!["classify", "--model", model(FLOAT), "--top", "1", image("imprinting_dog_test_0.bmp")]);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(matches!(words[..], ["class", n, s] if n.parse::<u32>().unwrap() < 19 && s.len() == 6), "{text:?}");
}

#[test]
fn classify_json() {
    let photos = [image("grace_hopper.bmp"), image("cat.bmp")];
    let labels = model("imagenet_labels.txt");
    let text = run_ok(args!["classify", "--model", model(QUANT), "--labels", labels, "--json", photos[0], photos[1]]);
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for (v, photo) in lines.iter().zip(&photos) {
        assert_eq!(v["image"], photo.display().to_string());
        assert_eq!(v["precision"], "int8");
        assert!(v["model"].as_str().is_some_and(|m| !m.is_empty()));
        let preds = v["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 5, "the default --top");
        let scores: Vec<f64> = preds.iter().map(|p| p["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(preds.iter().all(|p| p["index"].is_u64() && p["label"].is_string()));
    }
    assert_eq!(lines[0]["predictions"][0]["label"], "military uniform");
}

#[test]
fn errors_are_one_line() {
    let missing = model("no-such-model.tflite");
    let photo = image("grace_hopper.bmp");
    let not_a_model = model("imagenet_labels.txt");
    let e = assert_one_line_error(args!["classify", "--model", missing, photo]);
    assert!(e.contains("cannot read model") && e.contains("no-such-model.tflite"), "{e}");
    let e = assert_one_line_error(args!["inspect", missing]);
    assert!(e.contains("no-such-model.tflite"), "{e}");
    let e = assert_one_line_error(args!["inspect", not_a_model]);
    assert!(e.contains("malformed model"), "{e}");
    let e = assert_one_line_error(args!["classify", "--model", not_a_model, photo]);
    assert!(e.contains("malformed model"), "{e}");
    // An image that is not one, and a command line that is wrong, fail the same way.
    let e = assert_one_line_error(args!["classify", "--model", model(QUANT), not_a_model]);
    assert!(e.contains("imagenet_labels.txt"), "{e}");
    assert_one_line_error(args!["classify", "--model", model(QUANT), "--top", "0", photo]);
    assert_one_line_error(args!["classify", "--model", model(QUANT)]);
    assert_one_line_error(args!["frobnicate"]);
    let e = assert_one_line_error(args!["classify", "--model", model(FLOAT), "--precision", "int8", photo]);
    assert!(e.contains("needs calibration") && e.contains("edge-classify quantize --target int8"), "{e}");
}

#[test]
fn quantize_then_inspect() {
    let dir = std::env::temp_dir().join(format!("edge-classify-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("quant_fp32.tflite");
    // A quantized model needs no calibration to be written at another precision.
    let status = run(args!["quantize", "--target", "fp32", model(QUANT), out]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let v: serde_json::Value = serde_json::from_str(&run_ok(args!["inspect", "--json", out])).unwrap();
    assert_eq!(v["precision"], "fp32");
    assert_eq!(v["operators"]["CONV_2D"], 36);
    let e = assert_one_line_error(args!["quantize", "--target", "int8", model(FLOAT), dir.join("x.tflite")]);
    assert!(e.contains("calibration"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `quantize --target int16` writes the float SOFTMAX tail by default (issue 31) and the pure 16x8
/// one with `--int16-softmax`; the flag means nothing at another target and is refused there.
#[test]
fn quantize_int16_tail_is_the_users_choice() {
    let dir = std::env::temp_dir().join(format!("edge-classify-cli-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let person = model("person_detect.tflite");
    let (ours, pure) = (dir.join("float_tail.tflite"), dir.join("pure.tflite"));
    run_ok(args!["quantize", "--target", "int16", person, ours]);
    run_ok(args!["quantize", "--target", "int16", "--int16-softmax", person, pure]);
    let output = |path: &PathBuf| {
        let m = Model::load(&std::fs::read(path).unwrap(), &LoadOptions::default()).unwrap();
        (m.info().precision, m.info().output.element)
    };
    use edge_classify::model::{ElementType, Precision};
    assert_eq!(output(&ours), (Precision::Int16, ElementType::Float32));
    assert_eq!(output(&pure), (Precision::Int16, ElementType::Int16));
    let e = assert_one_line_error(args!["quantize", "--target", "int8", "--int16-softmax", person, dir.join("x")]);
    assert!(e.contains("--int16-softmax"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
