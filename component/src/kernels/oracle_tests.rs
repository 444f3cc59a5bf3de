//! Differential test against TFLite itself: `golden/kernel_cases.txt`, written by
//! `golden/kernel_oracle.py` (which builds random single-op models, runs them with ai-edge-litert's
//! `BUILTIN_REF` resolver and records inputs, parameters and the reference outputs). The file is
//! committed, so this always runs and needs no Python; a missing or malformed file fails the test.
//! Regenerate it with `golden/.venv/bin/python golden/kernel_oracle.py` (see golden/README.md).
//!
//! Integer outputs must match exactly; float outputs bit for bit, except SOFTMAX, which may differ by
//! up to [`SOFTMAX_F32_MAX_ULP`] ulp (the platform `expf` is not TFLite's).

use super::select::Arch;
use super::{fp32, int16, int8, Activation, ConvGeom, ConvOp, FcGeom, Kernels, PoolGeom, TensorQuant, F32, I16, I8};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// The committed reference cases.
const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../golden/kernel_cases.txt");

/// fp32 SOFTMAX tolerance, in units in the last place (every other output must match exactly). With
/// glibc's `expf` (TFLite's reference SOFTMAX calls `std::exp`) the kernels agree bit for bit; another libm may be
/// off by ~1 ulp per `exp`, which the sum and the division can compound to ~3 ulp.
const SOFTMAX_F32_MAX_ULP: i64 = 4;

/// Every op × dtype × variant the file must cover, and how many cases each needs at least.
const MIN_CASES: usize = 10;
fn expected_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for op in ["conv", "dwconv", "fc"] {
        keys.push(format!("{op} f32"));
        keys.push(format!("{op} u8"));
        for dt in ["i8", "i16"] {
            keys.push(format!("{op} {dt} per-tensor"));
            keys.push(format!("{op} {dt} per-channel"));
        }
    }
    for op in ["avgpool", "mean", "softmax"] {
        for dt in ["f32", "i8", "u8", "i16"] {
            keys.push(format!("{op} {dt}"));
        }
    }
    for k in ["add f32", "add i8", "add u8", "add i16 general", "add i16 pot"] {
        keys.push(k.to_string());
    }
    for dt in
        ["f32_i8", "f32_u8", "f32_i16", "i8_i8", "u8_i8", "i8_u8", "i16_i16", "i16_i8", "i8_f32", "u8_f32", "i16_f32"]
    {
        keys.push(format!("quantize {dt}"));
    }
    keys
}

struct Case {
    op: String,
    dtype: String,
    kv: HashMap<String, Vec<String>>,
}

impl Case {
    fn raw(&self, k: &str) -> &[String] {
        self.kv.get(k).unwrap_or_else(|| panic!("{} {}: no {k}", self.op, self.dtype))
    }
    fn i(&self, k: &str) -> i32 {
        self.raw(k)[0].parse().unwrap()
    }
    fn f(&self, k: &str) -> f32 {
        f32::from_bits(u32::from_str_radix(&self.raw(k)[0], 16).unwrap())
    }
    fn list(&self, k: &str) -> Vec<usize> {
        self.raw(k).iter().map(|v| v.parse().unwrap()).collect()
    }
    /// The values of an array (`key n v…`), checking `n`.
    fn array(&self, k: &str) -> &[String] {
        let r = self.raw(k);
        let n: usize = r[0].parse().unwrap();
        assert_eq!(n, r.len() - 1, "{} {}: {k}: count", self.op, self.dtype);
        &r[1..]
    }
    /// An array of integers.
    fn ints(&self, k: &str) -> Vec<i64> {
        self.array(k).iter().map(|v| v.parse().unwrap()).collect()
    }
    /// An array of f32 bit patterns.
    fn floats(&self, k: &str) -> Vec<f32> {
        self.array(k).iter().map(|v| f32::from_bits(u32::from_str_radix(v, 16).unwrap())).collect()
    }
    /// The statistics key: op, dtype and, where the kernel has two paths, which one.
    fn key(&self) -> String {
        let variant = match (self.op.as_str(), self.dtype.as_str()) {
            ("conv" | "dwconv" | "fc", "i8" | "i16") => {
                if self.i("pc") != 0 {
                    " per-channel"
                } else {
                    " per-tensor"
                }
            }
            ("add", "i16") => {
                if self.i("pot") != 0 {
                    " pot"
                } else {
                    " general"
                }
            }
            _ => "",
        };
        format!("{} {}{variant}", self.op, self.dtype)
    }
    fn act(&self) -> Activation {
        [Activation::None, Activation::Relu, Activation::Relu6][self.i("act") as usize]
    }
    fn q(&self, s: &str, z: &str) -> TensorQuant {
        TensorQuant::new(self.f(s), self.i(z))
    }
    /// A uint8 tensor's quantization as executed (zero point − 128).
    fn q8(&self, s: &str, z: &str) -> TensorQuant {
        TensorQuant::new(self.f(s), self.i(z) - 128)
    }
}

