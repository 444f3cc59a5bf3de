//! [`Runtime`] on the `edge-classify` crate linked natively: the same Rust code as the component,
//! compiled for the host. It is the identity baseline of the runtime matrix and the native column
//! of `cargo xtask bench native`.

use edge_classify::model as m;

use crate::api;
use crate::runtime::{Model, Runtime};

pub struct NativeRuntime;

struct NativeModel(m::Model);

fn error(e: edge_classify::Error) -> api::ApiError {
    use edge_classify::Error as E;
    let (kind, message) = match e {
        E::MalformedModel(s) => (api::ErrorKind::MalformedModel, s),
        E::UnsupportedModel(s) => (api::ErrorKind::UnsupportedModel, s),
        E::InvalidImage(s) => (api::ErrorKind::InvalidImage, s),
        E::InvalidInput(s) => (api::ErrorKind::InvalidInput, s),
        E::TooLarge(s) => (api::ErrorKind::TooLarge, s),
    };
    api::ApiError { kind, message }
}

fn tensor_info(t: &m::TensorInfo) -> api::TensorInfo {
    api::TensorInfo {
        shape: t.shape.clone(),
        element: t.element,
        quantization: t.quantization.map(|q| api::Quantization { scale: q.scale, zero_point: q.zero_point }),
    }
}

/// The kernel each plan step of this model would run in the SIMD component (`Model::kernels`; the
/// table is `kernels::select`), with repeats counted: `int8/pointwise/simd128 x34, ...` in order of
/// first use. For benchmarks: which micro-kernels a time is made of.
pub fn simd_kernel_summary(tflite: &[u8], o: &api::LoadOptions) -> Result<String, String> {
    let model = m::Model::load(tflite, &options(o)).map_err(|e| e.to_string())?;
    let mut counts: Vec<(String, usize)> = Vec::new();
    for k in model.kernels(Some(edge_classify::kernels::Arch::Simd128)) {
        match counts.iter_mut().find(|(name, _)| *name == k) {
            Some((_, n)) => *n += 1,
            None => counts.push((k, 1)),
        }
    }
    Ok(counts.iter().map(|(k, n)| if *n > 1 { format!("{k} x{n}") } else { k.clone() }).collect::<Vec<_>>().join(", "))
}

fn options(o: &api::LoadOptions) -> m::LoadOptions {
    m::LoadOptions { precision: o.precision, labels: o.labels.clone(), mean: o.mean, std: o.std, name: None }
}

impl Runtime for NativeRuntime {
    fn name(&self) -> &str {
        "native"
    }

    fn load(&self, tflite: &[u8], o: &api::LoadOptions) -> api::Call<Box<dyn Model>> {
        Ok(m::Model::load(tflite, &options(o)).map(|x| Box::new(NativeModel(x)) as Box<dyn Model>).map_err(error))
    }

    fn quantize(&self, tflite: &[u8], target: api::Precision, c: &api::Calibration) -> api::Call<Vec<u8>> {
        let cal = edge_classify::quantize::Calibration { images: c.images.clone(), mean: c.mean, std: c.std };
        Ok(edge_classify::quantize::quantize_file(tflite, target, &cal).map_err(error))
    }

    fn embedded(&self, _o: &api::LoadOptions) -> api::Call<Box<dyn Model>> {
        Ok(Err(api::ApiError {
            kind: api::ErrorKind::UnsupportedModel,
            message: "the native build has no embedded model".into(),
        }))
    }
}

impl Model for NativeModel {
    fn info(&mut self) -> anyhow::Result<api::ModelInfo> {
        let i = self.0.info();
        Ok(api::ModelInfo {
            name: i.name.clone(),
            description: i.description.clone(),
            version: i.version.clone(),
            precision: i.precision,
            input: tensor_info(&i.input),
            output: tensor_info(&i.output),
            classes: i.classes,
            operators: i.operators,
            macs: i.macs,
            parameter_bytes: i.parameter_bytes,
        })
    }

    fn classify(&mut self, image: &[u8], top_k: u32) -> api::Call<Vec<api::Prediction>> {
        Ok(self
            .0
            .classify(image, top_k)
            .map(|ps| {
                ps.into_iter().map(|p| api::Prediction { index: p.index, label: p.label, score: p.score }).collect()
            })
            .map_err(error))
    }

    fn infer(&mut self, input: &api::Tensor) -> api::Call<api::Tensor> {
        let data = match &input.data {
            api::TensorData::Float32(v) => m::TensorData::Float32(v.clone()),
            api::TensorData::Uint8(v) => m::TensorData::Uint8(v.clone()),
            api::TensorData::Int8(v) => m::TensorData::Int8(v.clone()),
            api::TensorData::Int16(v) => m::TensorData::Int16(v.clone()),
        };
        let out = self.0.infer(&m::Tensor { shape: input.shape.clone(), data }).map_err(error);
        Ok(out.map(|t| api::Tensor {
            shape: t.shape,
            data: match t.data {
                m::TensorData::Float32(v) => api::TensorData::Float32(v),
                m::TensorData::Uint8(v) => api::TensorData::Uint8(v),
                m::TensorData::Int8(v) => api::TensorData::Int8(v),
                m::TensorData::Int16(v) => api::TensorData::Int16(v),
            },
        }))
    }
}
