//! Execution plan: what `load` prepares once so that inference only runs kernels.
//!
//! * every operator becomes a [`Step`] holding its prepared kernel params (multipliers, activation
//!   ranges, LUTs) and its weights copied into the layout its kernel reads;
//! * every activation tensor gets a [`Slot`] in one arena per element type, reused once the tensor is
//!   dead (greedy first-fit over live ranges), RESHAPE outputs alias their input;
//! * the plan is plain data (no pointers, no borrowed bytes), so it can be built ahead of time.
//!
//! The per-precision part is the [`Prec`] trait: one implementation per kernel module, mapping
//! the shared step shape onto `kernels::{fp32, int8, int16}`.

mod bind;
mod prec;
mod weights;

use crate::error::{bail, Result};
use crate::graph::{self, DType, Graph, Op};
use crate::kernels::select::Arch;
use crate::kernels::{ConvGeom, ConvOp, FcGeom, PoolGeom, TensorQuant};
pub use prec::{Prec, F32, I16, I8};
pub use weights::{Pod, VisitWeights, Weights};

/// A range of one arena, in elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Slot {
    pub offset: usize,
    pub len: usize,
}

impl Slot {
    fn end(self) -> usize {
        self.offset + self.len
    }
    pub fn range(self) -> core::ops::Range<usize> {
        self.offset..self.end()
    }
}

/// One operator at one precision. `x`, `y` are slots of `P`'s arena.
/// Constants are [`Weights`], outside the serde structure ([`Plan::visit_weights`] reaches them).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub enum OpStep<P: Prec> {
    /// CONV_2D or DEPTHWISE_CONV_2D: its filter in the layout of `op.kernel` (packed by `ConvOp::new`).
    Conv {
        op: ConvOp<P>,
        #[serde(skip)]
        filter: Weights<P::Weight>,
        #[serde(skip)]
        bias: Option<Weights<P::Bias>>,
        x: Slot,
        y: Slot,
    },
    FullyConnected {
        p: P::Fc,
        g: FcGeom,
        #[serde(skip)]
        weights: Weights<P::Weight>,
        #[serde(skip)]
        bias: Option<Weights<P::Bias>>,
        x: Slot,
        y: Slot,
    },
    AvgPool {
        p: P::AvgPool,
        g: PoolGeom,
        x: Slot,
        y: Slot,
    },
    Mean {
        p: P::Mean,
        shape: [usize; 4],
        x: Slot,
        y: Slot,
    },
    Add {
        p: P::Add,
        /// Chosen by [`Plan::bind`].
        arch: Arch,
        a: Slot,
        b: Slot,
        y: Slot,
    },
    Softmax {
        p: P::Softmax,
        depth: usize,
        x: Slot,
        y: Slot,
    },
    Pad {
        p: P::Pad,
        shape: [usize; 4],
        x: Slot,
        y: Slot,
    },
}

/// Steps that move data between arenas or between quantizations.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Convert {
    QuantizeI8 { p: crate::kernels::int8::QuantizeParams, x: Slot, y: Slot },
    QuantizeI16 { p: crate::kernels::int16::QuantizeParams, x: Slot, y: Slot },
    DequantizeI8 { p: crate::kernels::int8::DequantizeParams, x: Slot, y: Slot },
    DequantizeI16 { p: crate::kernels::int16::DequantizeParams, x: Slot, y: Slot },
    RequantizeI8I8 { p: crate::kernels::int8::RequantizeParams, x: Slot, y: Slot },
    RequantizeI8I16 { p: crate::kernels::int8::RequantizeParams, x: Slot, y: Slot },
    RequantizeI16I8 { p: crate::kernels::int16::RequantizeParams, x: Slot, y: Slot },
    RequantizeI16I16 { p: crate::kernels::int16::RequantizeParams, x: Slot, y: Slot },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Step {
    F32(OpStep<F32>),
    I8(OpStep<I8>),
    I16(OpStep<I16>),
    Convert(Convert),
}

impl<P: Prec> OpStep<P> {
    fn visit_weights(&mut self, v: &mut impl VisitWeights) -> Result<()> {
        let (OpStep::Conv { filter, bias, .. } | OpStep::FullyConnected { weights: filter, bias, .. }) = self else {
            return Ok(());
        };
        let mut f = Some(core::mem::take(filter));
        v.visit(&mut f)?;
        *filter = f.unwrap_or_default();
        v.visit(bias)
    }

