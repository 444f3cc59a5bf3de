//! The public API, mirroring the WIT `classifier` interface in plain Rust types (`crate::types`):
//! `bindings` converts to and from WIT, native tests and tools call this directly. A `Model` is a
//! [`Prepared`] model with its arenas; what goes in is `crate::input`'s.

use crate::error::{bail, Result};
use crate::graph::{self, DType, Graph};
use crate::input::{Dest, Pipeline};
pub use crate::input::{Pixels, DEFAULT_MEAN, DEFAULT_STD};
use crate::plan::{Arenas, Plan};
use crate::prepared::Prepared;
use crate::tflite::metadata::{self, Metadata};
pub use crate::types::{
    ElementType, LoadOptions, ModelInfo, Precision, Prediction, Quantization, Tensor, TensorData, TensorInfo,
};

/// A loaded, planned model with its own activation arenas: inference allocates nothing but its result
/// in the portable build; the SIMD build's 1x1 convolutions widen their filters and input rows, and
/// its depthwise ones their input, into scratch vectors per call (kept widened, the filters measured
/// no faster and took more memory: `kernels::stage`).
/// The arenas are allocated by the first inference, not by `load`: an instance that only describes
/// its model (the HTTP app's `GET /`) never touches their pages.
#[derive(Clone)]
pub struct Model {
    /// With the caller's labels and normalization applied, so persisting it keeps them.
    p: Prepared,
    arenas: Arenas,
}

/// Weights and arenas are megabytes: show what identifies the model instead.
impl core::fmt::Debug for Model {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model")
            .field("info", &self.p.info)
            .field("steps", &self.p.plan.steps.len())
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Parses, validates and plans a TFLite model. Its TFLite Support metadata is read as TFLite's own
    /// reader reads it and never refuses a model TFLite runs: when it cannot be read the model loads
    /// without it and [`ModelInfo::metadata_error`] says why; only a label archive over the limits (a zip
    /// bomb, `TooLarge`) is an error.
    pub fn load(tflite: &[u8], options: &LoadOptions) -> Result<Model> {
        // The graph first: a file that is not TFLite is reported as such, not as unreadable metadata.
        let graph = graph::lower(tflite)?;
        Self::from_graph(graph, metadata::read_lenient(tflite)?, options)
    }

    /// As [`Model::load`], but frees the file as soon as it is parsed: the packed weights and the
    /// arenas then reuse its memory instead of touching fresh pages, which on a new instance are
    /// a large part of a load's time.
    pub fn load_owned(tflite: Vec<u8>, options: &LoadOptions) -> Result<Model> {
        let graph = graph::lower(&tflite)?;
        let metadata = metadata::read_lenient(&tflite)?;
        drop(tflite);
        Self::from_graph(graph, metadata, options)
    }

    /// `metadata`: what [`metadata::read_lenient`] gave, the metadata or why it could not be read.
    fn from_graph(
        graph: Graph,
        (metadata, metadata_error): (Option<Metadata>, Option<String>),
        options: &LoadOptions,
    ) -> Result<Model> {
        // The pixel rule follows the file's own input, whatever precision it then runs at.
        let file_input = TensorInfo::of(&graph, graph.input, graph.input_uint8)?;
        let channels = file_input.shape.last().copied().unwrap_or(1) as usize;
        let meta = metadata.unwrap_or_default();
        let norm = meta.normalization.as_ref().map(|n| (&n.mean[..], &n.std[..]));
        let pixels =
            Pixels::choose(file_input.element, file_input.quantization, options.mean, options.std, norm, channels)?;
        let graph = match options.precision {
            // At its own precision there is nothing to convert, and a copy of the weights is not free.
            Some(p) if p != graph.precision() => graph::convert::convert(&graph, p)?,
            _ => graph,
        };
        let own = graph.precision();
        let plan = Plan::new(&graph)?;
        let mut info = model_info(&graph, own, file_input)?;
        info.name = meta.name.filter(|n| !n.is_empty()).or_else(|| options.name.clone()).unwrap_or_default();
        (info.description, info.version, info.metadata_error) = (meta.description, meta.version, metadata_error);
        let labels = match meta.labels {
            Some(l) if l.len() != info.classes as usize => bail!(
                MalformedModel,
                "the model's label file {} has {} labels for {} classes",
                meta.label_file.as_deref().unwrap_or("?"),
                l.len(),
                info.classes
            ),
            l => l,
        };
        let prepared = Prepared { info, plan, softmax_output: graph.ends_in_softmax(), pixels, labels };
        Model::from_prepared(prepared, options)
    }