/// Parses the case file; panics on anything malformed (a truncated file must not pass as fewer cases).
fn parse(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("case") => {
                assert!(cur.is_none(), "line {n}: case inside a case");
                let op = parts.next().unwrap().to_string();
                let dtype = parts.next().unwrap().to_string();
                cur = Some(Case { op, dtype, kv: HashMap::new() });
            }
            Some("end") => cases.push(cur.take().unwrap_or_else(|| panic!("line {n}: end outside a case"))),
            Some(key) => {
                let c = cur.as_mut().unwrap_or_else(|| panic!("line {n}: {key} outside a case"));
                let old = c.kv.insert(key.to_string(), parts.map(str::to_string).collect());
                assert!(old.is_none(), "line {n}: {key} repeated");
            }
            None => {}
        }
    }
    assert!(cur.is_none(), "unterminated case at the end of the file");
    cases
}

fn i8s(v: &[i64]) -> Vec<i8> {
    v.iter().map(|&x| x as i8).collect()
}
fn i16s(v: &[i64]) -> Vec<i16> {
    v.iter().map(|&x| x as i16).collect()
}
fn i32s(v: &[i64]) -> Vec<i32> {
    v.iter().map(|&x| x as i32).collect()
}
/// uint8 values as executed (v − 128).
fn u8s(v: &[i64]) -> Vec<i8> {
    v.iter().map(|&x| (x - 128) as i8).collect()
}
fn widen<T: Copy + Into<i64>>(v: &[T]) -> Vec<i64> {
    v.iter().map(|&x| x.into()).collect()
}
fn unshift(v: &[i8]) -> Vec<i64> {
    v.iter().map(|&x| i64::from(x) + 128).collect()
}
/// f32 values as integers ordered like the floats, adjacent floats differing by 1 (so a difference
/// is a distance in ulp, and 0 means bit-identical).
fn bits(v: &[f32]) -> Vec<i64> {
    v.iter()
        .map(|x| {
            let b = x.to_bits();
            let m = i64::from(b & 0x7fff_ffff);
            if b >> 31 == 0 {
                m
            } else {
                -m - 1
            }
        })
        .collect()
}

/// Runs one case; returns (got, want) as integers (float outputs as [`bits`]).
/// A convolution as the plan runs it: the loop `select` picks, the filter packed for it, the arch this
/// build binds (so the oracle checks the executor's kernels, not a reference copy of them).
// The conv signature plus the depthwise flag.
#[allow(clippy::too_many_arguments)]
fn run_conv<K: Kernels>(
    p: &K::Conv,
    depthwise: bool,
    g: &ConvGeom,
    x: &[K::Act],
    w: &[K::Weight],
    b: Option<&[K::Bias]>,
    y: &mut [K::Act],
) {
    let (mut op, filter) = ConvOp::<K>::new(p.clone(), depthwise, g, w);
    K::bind_conv(&mut op, &filter, b, Arch::current());
    K::conv(&op, x, &filter, b, y)
}