    /// The slot this step writes.
    pub fn output(&self) -> Slot {
        match self {
            OpStep::Conv { y, .. }
            | OpStep::FullyConnected { y, .. }
            | OpStep::AvgPool { y, .. }
            | OpStep::Mean { y, .. }
            | OpStep::Add { y, .. }
            | OpStep::Softmax { y, .. }
            | OpStep::Pad { y, .. } => *y,
        }
    }
}

impl Step {
    fn visit_weights(&mut self, v: &mut impl VisitWeights) -> Result<()> {
        match self {
            Step::F32(s) => s.visit_weights(v),
            Step::I8(s) => s.visit_weights(v),
            Step::I16(s) => s.visit_weights(v),
            Step::Convert(_) => Ok(()),
        }
    }

    /// Where this step writes: calibration reads every float step's output right after it runs.
    pub fn output(&self) -> Place {
        let (dtype, slot) = match self {
            Step::F32(s) => (DType::F32, s.output()),
            Step::I8(s) => (DType::I8, s.output()),
            Step::I16(s) => (DType::I16, s.output()),
            Step::Convert(c) => match c {
                Convert::QuantizeI8 { y, .. }
                | Convert::RequantizeI8I8 { y, .. }
                | Convert::RequantizeI16I8 { y, .. } => (DType::I8, *y),
                Convert::QuantizeI16 { y, .. }
                | Convert::RequantizeI8I16 { y, .. }
                | Convert::RequantizeI16I16 { y, .. } => (DType::I16, *y),
                Convert::DequantizeI8 { y, .. } | Convert::DequantizeI16 { y, .. } => (DType::F32, *y),
            },
        };
        Place { dtype, slot }
    }
}

/// Where a graph-level tensor lives at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    pub dtype: DType,
    pub slot: Slot,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub input: Place,
    pub output: Place,
    /// Elements each arena needs.
    pub arena_f32: usize,
    pub arena_i8: usize,
    pub arena_i16: usize,
    /// Where the input of the final SOFTMAX is, if the model has one (persisted, so a restored
    /// model still answers `Model::infer_logits`).
    pub logits: Option<Logits>,
}

/// The input of the final SOFTMAX (what fidelity is measured on): computed by the first `steps`
/// steps, read from `place` before a later step may reuse it, dequantized with `quant`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Logits {
    pub steps: usize,
    pub place: Place,
    /// `None` for f32 logits.
    pub quant: Option<TensorQuant>,
}

/// Finds the final SOFTMAX's input in `g` and in `steps` (the graph's nodes minus RESHAPEs, which are
/// aliases, in order).
fn logits_of(g: &Graph, steps: &[Step]) -> Option<Logits> {
    let k = g.nodes.iter().rposition(|n| matches!(n.op, Op::Softmax { .. }))?;
    let n = g.nodes[..k].iter().filter(|n| n.op != Op::Reshape).count();
    let place = match steps.get(n)? {
        Step::F32(OpStep::Softmax { x, .. }) => Place { dtype: DType::F32, slot: *x },
        Step::I8(OpStep::Softmax { x, .. }) => Place { dtype: DType::I8, slot: *x },
        Step::I16(OpStep::Softmax { x, .. }) => Place { dtype: DType::I16, slot: *x },
        _ => return None,
    };
    let quant = (place.dtype != DType::F32).then(|| tq(g, g.nodes[k].input(0)));
    Some(Logits { steps: n, place, quant })
}

/// The arenas, allocated once per model instance.
#[derive(Debug, Clone, Default)]
pub struct Arenas {
    pub f32: Vec<f32>,
    pub i8: Vec<i8>,
    pub i16: Vec<i16>,
}

/// Largest arena we agree to allocate, in bytes.
pub const MAX_ARENA_BYTES: usize = 512 << 20;

impl Plan {
    /// Every step's weight arrays, in plan order (`crate::prepared` writes and restores them so).
    pub fn visit_weights(&mut self, v: &mut impl VisitWeights) -> Result<()> {
        self.steps.iter_mut().try_for_each(|s| s.visit_weights(v))
    }