    /// The kernel every step of the plan runs, in order, named `precision/loop/arch` (e.g.
    /// `int8/pointwise/simd128`; `kernels::select` is the table): as this build runs them, or, with
    /// `Some(target)`, as a build for `target` would (a native build lists the SIMD component's).
    pub fn kernels(&self, target: Option<crate::kernels::Arch>) -> Vec<String> {
        match target {
            None => self.p.plan.kernels(),
            Some(t) => self.p.plan.kernels_for(t),
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.p.info
    }

    /// Runs on a tensor of exactly the input's shape and element type; returns the raw output.
    pub fn infer(&mut self, input: &Tensor) -> Result<Tensor> {
        self.fill_input(input)?;
        self.p.plan.run(&mut self.arenas);
        Ok(Tensor { shape: self.p.info.output.shape.clone(), data: self.read_output() })
    }

    /// The input side: the pixel rule, the file's input and the executing one.
    pub fn input(&self) -> Pipeline<'_> {
        Pipeline { rule: &self.p.pixels, file: &self.p.info.file_input, exec: &self.p.info.input }
    }

    /// The executing input's slot in the arenas (allocated on first use): every run starts by
    /// filling it.
    fn input_slot(&mut self) -> (Pipeline<'_>, Dest<'_>) {
        let range = self.p.plan.input.slot.range();
        let arenas = first_use(&self.p.plan, &mut self.arenas);
        let dest = match self.p.plan.input.dtype {
            DType::F32 => Dest::F32(&mut arenas.f32[range]),
            DType::I16 => Dest::I16(&mut arenas.i16[range]),
            _ => Dest::I8(&mut arenas.i8[range]),
        };
        let pipeline = Pipeline { rule: &self.p.pixels, file: &self.p.info.file_input, exec: &self.p.info.input };
        (pipeline, dest)
    }

    fn fill_input(&mut self, input: &Tensor) -> Result<()> {
        let (pipeline, dest) = self.input_slot();
        pipeline.write_tensor(input, dest)
    }

    /// Runs on `input` like [`Model::infer`] and returns the logits (the input of the final SOFTMAX,
    /// dequantized), read before a later step may reuse their slot; [`Model::probabilities`] then gives
    /// the output. Fidelity is measured on logits because probabilities saturate. Not in the WIT
    /// interface: native callers (the conformance suite) only.
    pub fn infer_logits(&mut self, input: &Tensor) -> Result<Vec<f32>> {
        let Some(l) = self.p.plan.logits else { bail!(UnsupportedModel, "no logits: the model has no SOFTMAX") };
        self.fill_input(input)?;
        self.p.plan.run_steps(&mut self.arenas, 0..l.steps);
        let logits = self.read_logits(l);
        self.p.plan.run_steps(&mut self.arenas, l.steps..self.p.plan.steps.len());
        Ok(logits)
    }

    fn read_logits(&self, l: crate::plan::Logits) -> Vec<f32> {
        let a = &self.arenas;
        let r = l.place.slot.range();
        let deq = |v: i32| {
            let q = l.quant.expect("quantized logits carry parameters");
            q.scale * (v - q.zero_point) as f32
        };
        match l.place.dtype {
            DType::F32 => a.f32[r].to_vec(),
            DType::I8 => a.i8[r].iter().map(|&v| deq(v as i32)).collect(),
            DType::I16 => a.i16[r].iter().map(|&v| deq(v as i32)).collect(),
            dt => unreachable!("activations are f32/i8/i16, not {dt:?}"),
        }
    }

    /// The input tensor for real (normalized) values: quantized with the executing input's own
    /// parameters, exactly as `classify` does for pixels.
    pub fn input_from_real(&self, real: &[f32]) -> Tensor {
        self.input().from_real(real)
    }

    /// The tensor `classify` feeds this model for an image.
    pub fn input_tensor(&self, image_bytes: &[u8]) -> Result<Tensor> {
        self.input().from_image(image_bytes)
    }

    /// Decodes, resizes and normalizes an image, runs the model, and returns the `top_k` best classes
    /// (all classes if `top_k` exceeds their number), best first; scores are probabilities.
    pub fn classify(&mut self, image_bytes: &[u8], top_k: u32) -> Result<Vec<Prediction>> {
        let pixels = self.input().pixels(image_bytes)?;
        let (pipeline, dest) = self.input_slot();
        pipeline.write_pixels(&pixels, dest);
        self.p.plan.run(&mut self.arenas);
        let probs = self.probabilities();
        Ok(self.top_k(&probs, top_k))
    }

    /// How `classify` feeds pixels to this model.
    pub fn pixels(&self) -> &Pixels {
        &self.p.pixels
    }

    fn read_output(&self) -> TensorData {
        let out = self.p.plan.output;
        let a = &self.arenas;
        match (out.dtype, self.p.info.output.element) {
            (DType::F32, _) => TensorData::Float32(a.f32[out.slot.range()].to_vec()),
            (DType::I8, ElementType::Uint8) => {
                TensorData::Uint8(a.i8[out.slot.range()].iter().map(|&v| (v as i32 + 128) as u8).collect())
            }
            (DType::I8, _) => TensorData::Int8(a.i8[out.slot.range()].to_vec()),
            (DType::I16, _) => TensorData::Int16(a.i16[out.slot.range()].to_vec()),
            (dt, _) => unreachable!("plan outputs are f32/i8/i16, not {dt:?}"),
        }
    }

