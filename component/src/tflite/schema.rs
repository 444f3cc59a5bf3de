//! The subset of the TFLite flatbuffer schema this executor reads, written by hand.
//!
//! Field slots are facts of the format (`schema.fbs` field order: vtable offset = 4 + 2 * id).
//! Every table implements `flatbuffers::Verifiable`, so a buffer is verified once (bounds, offsets,
//! vtables) before any accessor runs; accessors are then plain reads.

use flatbuffers::{Follow, ForwardsUOffset, Table, VOffsetT, Vector, Verifiable, Verifier};

pub(super) type VResult = Result<(), flatbuffers::InvalidFlatbuffer>;

pub(super) const fn slot(id: VOffsetT) -> VOffsetT {
    4 + 2 * id
}

/// Declares a table wrapper with verified, typed accessors.
///
/// Field kinds: `scalar<T> = default`, `vec<T>` (vector of scalars), `table<T>`, `tables<T>`
/// (vector of tables), `string`.
macro_rules! fb_table {
    ($name:ident { $($field:ident @ $id:literal : $kind:ident $(<$ty:tt>)? $(= $default:expr)?),* $(,)? }) => {
        #[derive(Clone, Copy)]
        pub struct $name<'a>(Table<'a>);

        impl<'a> Follow<'a> for $name<'a> {
            type Inner = $name<'a>;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
                // SAFETY: forwarded from the caller (a verified buffer and table location).
                $name(unsafe { Table::new(buf, loc) })
            }
        }

        impl Verifiable for $name<'_> {
            fn run_verifier(v: &mut Verifier, pos: usize) -> VResult {
                v.visit_table(pos)?
                    $(.visit_field::<fb_table!(@vty $kind $(<$ty>)?)>(stringify!($field), slot($id), false)?)*
                    .finish();
                Ok(())
            }
        }

        impl<'a> $name<'a> {
            $(fb_table!(@get $field $id $kind $(<$ty>)? $(= $default)?);)*
        }
    };

    (@vty scalar<$ty:tt>) => { $ty };
    (@vty vec<$ty:tt>) => { ForwardsUOffset<Vector<'_, $ty>> };
    (@vty table<$ty:tt>) => { ForwardsUOffset<$ty<'_>> };
    (@vty tables<$ty:tt>) => { ForwardsUOffset<Vector<'_, ForwardsUOffset<$ty<'_>>>> };
    (@vty string) => { ForwardsUOffset<&str> };

    (@get $field:ident $id:literal scalar<$ty:tt> = $default:expr) => {
        pub fn $field(&self) -> $ty {
            // SAFETY: the table was verified, including this field's type and bounds.
            unsafe { self.0.get::<$ty>(slot($id), Some($default)) }.unwrap_or($default)
        }
    };
    (@get $field:ident $id:literal vec<$ty:tt>) => {
        pub fn $field(&self) -> Option<Vector<'a, $ty>> {
            // SAFETY: verified.
            unsafe { self.0.get::<ForwardsUOffset<Vector<'a, $ty>>>(slot($id), None) }
        }
    };
    (@get $field:ident $id:literal table<$ty:tt>) => {
        pub fn $field(&self) -> Option<$ty<'a>> {
            // SAFETY: verified.
            unsafe { self.0.get::<ForwardsUOffset<$ty<'a>>>(slot($id), None) }
        }
    };
    (@get $field:ident $id:literal tables<$ty:tt>) => {
        pub fn $field(&self) -> Option<Vector<'a, ForwardsUOffset<$ty<'a>>>> {
            // SAFETY: verified.
            unsafe { self.0.get::<ForwardsUOffset<Vector<'a, ForwardsUOffset<$ty<'a>>>>>(slot($id), None) }
        }
    };
    (@get $field:ident $id:literal string) => {
        pub fn $field(&self) -> Option<&'a str> {
            // SAFETY: verified (UTF-8 included).
            unsafe { self.0.get::<ForwardsUOffset<&str>>(slot($id), None) }
        }
    };
}
// `metadata` declares the TFLite Support tables with the same macro.
pub(super) use fb_table;

fb_table!(Model {
    version @ 0: scalar<u32> = 0,
    operator_codes @ 1: tables<OperatorCode>,
    subgraphs @ 2: tables<SubGraph>,
    description @ 3: string,
    buffers @ 4: tables<Buffer>,
    // 5 = metadata_buffer (deprecated in favour of `metadata`)
    metadata @ 6: tables<MetadataEntry>,
});

// schema.fbs `Metadata`: a named pointer into `Model.buffers`, e.g. "TFLITE_METADATA".
fb_table!(MetadataEntry {
    name @ 0: string,
    buffer @ 1: scalar<u32> = 0,
});