    pub fn new(g: &Graph) -> Result<Plan> {
        let places = assign_slots(g)?;
        let place = |t: usize| -> Result<Place> {
            match places[t] {
                Some(p) => Ok(p),
                None => bail!(UnsupportedModel, "constant tensor {} used as operator data", g.tensors[t].name),
            }
        };
        let mut steps = Vec::with_capacity(g.nodes.len());
        for node in &g.nodes {
            if node.op == Op::Reshape {
                continue;
            }
            let y = place(node.output)?;
            let x = place(node.input(0))?;
            let step = match (&node.op, x.dtype, y.dtype) {
                (Op::Quantize, DType::F32, DType::I8) => Step::Convert(Convert::QuantizeI8 {
                    p: crate::kernels::int8::QuantizeParams::prepare(tq(g, node.output)),
                    x: x.slot,
                    y: y.slot,
                }),
                (Op::Quantize, DType::F32, DType::I16) => Step::Convert(Convert::QuantizeI16 {
                    p: crate::kernels::int16::QuantizeParams::prepare(tq(g, node.output)),
                    x: x.slot,
                    y: y.slot,
                }),
                (Op::Quantize, DType::I8 | DType::I16, _) => {
                    let (qi, qo) = (tq(g, node.input(0)), tq(g, node.output));
                    let (from, to) = (x.dtype, y.dtype);
                    let (x, y) = (x.slot, y.slot);
                    Step::Convert(match (from, to) {
                        (DType::I8, DType::I8) => {
                            Convert::RequantizeI8I8 { p: crate::kernels::int8::RequantizeParams::prepare(qi, qo), x, y }
                        }
                        (DType::I8, DType::I16) => Convert::RequantizeI8I16 {
                            p: crate::kernels::int8::RequantizeParams::prepare(qi, qo),
                            x,
                            y,
                        },
                        (DType::I16, DType::I8) => Convert::RequantizeI16I8 {
                            p: crate::kernels::int16::RequantizeParams::prepare(qi, qo),
                            x,
                            y,
                        },
                        (DType::I16, DType::I16) => Convert::RequantizeI16I16 {
                            p: crate::kernels::int16::RequantizeParams::prepare(qi, qo),
                            x,
                            y,
                        },
                        (a, b) => bail!(UnsupportedModel, "QUANTIZE from {a:?} to {b:?}"),
                    })
                }
                (Op::Dequantize, DType::I8, DType::F32) => Step::Convert(Convert::DequantizeI8 {
                    p: crate::kernels::int8::DequantizeParams::prepare(tq(g, node.input(0))),
                    x: x.slot,
                    y: y.slot,
                }),
                (Op::Dequantize, DType::I16, DType::F32) => Step::Convert(Convert::DequantizeI16 {
                    p: crate::kernels::int16::DequantizeParams::prepare(tq(g, node.input(0))),
                    x: x.slot,
                    y: y.slot,
                }),
                (op, DType::F32, _) => Step::F32(op_step::<F32>(g, node, op, &place)?),
                (op, DType::I8, _) => Step::I8(op_step::<I8>(g, node, op, &place)?),
                (op, DType::I16, _) => Step::I16(op_step::<I16>(g, node, op, &place)?),
                (op, dt, _) => bail!(UnsupportedModel, "{} on {dt:?} tensors", op.name()),
            };
            steps.push(step);
        }
        let (mut arena_f32, mut arena_i8, mut arena_i16) = (0, 0, 0);
        for p in places.iter().flatten() {
            let end = p.slot.end();
            match p.dtype {
                DType::F32 => arena_f32 = arena_f32.max(end),
                DType::I8 => arena_i8 = arena_i8.max(end),
                DType::I16 => arena_i16 = arena_i16.max(end),
                _ => {}
            }
        }
        // u64: in wasm32's usize, 2^30 f32 elements * 4 wraps to 0.
        let bytes = arena_f32 as u64 * 4 + arena_i8 as u64 + arena_i16 as u64 * 2;
        if bytes > MAX_ARENA_BYTES as u64 {
            bail!(TooLarge, "activations need {bytes} bytes, more than {MAX_ARENA_BYTES}");
        }
        let logits = logits_of(g, &steps);
        let mut plan =
            Plan { steps, input: place(g.input)?, output: place(g.output)?, arena_f32, arena_i8, arena_i16, logits };
        plan.bind(Arch::current());
        Ok(plan)
    }

