//! tract behind `edge:bench/runner`, built as a wasm32-wasip2 component so it runs in the same
//! wasmtime as the project's classifier (see README.md).
//!
//! The loaded model lives in a global: a component instance is single-threaded and the host gives
//! each model its own instance, so one slot is all the bench needs.

use std::cell::RefCell;

use tract_tflite::internal::*;

wit_bindgen::generate!({ path: "wit", world: "bench" });

use exports::edge::bench::runner::{Guest, ModelInfo, Tensor as WitTensor};

struct Loaded {
    plan: Arc<TypedRunnableModel>,
    input_dt: DatumType,
    input_shape: Vec<usize>,
}

thread_local! {
    static MODEL: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

/// The WIT name of a storage (unquantized) datum type.
fn dtype_name(dt: DatumType) -> Result<&'static str, String> {
    Ok(match dt.unquantized() {
        DatumType::U8 => "uint8",
        DatumType::I8 => "int8",
        DatumType::I16 => "int16",
        DatumType::I32 => "int32",
        DatumType::F32 => "float32",
        other => return Err(format!("tensor type {other:?} has no WIT dtype here")),
    })
}

/// `{:?}` of a tract error chain on one line.
fn err(e: TractError) -> String {
    format!("{e:#}")
}

fn load_tflite(model: &[u8]) -> TractResult<TypedModel> {
    let mut reader = model;
    tract_tflite::tflite().model_for_read(&mut reader)
}

#[cfg(feature = "onnx")]
fn load_onnx(model: &[u8], input_shape: &[usize]) -> TractResult<TypedModel> {
    use tract_onnx::prelude::{Framework as _, InferenceFact, InferenceModelExt as _};
    use tract_onnx::tract_hir::infer::Factoid as _;
    let mut reader = model;
    let mut inference = tract_onnx::onnx().model_for_read(&mut reader)?;
    // Exports usually leave the batch symbolic: pin the whole shape, keep the file's element type.
    let declared = inference.input_fact(0)?.clone();
    let dt = declared.datum_type.concretize().unwrap_or(DatumType::F32);
    let mut shape = input_shape.to_vec();
    // Channels-first export of an NHWC model: dimension 1 is the channel count, the last is not.
    if shape.len() == 4 && declared.shape.dims().count() == 4 {
        let channels = shape[3];
        let dim = |i: usize| declared.shape.dim(i).and_then(|d| d.concretize()).and_then(|d| d.to_usize().ok());
        if dim(1) == Some(channels) && dim(3) != Some(channels) {
            shape = vec![shape[0], channels, shape[1], shape[2]];
        }
    }
    inference.set_input_fact(0, InferenceFact::dt_shape(dt, shape))?;
    inference.into_typed()
}

#[cfg(not(feature = "onnx"))]
fn load_onnx(_model: &[u8], _input_shape: &[usize]) -> TractResult<TypedModel> {
    Err(format_err!("this build of the tract runner has no ONNX support (cargo feature `onnx`)"))
}

struct Component;

impl Guest for Component {
    fn load(format: String, model: Vec<u8>, input_shape: Vec<u32>) -> Result<ModelInfo, String> {
        // Drop any previous model first so its memory is reusable by this one.
        MODEL.with(|m| m.borrow_mut().take());
        let input_shape: Vec<usize> = input_shape.iter().map(|&d| d as usize).collect();
        let typed = match format.as_str() {
            "tflite" => load_tflite(&model).map_err(|e| format!("tract-tflite refused the model: {}", err(e)))?,
            "onnx" => {
                load_onnx(&model, &input_shape).map_err(|e| format!("tract-onnx refused the model: {}", err(e)))?
            }
            other => return Err(format!("unknown model format {other:?} (expected tflite or onnx)")),
        };
        drop(model);
        if typed.inputs.len() != 1 || typed.outputs.is_empty() {
            return Err(format!(
                "expected one input and at least one output, the model has {} and {}",
                typed.inputs.len(),
                typed.outputs.len()
            ));
        }
        let input = typed.input_fact(0).map_err(err)?.clone();
        let output = typed.output_fact(0).map_err(err)?.clone();
        let input_dt = input.datum_type;
        let shape = input
            .shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| format!("the model's input shape {:?} is not concrete", input.shape))?;
        let info = ModelInfo {
            input_fact: format!("{input:?}"),
            output_fact: format!("{output:?}"),
            input_dtype: dtype_name(input_dt)?.to_owned(),
            input_shape: shape.iter().map(|&d| d as u32).collect(),
        };
        let plan = typed
            .into_optimized()
            .map_err(|e| format!("tract could not optimize the model: {}", err(e)))?
            .into_runnable()
            .map_err(|e| format!("tract could not plan the model: {}", err(e)))?;
        MODEL.with(|m| *m.borrow_mut() = Some(Loaded { plan, input_dt, input_shape: shape }));
        Ok(info)
    }

    fn run(input: WitTensor) -> Result<WitTensor, String> {
        MODEL.with(|m| {
            let m = m.borrow();
            let loaded = m.as_ref().ok_or("no model loaded")?;
            let expected = dtype_name(loaded.input_dt)?;
            if input.dtype != expected {
                return Err(format!("input dtype {} but the model takes {expected}", input.dtype));
            }
            let shape: Vec<usize> = input.shape.iter().map(|&d| d as usize).collect();
            if shape != loaded.input_shape {
                return Err(format!("input shape {shape:?} but the model takes {:?}", loaded.input_shape));
            }
            // The model's own datum type, quantization parameters included (QU8/QI8 facts).
            // SAFETY: from_raw_dt checks that `data` holds exactly shape x size_of(dt) bytes, and every
            // bit pattern is a valid value of the plain numeric types `dtype_name` accepts.
            let tensor = unsafe { Tensor::from_raw_dt(loaded.input_dt, &shape, &input.data) }.map_err(err)?;
            let outputs =
                loaded.plan.run(tvec!(tensor.into_tvalue())).map_err(|e| format!("tract run failed: {}", err(e)))?;
            let out = outputs.first().ok_or("the model produced no output")?;
            let dtype = dtype_name(out.datum_type())?.to_owned();
            let shape = out.shape().iter().map(|&d| d as u32).collect();
            let data = out.as_bytes().to_vec();
            Ok(WitTensor { dtype, shape, data })
        })
    }
}

export!(Component);
