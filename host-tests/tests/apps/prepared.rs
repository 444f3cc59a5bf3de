//! The prepared-model format the build embeds (`plan::persist`), natively: for every golden model,
//! a model restored from its prepared bytes gives the same output bits as the model `load`ed from
//! the TFLite file, on the golden inputs.

use anyhow::{ensure, Context, Result};
use edge_classify::model::{LoadOptions, Model, Tensor};

use crate::common::*;

fn to_tensor(npy: host_tests::npy::Npy) -> Result<Tensor> {
    let t = npy.to_tensor()?;
    let data = match t.data {
        host_tests::TensorData::Float32(v) => edge_classify::model::TensorData::Float32(v),
        host_tests::TensorData::Uint8(v) => edge_classify::model::TensorData::Uint8(v),
        host_tests::TensorData::Int8(v) => edge_classify::model::TensorData::Int8(v),
        host_tests::TensorData::Int16(v) => edge_classify::model::TensorData::Int16(v),
    };
    Ok(Tensor { shape: t.shape, data })
}

#[test]
fn restored_models_compute_the_same_bits_as_loaded_ones() -> Result<()> {
    for model in golden().models() {
        let tflite = model.model_bytes()?;
        let mut loaded =
            Model::load(&tflite, &LoadOptions::default()).map_err(|e| anyhow::anyhow!("{}: {e}", model.id))?;
        let bytes = loaded.to_prepared_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut restored = Model::from_prepared_bytes(&bytes, &LoadOptions::default())
            .map_err(|e| anyhow::anyhow!("{}: {e}", model.id))?;
        ensure!(restored.info() == loaded.info(), "{}: info differs after restoring", model.id);
        for case in model.cases.iter().take(3) {
            let input = to_tensor(case.input(golden())?).with_context(|| format!("{} {}", model.id, case.image))?;
            let a = loaded.infer(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
            let b = restored.infer(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(a == b, "{} {}: restored model's output differs", model.id, case.image);
        }
    }
    Ok(())
}

#[test]
fn restoring_applies_the_options() -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let loaded = Model::load(&model.model_bytes()?, &LoadOptions::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = loaded.to_prepared_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
    let two_labels = LoadOptions { labels: Some("a\nb\n".into()), ..Default::default() };
    ensure!(Model::from_prepared_bytes(&bytes, &two_labels).is_err(), "labels that do not fit are refused");
    let zero_std = LoadOptions { std: Some(0.0), ..Default::default() };
    ensure!(Model::from_prepared_bytes(&bytes, &zero_std).is_err(), "std 0 is refused");
    for cut in [0, 8, 16, bytes.len() / 2, bytes.len() - 1] {
        ensure!(
            Model::from_prepared_bytes(&bytes[..cut], &LoadOptions::default()).is_err(),
            "truncated at {cut} is refused"
        );
    }
    Ok(())
}