    pub fn arenas(&self) -> Arenas {
        Arenas { f32: vec![0.0; self.arena_f32], i8: vec![0; self.arena_i8], i16: vec![0; self.arena_i16] }
    }

    /// Runs every step; the input must already be in its slot, the output is left in its slot.
    pub fn run(&self, arenas: &mut Arenas) {
        self.run_steps(arenas, 0..self.steps.len())
    }

    /// Runs only `steps[range]`: the fidelity checks read the logits (the input of the final SOFTMAX,
    /// whose slot a later step may reuse) after a prefix, and calibration looks at every step's output
    /// before the next one may overwrite it.
    pub fn run_steps(&self, arenas: &mut Arenas, range: core::ops::Range<usize>) {
        let end = range.end.min(self.steps.len());
        for step in &self.steps[range.start.min(end)..end] {
            match step {
                Step::F32(s) => run_op(s, &mut arenas.f32),
                Step::I8(s) => run_op(s, &mut arenas.i8),
                Step::I16(s) => run_op(s, &mut arenas.i16),
                Step::Convert(c) => run_convert(c, arenas),
            }
        }
    }
}

/// Per-tensor quantization of an activation (lowering guarantees it exists for int tensors).
pub(crate) fn tq(g: &Graph, t: usize) -> TensorQuant {
    let q = g.tensors[t].quant.as_ref().expect("quantized activations carry parameters");
    TensorQuant::new(q.scale(), q.zero_point())
}

fn shape4(g: &Graph, t: usize) -> [usize; 4] {
    let s = &g.tensors[t].shape;
    [s[0], s[1], s[2], s[3]]
}

fn op_step<P: Prec>(
    g: &Graph,
    node: &graph::Node,
    op: &Op,
    place: &impl Fn(usize) -> Result<Place>,
) -> Result<OpStep<P>> {
    let x = place(node.input(0))?.slot;
    let y = place(node.output)?.slot;
    let ctx = prec::Ctx { g, node };
    Ok(match *op {
        Op::Conv2d { stride, dilation, padding, .. } | Op::DepthwiseConv2d { stride, dilation, padding, .. } => {
            let depthwise = matches!(op, Op::DepthwiseConv2d { .. });
            let [n, ih, iw, ic] = shape4(g, node.input(0));
            let [_, oh, ow, oc] = shape4(g, node.output);
            let f = shape4(g, node.input(1));
            let (kh, kw) = (f[1], f[2]);
            let pad = |i, k, s, d, o| match padding {
                graph::Padding::Same => graph::operators::pad_before(i, k, s, d, o),
                graph::Padding::Valid => 0,
            };
            let geom = ConvGeom {
                batch: n,
                in_h: ih,
                in_w: iw,
                in_c: ic,
                out_h: oh,
                out_w: ow,
                out_c: oc,
                k_h: kh,
                k_w: kw,
                stride_h: stride[0],
                stride_w: stride[1],
                dilation_h: dilation[0],
                dilation_w: dilation[1],
                pad_top: pad(ih, kh, stride[0], dilation[0], oh),
                pad_left: pad(iw, kw, stride[1], dilation[1], ow),
                depth_multiplier: if depthwise { oc / ic } else { 1 },
            };
            let p = P::prepare_conv(&ctx)?;
            let filter = P::weights(&g.tensors[node.input(1)])?;
            let bias = node.optional_input(2).map(|b| P::bias(&g.tensors[b]).map(Weights::from)).transpose()?;
            // The arch and the stage are chosen by `Plan::bind`, once every step exists.
            let (op, filter) = ConvOp::new(p, depthwise, &geom, filter);
            OpStep::Conv { op, filter: filter.into(), bias, x, y }
        }
        Op::FullyConnected { .. } => {
            let w = &g.tensors[node.input(1)];
            let (out_depth, in_depth) = (w.shape[0], w.shape[1]);
            let geom = FcGeom { batch: g.tensors[node.input(0)].numel() / in_depth, in_depth, out_depth };
            let p = P::prepare_fc(&ctx)?;
            let weights = P::weights(w)?.to_vec().into();
            let bias = node.optional_input(2).map(|b| P::bias(&g.tensors[b]).map(Weights::from)).transpose()?;
            OpStep::FullyConnected { p, g: geom, weights, bias, x, y }
        }
        Op::AveragePool2d { filter, stride, padding, .. } => {
            let [n, ih, iw, c] = shape4(g, node.input(0));
            let [_, oh, ow, _] = shape4(g, node.output);
            let pad = |i, k, s, o| match padding {
                graph::Padding::Same => graph::operators::pad_before(i, k, s, 1, o),
                graph::Padding::Valid => 0,
            };
            let geom = PoolGeom {
                batch: n,
                in_h: ih,
                in_w: iw,
                channels: c,
                out_h: oh,
                out_w: ow,
                filter_h: filter[0],
                filter_w: filter[1],
                stride_h: stride[0],
                stride_w: stride[1],
                pad_top: pad(ih, filter[0], stride[0], oh),
                pad_left: pad(iw, filter[1], stride[1], ow),
            };
            OpStep::AvgPool { p: P::prepare_avg_pool(&ctx)?, g: geom, x, y }
        }
        Op::MeanHw => OpStep::Mean { p: P::prepare_mean(&ctx)?, shape: shape4(g, node.input(0)), x, y },
        Op::Add { .. } => {
            OpStep::Add { p: P::prepare_add(&ctx)?, arch: Arch::Scalar, a: x, b: place(node.input(1))?.slot, y }
        }
        Op::Softmax { .. } => {
            let depth = *g.tensors[node.input(0)].shape.last().expect("softmax rank checked");
            OpStep::Softmax { p: P::prepare_softmax(&ctx)?, depth, x, y }
        }
        Op::Pad { .. } => OpStep::Pad { p: P::prepare_pad(&ctx)?, shape: shape4(g, node.input(0)), x, y },
        Op::Reshape | Op::Quantize | Op::Dequantize => {
            bail!(UnsupportedModel, "{} is not an arithmetic step", op.name())
        }
    })
}