fb_table!(OperatorCode {
    deprecated_builtin_code @ 0: scalar<i8> = 0,
    custom_code @ 1: string,
    version @ 2: scalar<i32> = 1,
    builtin_code @ 3: scalar<i32> = 0,
});

impl OperatorCode<'_> {
    /// Files older than schema v3a only set the int8 field; newer ones set both (the larger wins).
    pub fn code(&self) -> i32 {
        self.builtin_code().max(self.deprecated_builtin_code() as i32)
    }
}

fb_table!(SubGraph {
    tensors @ 0: tables<Tensor>,
    inputs @ 1: vec<i32>,
    outputs @ 2: vec<i32>,
    operators @ 3: tables<Operator>,
    name @ 4: string,
});

fb_table!(Tensor {
    shape @ 0: vec<i32>,
    tensor_type @ 1: scalar<i8> = 0,
    buffer @ 2: scalar<u32> = 0,
    name @ 3: string,
    quantization @ 4: table<QuantizationParameters>,
    is_variable @ 5: scalar<bool> = false,
    // 6 = sparsity (a table we refuse by presence, see `has_sparsity`)
});

impl Tensor<'_> {
    pub fn has_sparsity(&self) -> bool {
        self.0.vtable().get(slot(6)) != 0
    }
}

fb_table!(QuantizationParameters {
    min @ 0: vec<f32>,
    max @ 1: vec<f32>,
    scale @ 2: vec<f32>,
    zero_point @ 3: vec<i64>,
    details_type @ 4: scalar<u8> = 0,
    // 5 = details (custom quantization; refused via details_type)
    quantized_dimension @ 6: scalar<i32> = 0,
});

fb_table!(Buffer {
    data @ 0: vec<u8>,
    offset @ 1: scalar<u64> = 0,
    size @ 2: scalar<u64> = 0,
});

/// `Operator` is written by hand: its options are a union whose table type depends on a key.
#[derive(Clone, Copy)]
pub struct Operator<'a>(Table<'a>);

impl<'a> Follow<'a> for Operator<'a> {
    type Inner = Operator<'a>;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        // SAFETY: forwarded from the caller.
        Operator(unsafe { Table::new(buf, loc) })
    }
}

const OP_OPTIONS_TYPE: VOffsetT = slot(3);
const OP_OPTIONS: VOffsetT = slot(4);

impl Verifiable for Operator<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> VResult {
        v.visit_table(pos)?
            .visit_field::<u32>("opcode_index", slot(0), false)?
            .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("inputs", slot(1), false)?
            .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("outputs", slot(2), false)?
            .visit_union::<u8, _>(
                "builtin_options_type",
                OP_OPTIONS_TYPE,
                "builtin_options",
                OP_OPTIONS,
                false,
                |key, v, pos| {
                    match OptionsKind::from_key(key) {
                        Some(OptionsKind::Conv2D) => {
                            v.verify_union_variant::<ForwardsUOffset<Conv2DOptions>>("Conv2DOptions", pos)
                        }
                        Some(OptionsKind::DepthwiseConv2D) => v
                            .verify_union_variant::<ForwardsUOffset<DepthwiseConv2DOptions>>(
                                "DepthwiseConv2DOptions",
                                pos,
                            ),
                        Some(OptionsKind::Pool2D) => {
                            v.verify_union_variant::<ForwardsUOffset<Pool2DOptions>>("Pool2DOptions", pos)
                        }
                        Some(OptionsKind::FullyConnected) => v
                            .verify_union_variant::<ForwardsUOffset<FullyConnectedOptions>>(
                                "FullyConnectedOptions",
                                pos,
                            ),
                        Some(OptionsKind::Softmax) => {
                            v.verify_union_variant::<ForwardsUOffset<SoftmaxOptions>>("SoftmaxOptions", pos)
                        }
                        Some(OptionsKind::Add) => {
                            v.verify_union_variant::<ForwardsUOffset<AddOptions>>("AddOptions", pos)
                        }
                        Some(OptionsKind::Reshape) => {
                            v.verify_union_variant::<ForwardsUOffset<ReshapeOptions>>("ReshapeOptions", pos)
                        }
                        Some(OptionsKind::Reducer) => {
                            v.verify_union_variant::<ForwardsUOffset<ReducerOptions>>("ReducerOptions", pos)
                        }
                        // Options of operators we do not run are never read, so not verified either.
                        None => Ok(()),
                    }
                },
            )?
            .finish();
        Ok(())
    }
}

/// The union keys (`BuiltinOptions` enum values) of the option tables we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsKind {
    Conv2D,
    DepthwiseConv2D,
    Pool2D,
    FullyConnected,
    Softmax,
    Add,
    Reshape,
    Reducer,
}

