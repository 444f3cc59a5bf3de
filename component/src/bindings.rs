//! WIT glue: converts between the generated `edge:classify` types and [`crate::model`], nothing else.

use crate::model::{self, ElementType, LoadOptions, Model, Precision, TensorData};
use core::cell::RefCell;

wit_bindgen::generate!({ path: "../wit", world: "classify" });

use exports::edge::classify::classifier::{self as wit, Guest, GuestModel};
use exports::edge::classify::quantizer as q;
use exports::edge::classify::types as t;

struct Component;

/// A WIT `model` resource; `RefCell` because WIT methods take `&self` while inference writes the
/// model's arenas (a component instance is single-threaded).
struct ModelResource(RefCell<Model>);

impl From<crate::Error> for t::Error {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        match e {
            E::MalformedModel(m) => t::Error::MalformedModel(m),
            E::UnsupportedModel(m) => t::Error::UnsupportedModel(m),
            E::InvalidImage(m) => t::Error::InvalidImage(m),
            E::InvalidInput(m) => t::Error::InvalidInput(m),
            E::TooLarge(m) => t::Error::TooLarge(m),
        }
    }
}

fn precision_from(p: t::Precision) -> Precision {
    match p {
        t::Precision::Fp32 => Precision::Fp32,
        t::Precision::Int16 => Precision::Int16,
        t::Precision::Int8 => Precision::Int8,
    }
}

fn precision_to(p: Precision) -> t::Precision {
    match p {
        Precision::Fp32 => t::Precision::Fp32,
        Precision::Int16 => t::Precision::Int16,
        Precision::Int8 => t::Precision::Int8,
    }
}

fn options(o: t::LoadOptions) -> LoadOptions {
    LoadOptions { precision: o.precision.map(precision_from), labels: o.labels, mean: o.mean, std: o.std, name: None }
}

fn element(e: ElementType) -> t::ElementType {
    match e {
        ElementType::Float32 => t::ElementType::Float32,
        ElementType::Uint8 => t::ElementType::Uint8,
        ElementType::Int8 => t::ElementType::Int8,
        ElementType::Int16 => t::ElementType::Int16,
    }
}

fn tensor_info(i: &model::TensorInfo) -> t::TensorInfo {
    t::TensorInfo {
        shape: i.shape.clone(),
        element: element(i.element),
        quantization: i.quantization.map(|q| t::Quantization { scale: q.scale, zero_point: q.zero_point }),
    }
}

fn tensor_to(x: model::Tensor) -> t::Tensor {
    let data = match x.data {
        TensorData::Float32(v) => t::TensorData::Float32(v),
        TensorData::Uint8(v) => t::TensorData::Uint8(v),
        TensorData::Int8(v) => t::TensorData::Int8(v),
        TensorData::Int16(v) => t::TensorData::Int16(v),
    };
    t::Tensor { shape: x.shape, data }
}

fn tensor_from(x: t::Tensor) -> model::Tensor {
    let data = match x.data {
        t::TensorData::Float32(v) => TensorData::Float32(v),
        t::TensorData::Uint8(v) => TensorData::Uint8(v),
        t::TensorData::Int8(v) => TensorData::Int8(v),
        t::TensorData::Int16(v) => TensorData::Int16(v),
    };
    model::Tensor { shape: x.shape, data }
}

impl Guest for Component {
    type Model = ModelResource;

    fn embedded(options_: t::LoadOptions) -> Result<wit::Model, t::Error> {
        let Some(bytes) = crate::embedded::baked() else {
            return Err(t::Error::UnsupportedModel("this build of the component has no embedded model".into()));
        };
        let model = crate::embedded::restore(bytes, &options(options_))?;
        Ok(wit::Model::new(ModelResource(RefCell::new(model))))
    }
}

impl GuestModel for ModelResource {
    fn load(tflite: Vec<u8>, options_: t::LoadOptions) -> Result<wit::Model, t::Error> {
        let model = Model::load_owned(tflite, &options(options_))?;
        Ok(wit::Model::new(ModelResource(RefCell::new(model))))
    }

    fn info(&self) -> t::ModelInfo {
        let m = self.0.borrow();
        let i = m.info();
        t::ModelInfo {
            name: i.name.clone(),
            description: i.description.clone(),
            version: i.version.clone(),
            precision: precision_to(i.precision),
            input: tensor_info(&i.input),
            output: tensor_info(&i.output),
            classes: i.classes,
            operators: i.operators,
            macs: i.macs,
            parameter_bytes: i.parameter_bytes,
        }
    }

    fn classify(&self, image: Vec<u8>, top_k: u32) -> Result<Vec<t::Prediction>, t::Error> {
        let predictions = self.0.borrow_mut().classify(&image, top_k)?;
        Ok(predictions.into_iter().map(|p| t::Prediction { index: p.index, label: p.label, score: p.score }).collect())
    }

    fn infer(&self, input: t::Tensor) -> Result<t::Tensor, t::Error> {
        Ok(tensor_to(self.0.borrow_mut().infer(&tensor_from(input))?))
    }
}

impl q::Guest for Component {
    fn quantize(tflite: Vec<u8>, target: t::Precision, calibration: q::Calibration) -> Result<Vec<u8>, t::Error> {
        let cal =
            crate::quantize::Calibration { images: calibration.images, mean: calibration.mean, std: calibration.std };
        Ok(crate::quantize::quantize_file(&tflite, precision_from(target), &cal)?)
    }
}

export!(Component);