/// `(x, y)` views of two disjoint slots of one arena.
fn io<T>(arena: &mut [T], x: Slot, y: Slot) -> (&[T], &mut [T]) {
    if x.offset >= y.end() {
        let (lo, hi) = arena.split_at_mut(x.offset);
        (&hi[..x.len], &mut lo[y.range()])
    } else {
        let (lo, hi) = arena.split_at_mut(y.offset);
        (&lo[x.range()], &mut hi[..y.len])
    }
}

/// `(a, b, y)` views; `a` and `b` may coincide, neither overlaps `y`.
fn io2<T>(arena: &mut [T], a: Slot, b: Slot, y: Slot) -> (&[T], &[T], &mut [T]) {
    let (lo, rest) = arena.split_at_mut(y.offset);
    let (mid, hi) = rest.split_at_mut(y.len);
    let (lo, hi) = (&*lo, &*hi);
    let get = |s: Slot| if s.end() <= y.offset { &lo[s.range()] } else { &hi[s.offset - y.end()..][..s.len] };
    (get(a), get(b), mid)
}

fn run_op<P: Prec>(s: &OpStep<P>, arena: &mut [P::Act]) {
    match s {
        OpStep::Conv { op, filter, bias, x, y } => {
            let (x, y) = io(arena, *x, *y);
            P::conv(op, x, filter, bias.as_deref(), y)
        }
        OpStep::FullyConnected { p, g, weights, bias, x, y } => {
            let (x, y) = io(arena, *x, *y);
            P::fully_connected(p, g, x, weights, bias.as_deref(), y)
        }
        OpStep::AvgPool { p, g, x, y } => {
            let (x, y) = io(arena, *x, *y);
            P::average_pool2d(p, g, x, y)
        }
        OpStep::Mean { p, shape, x, y } => {
            let (x, y) = io(arena, *x, *y);
            P::mean_hw(p, *shape, x, y)
        }
        OpStep::Add { p, arch, a, b, y } => {
            let (a, b, y) = io2(arena, *a, *b, *y);
            P::add(p, *arch, a, b, y)
        }
        OpStep::Softmax { p, depth, x, y } => {
            let (x, y) = io(arena, *x, *y);
            P::softmax(p, *depth, x, y)
        }
        OpStep::Pad { p, shape, x, y } => {
            let (x, y) = io(arena, *x, *y);
            P::pad(p, *shape, x, y)
        }
    }
}

