//! Binding a plan to a build: which arch every step runs on (`kernels::select`), the output stages
//! those kernels read, and the kernels' names for `Plan::kernels` and `edge-classify inspect --kernels`.

use super::{Convert, OpStep, Plan, Prec, Step};
use crate::kernels::Arch;

impl Plan {
    /// Picks every step's kernel for `target` ([`select`]) and builds the output stages those kernels
    /// read: at the end of [`Plan::new`], and after a persisted plan is restored (it is written by a
    /// native build, whose kernels are scalar).
    pub fn bind(&mut self, target: Arch) {
        for step in &mut self.steps {
            match step {
                Step::F32(s) => bind_op(s, target),
                Step::I8(s) => bind_op(s, target),
                Step::I16(s) => bind_op(s, target),
                Step::Convert(_) => {}
            }
        }
    }

    /// The kernel of every step, named `precision/loop/arch` (`int8/pointwise/simd128`), as bound.
    pub fn kernels(&self) -> Vec<String> {
        self.steps.iter().map(|s| step_kernel(s, None)).collect()
    }

    /// What [`Plan::kernels`] would list after `bind(target)`, without rebinding (a native build can
    /// list what the SIMD build runs).
    pub fn kernels_for(&self, target: Arch) -> Vec<String> {
        self.steps.iter().map(|s| step_kernel(s, Some(target))).collect()
    }
}

fn bind_op<P: Prec>(s: &mut OpStep<P>, target: Arch) {
    match s {
        OpStep::Conv { op, filter, bias, .. } => P::bind_conv(op, filter, bias.as_deref(), target),
        OpStep::Add { p, arch, .. } => *arch = P::add_arch(p, target),
        _ => {}
    }
}

/// The step's kernel name: as bound, or (`Some(target)`) as `bind(target)` would choose it.
fn op_kernel<P: Prec>(s: &OpStep<P>, target: Option<Arch>) -> String {
    let (op, arch) = match s {
        OpStep::Conv { op, .. } => (op.kernel.lp.name(), target.map_or(op.kernel.arch, |t| P::conv_arch(op, t))),
        OpStep::FullyConnected { .. } => ("fully-connected", Arch::Scalar),
        OpStep::AvgPool { .. } => ("average-pool", Arch::Scalar),
        OpStep::Mean { .. } => ("mean", Arch::Scalar),
        OpStep::Add { p, arch, .. } => ("add", target.map_or(*arch, |t| P::add_arch(p, t))),
        OpStep::Softmax { .. } => ("softmax", Arch::Scalar),
        OpStep::Pad { .. } => ("pad", Arch::Scalar),
    };
    format!("{}/{op}/{}", P::NAME, arch.name())
}

fn step_kernel(step: &Step, target: Option<Arch>) -> String {
    match step {
        Step::F32(s) => op_kernel(s, target),
        Step::I8(s) => op_kernel(s, target),
        Step::I16(s) => op_kernel(s, target),
        Step::Convert(c) => {
            let what = match c {
                Convert::QuantizeI8 { .. } => "quantize-int8",
                Convert::QuantizeI16 { .. } => "quantize-int16",
                Convert::DequantizeI8 { .. } => "dequantize-int8",
                Convert::DequantizeI16 { .. } => "dequantize-int16",
                Convert::RequantizeI8I8 { .. } => "requantize-int8-int8",
                Convert::RequantizeI8I16 { .. } => "requantize-int8-int16",
                Convert::RequantizeI16I8 { .. } => "requantize-int16-int8",
                Convert::RequantizeI16I16 { .. } => "requantize-int16-int16",
            };
            format!("convert/{what}/scalar")
        }
    }
}
