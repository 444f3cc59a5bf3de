//! The public API, mirroring the WIT `classifier` interface in plain Rust types: `bindings` converts
//! to and from WIT, native tests and tools call this directly.

use crate::error::{bail, Result};
pub use crate::graph::Precision;
use crate::graph::{self, DType, Graph};
use crate::image;
use crate::plan::{Arenas, Plan};
pub use crate::preprocess::{Pixels, DEFAULT_MEAN, DEFAULT_STD};
use crate::tflite::metadata::Metadata;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    pub precision: Option<Precision>,
    pub labels: Option<String>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElementType {
    Float32,
    Uint8,
    Int8,
    Int16,
}

impl ElementType {
    pub const ALL: [ElementType; 4] = [ElementType::Float32, ElementType::Uint8, ElementType::Int8, ElementType::Int16];

    /// The one spelling, WIT's `element-type` case names.
    pub const fn name(self) -> &'static str {
        match self {
            ElementType::Float32 => "float32",
            ElementType::Uint8 => "uint8",
            ElementType::Int8 => "int8",
            ElementType::Int16 => "int16",
        }
    }

    /// The inverse of [`ElementType::name`].
    pub fn parse(s: &str) -> Option<ElementType> {
        ElementType::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            ElementType::Float32 => 4,
            ElementType::Int16 => 2,
            ElementType::Uint8 | ElementType::Int8 => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Float32(Vec<f32>),
    Uint8(Vec<u8>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
}

impl TensorData {
    pub fn element_type(&self) -> ElementType {
        match self {
            TensorData::Float32(_) => ElementType::Float32,
            TensorData::Uint8(_) => ElementType::Uint8,
            TensorData::Int8(_) => ElementType::Int8,
            TensorData::Int16(_) => ElementType::Int16,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            TensorData::Float32(v) => v.len(),
            TensorData::Uint8(v) => v.len(),
            TensorData::Int8(v) => v.len(),
            TensorData::Int16(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub data: TensorData,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quantization {
    pub scale: f32,
    pub zero_point: i32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// The tensor's name in the file (wasi:nn names a graph's outputs by it).
    pub name: String,
    pub shape: Vec<u32>,
    pub element: ElementType,
    pub quantization: Option<Quantization>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// The metadata's model name, else the graph's.
    pub name: String,
    /// From the model's TFLite metadata, when it carries them.
    pub description: Option<String>,
    pub version: Option<String>,
    pub precision: Precision,
    pub input: TensorInfo,
    pub output: TensorInfo,
    /// The file's own input, before any conversion to `precision` (`input` is what executes): what a
    /// caller holding the file's tensors (uint8 pixels, say) has to convert them from.
    pub file_input: TensorInfo,
    pub classes: u32,
    pub operators: u32,
    pub macs: u64,
    pub parameter_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub index: u32,
    pub label: Option<String>,
    pub score: f32,
}

/// Everything `load` derives from a file, none of the caller's options: what a prepared model
/// persists (`plan::persist`), so an embedded model restores ready to run.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Prepared {
    pub info: ModelInfo,
    pub plan: Plan,
    /// Whether the output already is a probability distribution.
    pub softmax_output: bool,
    /// How `classify` feeds pixels (`preprocess`), chosen from the file and its metadata.
    pub pixels: Pixels,
    /// The model's own labels (its metadata's label file), if it carries them.
    pub labels: Option<Vec<String>>,
}

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
    /// Parses, validates and plans a TFLite model.
    pub fn load(tflite: &[u8], options: &LoadOptions) -> Result<Model> {
        let metadata = crate::tflite::metadata::read(tflite)?;
        Self::from_graph(graph::lower(tflite)?, metadata, options)
    }

    /// As [`Model::load`], but frees the file as soon as it is parsed: the packed weights and the
    /// arenas then reuse its memory instead of touching fresh pages, which on a new instance are
    /// a large part of a load's time.
    pub fn load_owned(tflite: Vec<u8>, options: &LoadOptions) -> Result<Model> {
        let metadata = crate::tflite::metadata::read(&tflite)?;
        let graph = graph::lower(&tflite)?;
        drop(tflite);
        Self::from_graph(graph, metadata, options)
    }

    fn from_graph(graph: Graph, metadata: Option<Metadata>, options: &LoadOptions) -> Result<Model> {
        // The pixel rule follows the file's own input, whatever precision it then runs at.
        let file_input = tensor_info(&graph, graph.input, graph.input_uint8)?;
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
        if let Some(name) = meta.name.filter(|n| !n.is_empty()) {
            info.name = name;
        }
        (info.description, info.version) = (meta.description, meta.version);
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

    /// The arenas, allocated on first use. Every run starts by filling the input through here.
    fn arenas(&mut self) -> &mut Arenas {
        first_use(&self.p.plan, &mut self.arenas)
    }

    fn fill_input(&mut self, input: &Tensor) -> Result<()> {
        let want = &self.p.info.input;
        if input.shape != want.shape {
            bail!(InvalidInput, "input shape {:?} does not match the model's {:?}", input.shape, want.shape);
        }
        if input.data.element_type() != want.element {
            bail!(
                InvalidInput,
                "input elements are {:?}, the model takes {:?}",
                input.data.element_type(),
                want.element
            );
        }
        let numel = self.p.plan.input.slot.len;
        if input.data.len() != numel {
            bail!(InvalidInput, "input has {} elements, shape {:?} needs {numel}", input.data.len(), input.shape);
        }
        let slot = self.p.plan.input.slot;
        let a = self.arenas();
        match &input.data {
            TensorData::Float32(v) => a.f32[slot.offset..][..numel].copy_from_slice(v),
            TensorData::Int8(v) => a.i8[slot.offset..][..numel].copy_from_slice(v),
            TensorData::Int16(v) => a.i16[slot.offset..][..numel].copy_from_slice(v),
            // Executed as int8: re-centre exactly as the weights were.
            TensorData::Uint8(v) => {
                for (d, &s) in a.i8[slot.offset..][..numel].iter_mut().zip(v) {
                    *d = (s as i32 - 128) as i8;
                }
            }
        }
        Ok(())
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
        let q = self.p.info.input.quantization;
        let quant = |lo: i32, hi: i32| -> Vec<i32> {
            let q = q.expect("quantized inputs carry parameters");
            real.iter().map(|&r| image::quantize(r, q.scale, q.zero_point, lo, hi)).collect()
        };
        let data = match self.p.info.input.element {
            ElementType::Float32 => TensorData::Float32(real.to_vec()),
            ElementType::Uint8 => TensorData::Uint8(quant(0, 255).into_iter().map(|v| v as u8).collect()),
            ElementType::Int8 => TensorData::Int8(quant(-128, 127).into_iter().map(|v| v as i8).collect()),
            ElementType::Int16 => TensorData::Int16(quant(-32768, 32767).into_iter().map(|v| v as i16).collect()),
        };
        Tensor { shape: self.p.info.input.shape.clone(), data }
    }

    /// Decodes, resizes and normalizes an image, runs the model, and returns the `top_k` best classes
    /// (all classes if `top_k` exceeds their number), best first; scores are probabilities.
    pub fn classify(&mut self, image_bytes: &[u8], top_k: u32) -> Result<Vec<Prediction>> {
        let shape = &self.p.info.input.shape;
        let (h, w, c) = match shape[..] {
            [1, h, w, c @ (1 | 3)] => (h, w, c),
            _ => bail!(
                InvalidInput,
                "classify needs a [1, height, width, 1 or 3] image input; this model takes {shape:?}"
            ),
        };
        let pixels = image::decode_resize(image_bytes, w, h, c)?;
        self.fill_input_from_pixels(&pixels, c as usize);
        self.p.plan.run(&mut self.arenas);
        let probs = self.probabilities();
        Ok(self.top_k(&probs, top_k))
    }

    /// Writes the pixels, as `preprocess` rules, into the input slot (HWC, `channels` per pixel).
    fn fill_input_from_pixels(&mut self, pixels: &[u8], channels: usize) {
        let slot = self.p.plan.input.slot;
        let (q, element) = (self.p.info.input.quantization, self.p.info.input.element);
        let (rule, a) = (&self.p.pixels, first_use(&self.p.plan, &mut self.arenas));
        let quant = |i: usize, p: u8, lo: i32, hi: i32, shift: i32| {
            rule.quantized(p, i % channels, q.expect("quantized inputs carry parameters"), lo, hi) - shift
        };
        let pixels = pixels.iter().copied().enumerate();
        match element {
            ElementType::Float32 => {
                for (d, (i, p)) in a.f32[slot.range()].iter_mut().zip(pixels) {
                    *d = rule.real(p, i % channels);
                }
            }
            ElementType::Uint8 => {
                for (d, (i, p)) in a.i8[slot.range()].iter_mut().zip(pixels) {
                    *d = quant(i, p, 0, 255, 128) as i8;
                }
            }
            ElementType::Int8 => {
                for (d, (i, p)) in a.i8[slot.range()].iter_mut().zip(pixels) {
                    *d = quant(i, p, -128, 127, 0) as i8;
                }
            }
            ElementType::Int16 => {
                for (d, (i, p)) in a.i16[slot.range()].iter_mut().zip(pixels) {
                    *d = quant(i, p, -32768, 32767, 0) as i16;
                }
            }
        }
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

/// A prepared model (`plan::persist`): restored with any labels and normalization.
impl Model {
    /// What `load` derived from the file, with the labels and pixel rule it was loaded with.
    pub(crate) fn prepared(&self) -> &Prepared {
        &self.p
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

fn tensor_info(g: &Graph, t: usize, uint8: bool) -> Result<TensorInfo> {
    let tensor = &g.tensors[t];
    let element = match (tensor.dtype, uint8) {
        (DType::F32, _) => ElementType::Float32,
        (DType::I8, true) => ElementType::Uint8,
        (DType::I8, false) => ElementType::Int8,
        (DType::I16, _) => ElementType::Int16,
        (dt, _) => bail!(UnsupportedModel, "graph input/output of type {dt:?}"),
    };
    let shape = tensor
        .shape
        .iter()
        .map(|&d| u32::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| crate::Error::TooLarge(format!("dimension of {:?} exceeds u32", tensor.shape)))?;
    let quantization = tensor.quant.as_ref().map(|q| Quantization {
        scale: q.scale(),
        // Report the file's own zero point, not the re-centred one.
        zero_point: q.zero_point() + if uint8 { 128 } else { 0 },
    });
    Ok(TensorInfo { name: tensor.name.clone(), shape, element, quantization })
}

fn model_info(g: &Graph, precision: Precision, file_input: TensorInfo) -> Result<ModelInfo> {
    let input = tensor_info(g, g.input, g.input_uint8)?;
    let output = tensor_info(g, g.output, g.output_uint8)?;
    let classes = output.shape.last().copied().unwrap_or(1);
    Ok(ModelInfo {
        name: g.name.clone(),
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
    })
}