fn run_convert(c: &Convert, a: &mut Arenas) {
    use crate::kernels::{int16, int8};
    match c {
        Convert::QuantizeI8 { p, x, y } => int8::affine_quantize(p, &a.f32[x.range()], &mut a.i8[y.range()]),
        Convert::QuantizeI16 { p, x, y } => int16::affine_quantize(p, &a.f32[x.range()], &mut a.i16[y.range()]),
        Convert::DequantizeI8 { p, x, y } => int8::dequantize(p, &a.i8[x.range()], &mut a.f32[y.range()]),
        Convert::DequantizeI16 { p, x, y } => int16::dequantize(p, &a.i16[x.range()], &mut a.f32[y.range()]),
        Convert::RequantizeI8I8 { p, x, y } => {
            let (x, y) = io(&mut a.i8, *x, *y);
            int8::requantize(p, x, y)
        }
        Convert::RequantizeI8I16 { p, x, y } => int8::requantize(p, &a.i8[x.range()], &mut a.i16[y.range()]),
        Convert::RequantizeI16I8 { p, x, y } => int16::requantize(p, &a.i16[x.range()], &mut a.i8[y.range()]),
        Convert::RequantizeI16I16 { p, x, y } => {
            let (x, y) = io(&mut a.i16, *x, *y);
            int16::requantize(p, x, y)
        }
    }
}

/// Gives every activation tensor a slot: RESHAPE outputs share their input's storage; otherwise
/// first-fit into the gaps left by tensors no longer needed. A tensor read by step `k` stays live
/// through `k`, so an operator's output never overlaps its inputs.
fn assign_slots(g: &Graph) -> Result<Vec<Option<Place>>> {
    let n = g.tensors.len();
    // Storage root of each tensor (itself, or what a RESHAPE aliases).
    let mut root: Vec<usize> = (0..n).collect();
    for node in &g.nodes {
        if node.op == Op::Reshape {
            root[node.output] = root[node.input(0)];
        }
    }
    let never = usize::MAX;
    let mut first = vec![never; n];
    let mut last = vec![0usize; n];
    first[root[g.input]] = 0;
    for (k, node) in g.nodes.iter().enumerate() {
        let step = k + 1;
        for &i in node.inputs.iter().flatten() {
            if !g.tensors[i].is_const() {
                last[root[i]] = last[root[i]].max(step);
            }
        }
        let r = root[node.output];
        if first[r] == never {
            first[r] = step;
        }
        last[r] = last[r].max(step);
    }
    last[root[g.output]] = usize::MAX;

    let mut order: Vec<usize> = (0..n).filter(|&t| root[t] == t && first[t] != never).collect();
    order.sort_by_key(|&t| first[t]);
    let mut slots: Vec<Option<Place>> = vec![None; n];
    // Live allocations per arena: (slot, last use).
    let mut live: Vec<(DType, Slot, usize)> = Vec::new();
    for t in order {
        let tensor = &g.tensors[t];
        let dtype = tensor.dtype;
        if !matches!(dtype, DType::F32 | DType::I8 | DType::I16) {
            bail!(UnsupportedModel, "activation tensor {} of type {dtype:?}", tensor.name);
        }
        live.retain(|&(_, _, end)| end >= first[t]);
        let len = tensor.numel();
        let mut taken: Vec<Slot> = live.iter().filter(|(d, _, _)| *d == dtype).map(|&(_, s, _)| s).collect();
        taken.sort_by_key(|s| s.offset);
        let mut offset = 0;
        for s in &taken {
            if offset + len <= s.offset {
                break;
            }
            offset = offset.max(s.end());
        }
        let slot = Slot { offset, len };
        live.push((dtype, slot, last[t]));
        slots[t] = Some(Place { dtype, slot });
    }
    for t in 0..n {
        if root[t] != t {
            let r = slots[root[t]];
            slots[t] =
                r.map(|p| Place { dtype: p.dtype, slot: Slot { offset: p.slot.offset, len: g.tensors[t].numel() } });
        }
    }
    Ok(slots)
}
