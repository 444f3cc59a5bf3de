//! Load the built-in detector into the imported classifier, then one verdict per image.

use crate::frame;

wit_bindgen::generate!({ path: "../../wit", world: "classifier-client" });

use edge::classify::classifier::Model;
use edge::classify::types::{LoadOptions, Tensor, TensorData};

/// The Visual Wake Words person detector, byte for byte as TFLite Micro ships it; the build
/// (`cargo xtask dist`) points this at the fetched model.
static DETECTOR: &[u8] = include_bytes!(env!("DOORBELL_MODEL"));

/// The detector's name: its file carries no metadata to name it (its description is the converter's
/// "TOCO Converted.").
const NAME: &str = "Visual Wake Words person detector";
/// Its labels, one per output index (TFLite Micro's vww_labels.txt: notperson, person).
const LABELS: [&str; 2] = ["no person", "person"];
/// Output index of the "person" class.
const PERSON: usize = 1;

pub fn main() -> i32 {
    let images: Vec<String> = std::env::args().skip(1).collect();
    if images.is_empty() || images.iter().any(|a| a.starts_with("--")) {
        eprintln!("usage: doorbell IMAGE...");
        return 2;
    }
    let options = LoadOptions { precision: None, labels: Some(LABELS.join("\n")), mean: None, std: None };
    let model = match Model::load(DETECTOR, &options) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("doorbell: error: the built-in {NAME} did not load: {e:?}");
            return 1;
        }
    };
    for path in &images {
        match person_probability(&model, path) {
            Ok(p) if p > 0.5 => println!("{path}: {} ({p:.2})", LABELS[PERSON]),
            Ok(p) => println!("{path}: {} ({:.2})", LABELS[1 - PERSON], 1.0 - p),
            Err(e) => {
                eprintln!("doorbell: error: {path}: {e}");
                return 1;
            }
        }
    }
    0
}

fn person_probability(model: &Model, path: &str) -> Result<f32, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e} (is its directory preopened?)"))?;
    let info = model.info();
    let (h, w) = match info.input.shape[..] {
        [1, h, w, 1] => (h as usize, w as usize),
        ref s => return Err(format!("the detector takes {s:?}, not a gray image")),
    };
    if let Some(pixels) = frame::raw_int8_frame(&bytes, w, h) {
        let input = Tensor { shape: info.input.shape.clone(), data: TensorData::Int8(pixels) };
        let output = model.infer(&input).map_err(|e| format!("{e:?}"))?;
        let (TensorData::Int8(scores), Some(q)) = (output.data, info.output.quantization) else {
            return Err("the detector's output is not quantized int8".into());
        };
        // The graph ends in SOFTMAX: the dequantized score is the probability.
        let person = scores.get(PERSON).ok_or("the detector has no person output")?;
        return Ok(q.scale * (*person as i32 - q.zero_point) as f32);
    }
    let predictions = model.classify(&bytes, 2).map_err(|e| format!("{e:?}"))?;
    Ok(predictions.iter().find(|p| p.label.as_deref() == Some(LABELS[PERSON])).map_or(0.0, |p| p.score))
}