fn run(c: &Case) -> (Vec<i64>, Vec<i64>) {
    let dt = c.dtype.as_str();
    match c.op.as_str() {
        "conv" | "dwconv" => {
            let g = c.list("geom");
            let geom = ConvGeom {
                batch: g[0],
                in_h: g[1],
                in_w: g[2],
                in_c: g[3],
                out_h: g[4],
                out_w: g[5],
                out_c: g[6],
                k_h: g[7],
                k_w: g[8],
                stride_h: g[9],
                stride_w: g[10],
                dilation_h: g[11],
                dilation_w: g[12],
                pad_top: g[13],
                pad_left: g[14],
                depth_multiplier: g[15],
            };
            let dw = c.op == "dwconv";
            let n = geom.output_len();
            match dt {
                "f32" => {
                    let p = fp32::ConvParams::prepare(c.act());
                    let (x, w, b) = (c.floats("x"), c.floats("w"), c.floats("bias"));
                    let mut y = vec![0f32; n];
                    if dw {
                        run_conv::<F32>(&p, true, &geom, &x, &w, Some(&b), &mut y)
                    } else {
                        run_conv::<F32>(&p, false, &geom, &x, &w, Some(&b), &mut y)
                    }
                    (bits(&y), bits(&c.floats("y")))
                }
                "i8" | "u8" => {
                    let u = dt == "u8";
                    let (x, w) =
                        if u { (u8s(&c.ints("x")), u8s(&c.ints("w"))) } else { (i8s(&c.ints("x")), i8s(&c.ints("w"))) };
                    let (qi, qo) = if u {
                        (c.q8("in_s", "in_zp"), c.q8("out_s", "out_zp"))
                    } else {
                        (c.q("in_s", "in_zp"), c.q("out_s", "out_zp"))
                    };
                    let wzp = if u { c.i("w_zp") - 128 } else { c.i("w_zp") };
                    let p = int8::ConvParams::prepare(qi, &c.floats("w_scales"), wzp, qo, c.act(), u);
                    let b = i32s(&c.ints("bias"));
                    let mut y = vec![0i8; n];
                    if dw {
                        run_conv::<I8>(&p, true, &geom, &x, &w, Some(&b), &mut y)
                    } else {
                        run_conv::<I8>(&p, false, &geom, &x, &w, Some(&b), &mut y)
                    }
                    (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "i16" => {
                    let p = int16::ConvParams::prepare(
                        c.q("in_s", "in_zp"),
                        &c.floats("w_scales"),
                        c.q("out_s", "out_zp"),
                        c.act(),
                    );
                    let (x, w, b) = (i16s(&c.ints("x")), i8s(&c.ints("w")), c.ints("bias"));
                    let mut y = vec![0i16; n];
                    if dw {
                        run_conv::<I16>(&p, true, &geom, &x, &w, Some(&b), &mut y)
                    } else {
                        run_conv::<I16>(&p, false, &geom, &x, &w, Some(&b), &mut y)
                    }
                    (widen(&y), c.ints("y"))
                }
                _ => unreachable!(),
            }
        }
        "fc" => {
            let g = c.list("geom");
            let geom = FcGeom { batch: g[0], in_depth: g[1], out_depth: g[2] };
            let n = g[0] * g[2];
            match dt {
                "f32" => {
                    let p = fp32::FullyConnectedParams::prepare(c.act());
                    let mut y = vec![0f32; n];
                    F32::fully_connected(&p, &geom, &c.floats("x"), &c.floats("w"), Some(&c.floats("bias")), &mut y);
                    (bits(&y), bits(&c.floats("y")))
                }
                "i8" | "u8" => {
                    let u = dt == "u8";
                    let (x, w) =
                        if u { (u8s(&c.ints("x")), u8s(&c.ints("w"))) } else { (i8s(&c.ints("x")), i8s(&c.ints("w"))) };
                    let (qi, qo) = if u {
                        (c.q8("in_s", "in_zp"), c.q8("out_s", "out_zp"))
                    } else {
                        (c.q("in_s", "in_zp"), c.q("out_s", "out_zp"))
                    };
                    let wzp = if u { c.i("w_zp") - 128 } else { c.i("w_zp") };
                    let p = int8::FullyConnectedParams::prepare(qi, &c.floats("w_scales"), wzp, qo, c.act());
                    let mut y = vec![0i8; n];
                    I8::fully_connected(&p, &geom, &x, &w, Some(&i32s(&c.ints("bias"))), &mut y);
                    (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "i16" => {
                    let p = int16::FullyConnectedParams::prepare(
                        c.q("in_s", "in_zp"),
                        &c.floats("w_scales"),
                        c.q("out_s", "out_zp"),
                        c.act(),
                    );
                    let mut y = vec![0i16; n];
                    I16::fully_connected(
                        &p,
                        &geom,
                        &i16s(&c.ints("x")),
                        &i8s(&c.ints("w")),
                        Some(&c.ints("bias")),
                        &mut y,
                    );
                    (widen(&y), c.ints("y"))
                }
                _ => unreachable!(),
            }
        }
        "avgpool" => {
            let g = c.list("geom");
            let geom = PoolGeom {
                batch: g[0],
                in_h: g[1],
                in_w: g[2],
                channels: g[3],
                out_h: g[4],
                out_w: g[5],
                filter_h: g[6],
                filter_w: g[7],
                stride_h: g[8],
                stride_w: g[9],
                pad_top: g[10],
                pad_left: g[11],
            };
            let n = geom.output_len();
            match dt {
                "f32" => {
                    let mut y = vec![0f32; n];
                    fp32::average_pool2d(&fp32::AvgPoolParams::prepare(c.act()), &geom, &c.floats("x"), &mut y);
                    (bits(&y), bits(&c.floats("y")))
                }
                "i8" | "u8" => {
                    let u = dt == "u8";
                    let q = if u { c.q8("s", "zp") } else { c.q("s", "zp") };
                    let x = if u { u8s(&c.ints("x")) } else { i8s(&c.ints("x")) };
                    let mut y = vec![0i8; n];
                    int8::average_pool2d(&int8::AvgPoolParams::prepare(q, c.act(), u), &geom, &x, &mut y);
                    (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "i16" => {
                    let mut y = vec![0i16; n];
                    int16::average_pool2d(
                        &int16::AvgPoolParams::prepare(c.q("s", "zp"), c.act()),
                        &geom,
                        &i16s(&c.ints("x")),
                        &mut y,
                    );
                    (widen(&y), c.ints("y"))
                }
                _ => unreachable!(),
            }
        }
        "mean" => {
            let g = c.list("geom");
            let shape = [g[0], g[1], g[2], g[3]];
            let n = g[0] * g[3];
            match dt {
                "f32" => {
                    let mut y = vec![0f32; n];
                    fp32::mean_hw(&fp32::MeanParams::prepare(), shape, &c.floats("x"), &mut y);
                    (bits(&y), bits(&c.floats("y")))
                }
                "i8" | "u8" => {
                    let u = dt == "u8";
                    let (qi, qo) = if u {
                        (c.q8("in_s", "in_zp"), c.q8("out_s", "out_zp"))
                    } else {
                        (c.q("in_s", "in_zp"), c.q("out_s", "out_zp"))
                    };
                    let x = if u { u8s(&c.ints("x")) } else { i8s(&c.ints("x")) };
                    let mut y = vec![0i8; n];
                    I8::mean_hw(&int8::MeanParams::prepare(qi, qo), shape, &x, &mut y);
                    (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "i16" => {
                    let mut y = vec![0i16; n];
                    I16::mean_hw(
                        &int16::MeanParams::prepare(c.q("in_s", "in_zp"), c.q("out_s", "out_zp")),
                        shape,
                        &i16s(&c.ints("x")),
                        &mut y,
                    );
                    (widen(&y), c.ints("y"))
                }
                _ => unreachable!(),
            }
        }
        "add" => match dt {
            "f32" => {
                let (a, b) = (c.floats("a"), c.floats("b"));
                let mut y = vec![0f32; a.len()];
                fp32::add(&fp32::AddParams::prepare(c.act()), &a, &b, &mut y);
                (bits(&y), bits(&c.floats("y")))
            }
            "i8" | "u8" => {
                let u = dt == "u8";
                let q = |s, z| if u { c.q8(s, z) } else { c.q(s, z) };
                let conv = |k| if u { u8s(&c.ints(k)) } else { i8s(&c.ints(k)) };
                let p =
                    int8::AddParams::prepare(q("s1", "z1"), q("s2", "z2"), q("so", "zo"), c.act()).expect("prepare");
                let (a, b) = (conv("a"), conv("b"));
                let mut y = vec![0i8; a.len()];
                int8::add(&p, &a, &b, &mut y);
                (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
            }
            "i16" => {
                let p = int16::AddParams::prepare(
                    c.q("s1", "z1"),
                    c.q("s2", "z2"),
                    c.q("so", "zo"),
                    c.act(),
                    c.i("pot") != 0,
                )
                .expect("prepare");
                let (a, b) = (i16s(&c.ints("a")), i16s(&c.ints("b")));
                let mut y = vec![0i16; a.len()];
                int16::add(&p, &a, &b, &mut y);
                (widen(&y), c.ints("y"))
            }
            _ => unreachable!(),
        },
        "softmax" => {
            let depth = c.i("depth") as usize;
            let beta = c.f("beta");
            match dt {
                "f32" => {
                    let x = c.floats("x");
                    let mut y = vec![0f32; x.len()];
                    fp32::softmax(&fp32::SoftmaxParams::prepare(beta), depth, &x, &mut y);
                    (bits(&y), bits(&c.floats("y")))
                }
                "i8" | "u8" => {
                    let u = dt == "u8";
                    let q = if u { c.q8("in_s", "in_zp") } else { c.q("in_s", "in_zp") };
                    let x = if u { u8s(&c.ints("x")) } else { i8s(&c.ints("x")) };
                    let mut y = vec![0i8; x.len()];
                    int8::softmax(&int8::SoftmaxParams::prepare(beta, q), depth, &x, &mut y);
                    (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "i16" => {
                    let x = i16s(&c.ints("x"));
                    let mut y = vec![0i16; x.len()];
                    int16::softmax(&int16::SoftmaxParams::prepare(beta, c.q("in_s", "in_zp")), depth, &x, &mut y);
                    (widen(&y), c.ints("y"))
                }
                _ => unreachable!(),
            }
        }
        "quantize" => {
            let (qi, qo) = (c.q("in_s", "in_zp"), c.q("out_s", "out_zp"));
            let shifted = |q: TensorQuant| TensorQuant::new(q.scale, q.zero_point - 128);
            match dt {
                "f32_i8" | "f32_u8" => {
                    let u = dt == "f32_u8";
                    let x = c.floats("x");
                    let mut y = vec![0i8; x.len()];
                    int8::affine_quantize(&int8::QuantizeParams::prepare(if u { shifted(qo) } else { qo }), &x, &mut y);
                    (if u { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "f32_i16" => {
                    let x = c.floats("x");
                    let mut y = vec![0i16; x.len()];
                    int16::affine_quantize(&int16::QuantizeParams::prepare(qo), &x, &mut y);
                    (widen(&y), c.ints("y"))
                }
                "i8_i8" | "u8_i8" | "i8_u8" => {
                    let (ui, uo) = (dt.starts_with('u'), dt.ends_with("u8"));
                    let x = if ui { u8s(&c.ints("x")) } else { i8s(&c.ints("x")) };
                    let p = int8::RequantizeParams::prepare(
                        if ui { shifted(qi) } else { qi },
                        if uo { shifted(qo) } else { qo },
                    );
                    let mut y = vec![0i8; x.len()];
                    int8::requantize(&p, &x, &mut y);
                    (if uo { unshift(&y) } else { widen(&y) }, c.ints("y"))
                }
                "i16_i16" => {
                    let x = i16s(&c.ints("x"));
                    let mut y = vec![0i16; x.len()];
                    int16::requantize(&int16::RequantizeParams::prepare(qi, qo), &x, &mut y);
                    (widen(&y), c.ints("y"))
                }
                "i16_i8" => {
                    let x = i16s(&c.ints("x"));
                    let mut y = vec![0i8; x.len()];
                    int16::requantize(&int16::RequantizeParams::prepare(qi, qo), &x, &mut y);
                    (widen(&y), c.ints("y"))
                }
                "i8_f32" | "u8_f32" => {
                    let u = dt == "u8_f32";
                    let x = if u { u8s(&c.ints("x")) } else { i8s(&c.ints("x")) };
                    let mut y = vec![0f32; x.len()];
                    int8::dequantize(&int8::DequantizeParams::prepare(if u { shifted(qi) } else { qi }), &x, &mut y);
                    (bits(&y), bits(&c.floats("y")))
                }
                "i16_f32" => {
                    let x = i16s(&c.ints("x"));
                    let mut y = vec![0f32; x.len()];
                    int16::dequantize(&int16::DequantizeParams::prepare(qi), &x, &mut y);
                    (bits(&y), bits(&c.floats("y")))
                }
                _ => unreachable!("{dt}"),
            }
        }
        op => unreachable!("{op}"),
    }
}

#[test]
fn oracle_matches_tflite_reference_kernels() {
    let text = std::fs::read_to_string(CASES).unwrap_or_else(|e| {
        panic!("{CASES}: {e}; it is committed (regenerate with golden/kernel_oracle.py, see golden/README.md)")
    });
    let cases = parse(&text);
    // key -> (cases, mismatched, max |got - want| in LSB or ulp, elements)
    let mut stats: BTreeMap<String, (usize, usize, i64, usize)> = BTreeMap::new();
    let mut first_failures = Vec::new();
    for c in &cases {
        let (got, want) = run(c);
        let key = c.key();
        let tolerance = if c.op == "softmax" && c.dtype == "f32" { SOFTMAX_F32_MAX_ULP } else { 0 };
        let e = stats.entry(key.clone()).or_default();
        e.0 += 1;
        e.3 += want.len();
        assert_eq!(got.len(), want.len(), "{key}: output length");
        assert!(!want.is_empty(), "{key}: empty output");
        let max_diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).max().unwrap();
        e.2 = e.2.max(max_diff);
        if max_diff > tolerance {
            e.1 += 1;
            if first_failures.len() < 10 {
                let i = got.iter().zip(&want).position(|(a, b)| (a - b).abs() > tolerance).unwrap();
                first_failures.push(format!("{key} (case {}): element {i}: got {} want {}", e.0, got[i], want[i]));
            }
        }
    }
    // Written straight to stderr (not eprintln!, which the test harness captures) so every run shows
    // what was checked.
    let mut report = format!("{CASES}:\n");
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        report += &format!("  {line}\n");
    }
    for (k, (n, bad, d, elems)) in &stats {
        report += &format!("  {k:>24}: {n:4} cases, {elems:6} outputs, {bad:3} mismatched, max diff {d}\n");
    }
    report += &format!("  {} cases in all\n", cases.len());
    std::io::stderr().write_all(report.as_bytes()).unwrap();

    let expected = expected_keys();
    let thin: Vec<String> = expected.iter().filter(|k| stats.get(*k).map_or(0, |s| s.0) < MIN_CASES).cloned().collect();
    assert!(thin.is_empty(), "fewer than {MIN_CASES} cases for: {thin:?}");
    let unexpected: Vec<&String> = stats.keys().filter(|k| !expected.contains(k)).collect();
    assert!(unexpected.is_empty(), "cases not in the coverage list: {unexpected:?}");
    assert!(first_failures.is_empty(), "mismatches:\n{}", first_failures.join("\n"));
}