    /// The output as real numbers (dequantized), after softmax if the graph has none. With a
    /// batch or extra dimensions, the first row of the last dimension.
    pub fn probabilities(&self) -> Vec<f32> {
        let out = self.p.plan.output;
        let classes = self.p.info.classes as usize;
        let real: Vec<f32> = match self.read_output() {
            TensorData::Float32(v) => v,
            data => {
                let q = self.p.info.output.quantization.expect("quantized outputs carry parameters");
                let ints: Vec<i32> = match data {
                    TensorData::Uint8(v) => v.iter().map(|&x| x as i32).collect(),
                    TensorData::Int8(v) => v.iter().map(|&x| x as i32).collect(),
                    TensorData::Int16(v) => v.iter().map(|&x| x as i32).collect(),
                    TensorData::Float32(_) => unreachable!(),
                };
                ints.iter().map(|&x| q.scale * (x - q.zero_point) as f32).collect()
            }
        };
        debug_assert_eq!(real.len(), out.slot.len);
        let mut row: Vec<f32> = real.into_iter().take(classes).collect();
        if !self.p.softmax_output {
            softmax_in_place(&mut row);
        }
        row
    }

    fn top_k(&self, probs: &[f32], k: u32) -> Vec<Prediction> {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        // Best first; equal scores keep the lower index first (stable sort).
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        order
            .into_iter()
            .take(k as usize)
            .map(|i| Prediction {
                index: i as u32,
                label: self.p.labels.as_ref().map(|l| l[i].clone()),
                score: probs[i],
            })
            .collect()
    }
}

/// A prepared model (`crate::prepared`): restored with any labels and normalization.
impl Model {
    /// The prepared model's bytes ([`Prepared::to_bytes`]): what `bake` embeds.
    pub fn to_prepared_bytes(&self) -> Result<Vec<u8>> {
        self.p.to_bytes()
    }

    /// Restores [`Model::to_prepared_bytes`], copying the weights, with `options` applied as `load`
    /// applies them.
    pub fn from_prepared_bytes(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        Model::from_prepared(Prepared::from_bytes(bytes)?, options)
    }

    /// As [`Model::from_prepared_bytes`] from static data: the weights stay where they are.
    pub fn from_static_prepared(bytes: &'static [u8], options: &LoadOptions) -> Result<Model> {
        Model::from_prepared(Prepared::from_static(bytes)?, options)
    }

    /// Applies `options` to prepared parts as `load` applies them to a freshly planned model: the
    /// caller's labels and normalization win over the model's own.
    pub(crate) fn from_prepared(mut p: Prepared, options: &LoadOptions) -> Result<Model> {
        if let Some(want) = options.precision {
            if want != p.info.precision {
                bail!(UnsupportedModel, "this prepared model runs at {:?}, not {want:?}", p.info.precision);
            }
        }
        let channels = p.info.input.shape.last().copied().unwrap_or(1) as usize;
        if options.mean.is_some() || options.std.is_some() {
            p.pixels = Pixels::choose(ElementType::Float32, None, options.mean, options.std, None, channels)?;
        }
        if let Some(text) = &options.labels {
            p.labels = Some(parse_labels(text, p.info.classes)?);
        }
        Ok(Model { p, arenas: Arenas::default() })
    }
}

/// `arenas`, allocated for `plan` if they are not yet.
fn first_use<'a>(plan: &Plan, arenas: &'a mut Arenas) -> &'a mut Arenas {
    if (arenas.f32.len(), arenas.i8.len(), arenas.i16.len()) != (plan.arena_f32, plan.arena_i8, plan.arena_i16) {
        *arenas = plan.arenas();
    }
    arenas
}

fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = crate::kernels::math::expf(*x - max);
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

fn parse_labels(text: &str, classes: u32) -> Result<Vec<String>> {
    let labels: Vec<String> =
        text.trim_end_matches(['\n', '\r']).lines().map(|l| l.trim_end_matches('\r').to_string()).collect();
    if labels.len() != classes as usize {
        bail!(InvalidInput, "{} labels given, the model has {classes} classes", labels.len());
    }
    Ok(labels)
}

fn model_info(g: &Graph, precision: Precision, file_input: TensorInfo) -> Result<ModelInfo> {
    let input = TensorInfo::of(g, g.input, g.input_uint8)?;
    let output = TensorInfo::of(g, g.output, g.output_uint8)?;
    let classes = output.shape.last().copied().unwrap_or(1);
    Ok(ModelInfo {
        name: String::new(),
        description: None,
        version: None,
        precision,
        input,
        output,
        file_input,
        classes,
        operators: g.nodes.len() as u32,
        macs: g.macs(),
        parameter_bytes: g.parameter_bytes(),
        metadata_error: None,
    })
}