impl OptionsKind {
    fn from_key(key: u8) -> Option<Self> {
        Some(match key {
            1 => Self::Conv2D,
            2 => Self::DepthwiseConv2D,
            5 => Self::Pool2D,
            8 => Self::FullyConnected,
            9 => Self::Softmax,
            11 => Self::Add,
            17 => Self::Reshape,
            27 => Self::Reducer,
            _ => return None,
        })
    }
}

impl<'a> Operator<'a> {
    pub fn opcode_index(&self) -> u32 {
        // SAFETY: verified.
        unsafe { self.0.get::<u32>(slot(0), Some(0)) }.unwrap_or(0)
    }
    pub fn inputs(&self) -> Option<Vector<'a, i32>> {
        // SAFETY: verified.
        unsafe { self.0.get::<ForwardsUOffset<Vector<'a, i32>>>(slot(1), None) }
    }
    pub fn outputs(&self) -> Option<Vector<'a, i32>> {
        // SAFETY: verified.
        unsafe { self.0.get::<ForwardsUOffset<Vector<'a, i32>>>(slot(2), None) }
    }
    pub fn options_key(&self) -> u8 {
        // SAFETY: verified.
        unsafe { self.0.get::<u8>(OP_OPTIONS_TYPE, Some(0)) }.unwrap_or(0)
    }
    /// The options table if its union key says it is of `kind` (the only case it was verified as such).
    fn options<T: Follow<'a, Inner = T> + 'a>(&self, kind: OptionsKind) -> Option<T> {
        if OptionsKind::from_key(self.options_key()) != Some(kind) {
            return None;
        }
        // SAFETY: verified as `T` because the key matched `kind` during verification.
        unsafe { self.0.get::<ForwardsUOffset<T>>(OP_OPTIONS, None) }
    }
    pub fn conv2d_options(&self) -> Option<Conv2DOptions<'a>> {
        self.options(OptionsKind::Conv2D)
    }
    pub fn depthwise_options(&self) -> Option<DepthwiseConv2DOptions<'a>> {
        self.options(OptionsKind::DepthwiseConv2D)
    }
    pub fn pool2d_options(&self) -> Option<Pool2DOptions<'a>> {
        self.options(OptionsKind::Pool2D)
    }
    pub fn fully_connected_options(&self) -> Option<FullyConnectedOptions<'a>> {
        self.options(OptionsKind::FullyConnected)
    }
    pub fn softmax_options(&self) -> Option<SoftmaxOptions<'a>> {
        self.options(OptionsKind::Softmax)
    }
    pub fn add_options(&self) -> Option<AddOptions<'a>> {
        self.options(OptionsKind::Add)
    }
    pub fn reshape_options(&self) -> Option<ReshapeOptions<'a>> {
        self.options(OptionsKind::Reshape)
    }
    pub fn reducer_options(&self) -> Option<ReducerOptions<'a>> {
        self.options(OptionsKind::Reducer)
    }
}

fb_table!(Conv2DOptions {
    padding @ 0: scalar<i8> = 0,
    stride_w @ 1: scalar<i32> = 0,
    stride_h @ 2: scalar<i32> = 0,
    fused_activation_function @ 3: scalar<i8> = 0,
    dilation_w_factor @ 4: scalar<i32> = 1,
    dilation_h_factor @ 5: scalar<i32> = 1,
});

fb_table!(DepthwiseConv2DOptions {
    padding @ 0: scalar<i8> = 0,
    stride_w @ 1: scalar<i32> = 0,
    stride_h @ 2: scalar<i32> = 0,
    depth_multiplier @ 3: scalar<i32> = 0,
    fused_activation_function @ 4: scalar<i8> = 0,
    dilation_w_factor @ 5: scalar<i32> = 1,
    dilation_h_factor @ 6: scalar<i32> = 1,
});

fb_table!(Pool2DOptions {
    padding @ 0: scalar<i8> = 0,
    stride_w @ 1: scalar<i32> = 0,
    stride_h @ 2: scalar<i32> = 0,
    filter_width @ 3: scalar<i32> = 0,
    filter_height @ 4: scalar<i32> = 0,
    fused_activation_function @ 5: scalar<i8> = 0,
});

fb_table!(FullyConnectedOptions {
    fused_activation_function @ 0: scalar<i8> = 0,
    weights_format @ 1: scalar<i8> = 0,
    keep_num_dims @ 2: scalar<bool> = false,
    asymmetric_quantize_inputs @ 3: scalar<bool> = false,
});

fb_table!(SoftmaxOptions {
    beta @ 0: scalar<f32> = 0.0,
});

fb_table!(AddOptions {
    fused_activation_function @ 0: scalar<i8> = 0,
    pot_scale_int16 @ 1: scalar<bool> = true,
});

fb_table!(ReshapeOptions {
    new_shape @ 0: vec<i32>,
});

fb_table!(ReducerOptions {
    keep_dims @ 0: scalar<bool> = false,
});
