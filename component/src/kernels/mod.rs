//! Kernels: one module per precision (`fp32`, `int8`, `int16`), all with the same shape so a reader
//! learns it once. (Contract placeholder — the kernels helper fills this in.)

/// Fused activation of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, AVERAGE_POOL_2D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
}

/// Geometry of a 2-D convolution or depthwise convolution over NHWC tensors.
/// Filters are TFLite's layouts: CONV_2D `[out_c, k_h, k_w, in_c]`, DEPTHWISE `[1, k_h, k_w, out_c]`
/// with `out_c = in_c * depth_multiplier`. `pad_top`/`pad_left` are TFLite's computed padding offsets
/// (0 for VALID). Taps that fall outside the input are skipped (they contribute nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    /// Depthwise only (1 for CONV_2D).
    pub depth_multiplier: usize,
}
