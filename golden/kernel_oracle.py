"""Differential-test oracle for the kernels (golden/kernel_cases.txt, checked by
component/src/kernels/oracle_tests.rs).

Builds random single-op TFLite models -- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D,
MEAN, ADD, SOFTMAX in fp32, int8, uint8 and int16 (int8/int16 conv and fc both per-tensor and
per-channel, int16 ADD both pot_scale_int16 and general), QUANTIZE f32->int8/uint8/int16 and
int8/uint8/int16 requantize, DEQUANTIZE int8/uint8/int16->f32 -- runs them with ai-edge-litert's
BUILTIN_REF (reference) kernels and writes inputs, parameters and reference outputs as text.

    golden/.venv/bin/python golden/kernel_oracle.py [OUT]     # OUT defaults to golden/kernel_cases.txt

Deterministic: one numpy Generator per seed in SEEDS, ROUNDS_PER_SEED rounds each (a round is one case
of every op x dtype x variant, minus the random geometries with an empty output, which are drawn and
dropped). The pinned versions (golden/requirements.txt) reproduce the file byte for byte.

Format: header lines starting with `#`; then per case `case OP DTYPE`, `key value` / `key v1 v2 ...`
(lists) / `key N v1 ... vN` (arrays; float32 as hex bit patterns), then `end`.
"""
import os, platform, struct, sys
from importlib.metadata import version
import numpy as np
import flatbuffers
from ai_edge_litert import schema_py_generated as s
from ai_edge_litert.interpreter import Interpreter, OpResolverType

T = s.TensorType
NP = {T.FLOAT32: np.float32, T.INT8: np.int8, T.UINT8: np.uint8, T.INT16: np.int16, T.INT32: np.int32, T.INT64: np.int64}
TN = {T.FLOAT32: 'f32', T.INT8: 'i8', T.UINT8: 'u8', T.INT16: 'i16', T.INT32: 'i32', T.INT64: 'i64'}


def f32bits(x):
    return struct.unpack('<I', struct.pack('<f', float(x)))[0]


class M:
    def __init__(self):
        self.tensors, self.buffers, self.inputs = [], [s.BufferT()], []

    def tensor(self, shape, ttype, scales=None, zps=None, qdim=0, data=None, name='t'):
        t = s.TensorT()
        t.shape = list(shape)
        t.type = ttype
        t.name = name
        if scales is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(np.float32(x)) for x in scales]
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = qdim
            t.quantization = q
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.asarray(data, dtype=NP[ttype]).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def build(self, opcode, ins, out, opt_type, opt, version):
        model = s.ModelT()
        model.version = 3
        oc = s.OperatorCodeT()
        oc.builtinCode = opcode
        oc.deprecatedBuiltinCode = min(opcode, 127)
        oc.version = version
        model.operatorCodes = [oc]
        op = s.OperatorT()
        op.opcodeIndex = 0
        op.inputs = ins
        op.outputs = [out]
        if opt is not None:
            op.builtinOptionsType = opt_type
            op.builtinOptions = opt
        sg = s.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = self.inputs
        sg.outputs = [out]
        sg.operators = [op]
        model.subgraphs = [sg]
        model.buffers = self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b'TFL3')
        return bytes(b.Output())


def run(m, opcode, ins, out, opt_type, opt, feeds):
    last = None
    for version in range(1, 14):
        data = m.build(opcode, ins, out, opt_type, opt, version)
        try:
            it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF, num_threads=1)
            it.allocate_tensors()
        except Exception as e:  # wrong version
            last = e
            continue
        for idx, arr in feeds:
            it.set_tensor(idx, arr)
        it.invoke()
        return it.get_tensor(out)
    raise RuntimeError(f'no version works: {last}')


def rand_data(ttype, shape, rng):
    n = int(np.prod(shape))
    if ttype == T.FLOAT32:
        return rng.uniform(-3, 3, size=shape).astype(np.float32)
    info = np.iinfo(NP[ttype])
    return rng.integers(info.min, info.max + 1, size=shape, dtype=np.int64).astype(NP[ttype])


def scale(rng, lo=-10, hi=1):
    return float(np.float32(2.0 ** rng.uniform(lo, hi)))


def zp_for(ttype, rng):
    if ttype == T.INT8:
        return int(rng.integers(-128, 128))
    if ttype == T.UINT8:
        return int(rng.integers(0, 256))
    return 0


class Out:
    def __init__(self, f):
        self.f = f

    def case(self, op, dtype, **kv):
        self.f.write(f'case {op} {dtype}\n')
        for k, v in kv.items():
            if isinstance(v, np.ndarray):
                v = v.flatten()
                if v.dtype == np.float32:
                    vals = ' '.join(f'{f32bits(x):08x}' for x in v)
                else:
                    vals = ' '.join(str(int(x)) for x in v)
                self.f.write(f'{k} {len(v)} {vals}\n')
            elif isinstance(v, (list, tuple)):
                self.f.write(f'{k} ' + ' '.join(str(x) for x in v) + '\n')
            elif isinstance(v, float):
                self.f.write(f'{k} {f32bits(v):08x}\n')
            else:
                self.f.write(f'{k} {int(v)}\n')
        self.f.write('end\n')


def pad_for(padding, in_size, k, stride, dil):
    eff = (k - 1) * dil + 1
    if padding == 0:  # SAME
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - eff + stride) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


ACT = {0: 0, 1: 1, 3: 2}  # TFLite fused activation -> our index (None, Relu, Relu6)


def conv_case(o, rng, dt, depthwise, per_channel):
    wdt = T.INT8 if dt in (T.INT8, T.INT16) else dt
    b, h, w, c = int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 6))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (1, 1) if rng.random() < 0.5 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = int(rng.integers(0, 2))
    oh, pt = pad_for(padding, h, kh, sh, dh)
    ow, pl = pad_for(padding, w, kw, sw, dw)
    if oh <= 0 or ow <= 0:
        return
    mult = int(rng.integers(1, 4)) if depthwise else 1
    oc = c * mult if depthwise else int(rng.integers(1, 6))
    act = [0, 1, 3][int(rng.integers(0, 3))]
    m = M()
    quant = dt != T.FLOAT32
    in_s, in_zp = scale(rng, -8, 0), zp_for(dt, rng)
    out_s, out_zp = scale(rng, -8, 2), zp_for(dt, rng)
    nscale = oc if per_channel else 1
    w_scales = [scale(rng, -10, -3) for _ in range(nscale)]
    w_zp = zp_for(wdt, rng) if dt == T.UINT8 else 0
    xin = rand_data(dt, (b, h, w, c), rng)
    fshape = (1, kh, kw, oc) if depthwise else (oc, kh, kw, c)
    filt = rand_data(wdt, fshape, rng)
    if dt == T.FLOAT32:
        bias = rng.uniform(-1, 1, size=oc).astype(np.float32)
        bdt = T.FLOAT32
    elif dt == T.INT16:
        bias = rng.integers(-2**20, 2**20, size=oc).astype(np.int64)
        bdt = T.INT64
    else:
        bias = rng.integers(-20000, 20000, size=oc).astype(np.int32)
        bdt = T.INT32
    ti = m.tensor((b, h, w, c), dt, [in_s] if quant else None, [in_zp] if quant else None, name='in')
    tw = m.tensor(fshape, wdt, w_scales if quant else None, [w_zp] * nscale if quant else None,
                  qdim=3 if depthwise else 0, data=filt, name='w')
    bscales = [np.float32(in_s) * np.float32(x) for x in w_scales]
    tb = m.tensor((oc,), bdt, bscales if quant else None, [0] * nscale if quant else None, qdim=0, data=bias, name='b')
    to = m.tensor((b, oh, ow, oc), dt, [out_s] if quant else None, [out_zp] if quant else None, name='out')
    m.inputs = [ti]
    if depthwise:
        opt = s.DepthwiseConv2DOptionsT()
        opt.depthMultiplier = mult
        ot, code = s.BuiltinOptions.DepthwiseConv2DOptions, s.BuiltinOperator.DEPTHWISE_CONV_2D
    else:
        opt = s.Conv2DOptionsT()
        ot, code = s.BuiltinOptions.Conv2DOptions, s.BuiltinOperator.CONV_2D
    opt.padding, opt.strideH, opt.strideW = padding, sh, sw
    opt.dilationHFactor, opt.dilationWFactor = dh, dw
    opt.fusedActivationFunction = act
    y = run(m, code, [ti, tw, tb], to, ot, opt, [(0, xin)])
    o.case('dwconv' if depthwise else 'conv', TN[dt], geom=[b, h, w, c, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl, mult],
           pc=int(per_channel), in_s=in_s, in_zp=in_zp, out_s=out_s, out_zp=out_zp, w_zp=w_zp, act=ACT[act],
           w_scales=np.array(w_scales, dtype=np.float32), x=xin, w=filt, bias=bias, y=y)


def fc_case(o, rng, dt, per_channel):
    wdt = T.INT8 if dt in (T.INT8, T.INT16) else dt
    b, ind, outd = int(rng.integers(1, 4)), int(rng.integers(1, 64)), int(rng.integers(1, 8))
    act = [0, 1, 3][int(rng.integers(0, 3))]
    quant = dt != T.FLOAT32
    m = M()
    in_s, in_zp = scale(rng, -8, 0), zp_for(dt, rng)
    out_s, out_zp = scale(rng, -6, 3), zp_for(dt, rng)
    nscale = outd if per_channel else 1
    w_scales = [scale(rng, -10, -3) for _ in range(nscale)]
    w_zp = zp_for(wdt, rng) if dt == T.UINT8 else 0
    xin = rand_data(dt, (b, ind), rng)
    filt = rand_data(wdt, (outd, ind), rng)
    if dt == T.FLOAT32:
        bias, bdt = rng.uniform(-1, 1, size=outd).astype(np.float32), T.FLOAT32
    elif dt == T.INT16:
        bias, bdt = rng.integers(-2**20, 2**20, size=outd).astype(np.int64), T.INT64
    else:
        bias, bdt = rng.integers(-20000, 20000, size=outd).astype(np.int32), T.INT32
    ti = m.tensor((b, ind), dt, [in_s] if quant else None, [in_zp] if quant else None)
    tw = m.tensor((outd, ind), wdt, w_scales if quant else None, [w_zp] * nscale if quant else None, data=filt)
    bscales = [np.float32(in_s) * np.float32(x) for x in w_scales]
    tb = m.tensor((outd,), bdt, bscales if quant else None, [0] * nscale if quant else None, data=bias)
    to = m.tensor((b, outd), dt, [out_s] if quant else None, [out_zp] if quant else None)
    m.inputs = [ti]
    opt = s.FullyConnectedOptionsT()
    opt.fusedActivationFunction = act
    if dt == T.INT16:
        opt.quantizedBiasType = T.INT64
    y = run(m, s.BuiltinOperator.FULLY_CONNECTED, [ti, tw, tb], to, s.BuiltinOptions.FullyConnectedOptions, opt, [(0, xin)])
    o.case('fc', TN[dt], geom=[b, ind, outd], pc=int(per_channel), in_s=in_s, in_zp=in_zp, out_s=out_s, out_zp=out_zp, w_zp=w_zp,
           act=ACT[act], w_scales=np.array(w_scales, dtype=np.float32), x=xin, w=filt, bias=bias, y=y)


def pool_case(o, rng, dt):
    b, h, w, c = int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 5))
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    padding = int(rng.integers(0, 2))
    oh, pt = pad_for(padding, h, fh, sh, 1)
    ow, pl = pad_for(padding, w, fw, sw, 1)
    if oh <= 0 or ow <= 0:
        return
    act = [0, 1, 3][int(rng.integers(0, 3))]
    quant = dt != T.FLOAT32
    sc, zp = scale(rng, -8, 0), zp_for(dt, rng)
    m = M()
    xin = rand_data(dt, (b, h, w, c), rng)
    ti = m.tensor((b, h, w, c), dt, [sc] if quant else None, [zp] if quant else None)
    to = m.tensor((b, oh, ow, c), dt, [sc] if quant else None, [zp] if quant else None)
    m.inputs = [ti]
    opt = s.Pool2DOptionsT()
    opt.padding, opt.strideH, opt.strideW, opt.filterHeight, opt.filterWidth = padding, sh, sw, fh, fw
    opt.fusedActivationFunction = act
    y = run(m, s.BuiltinOperator.AVERAGE_POOL_2D, [ti], to, s.BuiltinOptions.Pool2DOptions, opt, [(0, xin)])
    o.case('avgpool', TN[dt], geom=[b, h, w, c, oh, ow, fh, fw, sh, sw, pt, pl], s=sc, zp=zp, act=ACT[act], x=xin, y=y)


def mean_case(o, rng, dt):
    b, h, w, c = int(rng.integers(1, 3)), int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 6))
    keep = bool(rng.integers(0, 2))
    quant = dt != T.FLOAT32
    same = rng.random() < 0.3
    in_s, in_zp = scale(rng, -8, 0), zp_for(dt, rng)
    out_s, out_zp = (in_s, in_zp) if same else (scale(rng, -8, 0), zp_for(dt, rng))
    m = M()
    xin = rand_data(dt, (b, h, w, c), rng)
    ti = m.tensor((b, h, w, c), dt, [in_s] if quant else None, [in_zp] if quant else None)
    ta = m.tensor((2,), T.INT32, data=np.array([1, 2], dtype=np.int32))
    oshape = (b, 1, 1, c) if keep else (b, c)
    to = m.tensor(oshape, dt, [out_s] if quant else None, [out_zp] if quant else None)
    m.inputs = [ti]
    opt = s.ReducerOptionsT()
    opt.keepDims = keep
    y = run(m, s.BuiltinOperator.MEAN, [ti, ta], to, s.BuiltinOptions.ReducerOptions, opt, [(0, xin)])
    o.case('mean', TN[dt], geom=[b, h, w, c], in_s=in_s, in_zp=in_zp, out_s=out_s, out_zp=out_zp, x=xin, y=y)


def add_case(o, rng, dt, pot):
    n = int(rng.integers(1, 50))
    act = [0, 1, 3][int(rng.integers(0, 3))]
    quant = dt != T.FLOAT32
    if pot:
        lo = int(rng.integers(-14, -8))
        s1 = 2.0 ** lo
        s2 = 2.0 ** (lo + int(rng.integers(-3, 1)))
        if rng.random() < 0.5:
            s1, s2 = s2, s1
        so = max(s1, s2)
        z1 = z2 = zo = 0
    else:
        s1, s2, so = scale(rng, -8, 0), scale(rng, -8, 0), scale(rng, -8, 1)
        z1, z2, zo = zp_for(dt, rng), zp_for(dt, rng), zp_for(dt, rng)
    m = M()
    a, bb = rand_data(dt, (1, n), rng), rand_data(dt, (1, n), rng)
    t1 = m.tensor((1, n), dt, [s1] if quant else None, [z1] if quant else None)
    t2 = m.tensor((1, n), dt, [s2] if quant else None, [z2] if quant else None)
    to = m.tensor((1, n), dt, [so] if quant else None, [zo] if quant else None)
    m.inputs = [t1, t2]
    opt = s.AddOptionsT()
    opt.fusedActivationFunction = act
    opt.potScaleInt16 = bool(pot)
    y = run(m, s.BuiltinOperator.ADD, [t1, t2], to, s.BuiltinOptions.AddOptions, opt, [(0, a), (1, bb)])
    o.case('add', TN[dt], s1=float(np.float32(s1)), z1=z1, s2=float(np.float32(s2)), z2=z2, so=float(np.float32(so)),
           zo=zo, act=ACT[act], pot=int(pot), a=a, b=bb, y=y)


def softmax_case(o, rng, dt):
    rows, depth = int(rng.integers(1, 4)), int(rng.integers(1, 60))
    quant = dt != T.FLOAT32
    in_s, in_zp = scale(rng, -7, -1), zp_for(dt, rng)
    if dt == T.INT16:
        in_s = scale(rng, -13, -7)
    beta = float(np.float32(rng.choice([1.0, 0.5, rng.uniform(0.3, 2.0)])))
    out = {T.INT8: (1 / 256, -128), T.UINT8: (1 / 256, 0), T.INT16: (1 / 32768, 0), T.FLOAT32: (None, None)}[dt]
    m = M()
    xin = rand_data(dt, (rows, depth), rng)
    ti = m.tensor((rows, depth), dt, [in_s] if quant else None, [in_zp] if quant else None)
    to = m.tensor((rows, depth), dt, [out[0]] if quant else None, [out[1]] if quant else None)
    m.inputs = [ti]
    opt = s.SoftmaxOptionsT()
    opt.beta = beta
    y = run(m, s.BuiltinOperator.SOFTMAX, [ti], to, s.BuiltinOptions.SoftmaxOptions, opt, [(0, xin)])
    o.case('softmax', TN[dt], depth=depth, in_s=in_s, in_zp=in_zp, beta=beta, x=xin, y=y)


def quantize_case(o, rng, idt, odt):
    n = int(rng.integers(1, 64))
    in_s, in_zp = scale(rng, -8, 0), zp_for(idt, rng)
    out_s, out_zp = scale(rng, -8, 0), zp_for(odt, rng)
    m = M()
    if idt == T.FLOAT32:
        xin = (rng.uniform(-1, 1, size=(1, n)) * out_s * 300).astype(np.float32)
        ti = m.tensor((1, n), idt)
    else:
        xin = rand_data(idt, (1, n), rng)
        ti = m.tensor((1, n), idt, [in_s], [in_zp])
    to = m.tensor((1, n), odt, [out_s], [out_zp]) if odt != T.FLOAT32 else m.tensor((1, n), odt)
    m.inputs = [ti]
    code = s.BuiltinOperator.DEQUANTIZE if odt == T.FLOAT32 else s.BuiltinOperator.QUANTIZE
    y = run(m, code, [ti], to, 0, None, [(0, xin)])
    o.case('quantize', TN[idt] + '_' + TN[odt], in_s=in_s, in_zp=in_zp, out_s=out_s, out_zp=out_zp, x=xin, y=y)


SEEDS = (1, 2, 3, 4)
ROUNDS_PER_SEED = 8


def round_(o, rng):
    for dt in (T.FLOAT32, T.INT8, T.UINT8, T.INT16):
        for dw in (False, True):
            for pc in ((False,) if dt in (T.FLOAT32, T.UINT8) else (False, True)):
                conv_case(o, rng, dt, dw, pc)
        for pc in ((False,) if dt in (T.FLOAT32, T.UINT8) else (False, True)):
            fc_case(o, rng, dt, pc)
        pool_case(o, rng, dt)
        mean_case(o, rng, dt)
        add_case(o, rng, dt, False)
        softmax_case(o, rng, dt)
    add_case(o, rng, T.INT16, True)
    for idt, odt in ((T.FLOAT32, T.INT8), (T.FLOAT32, T.UINT8), (T.FLOAT32, T.INT16), (T.INT8, T.INT8),
                     (T.UINT8, T.INT8), (T.INT8, T.UINT8), (T.INT16, T.INT16), (T.INT16, T.INT8),
                     (T.INT8, T.FLOAT32), (T.UINT8, T.FLOAT32), (T.INT16, T.FLOAT32)):
        quantize_case(o, rng, idt, odt)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, 'kernel_cases.txt')
    with open(out, 'w', newline='\n') as f:
        f.write('# Kernel differential-test cases: TFLite reference kernels (BUILTIN_REF, num_threads=1) on\n'
                '# random single-op models. Generated by golden/kernel_oracle.py -- never edit by hand.\n'
                f'# ai-edge-litert {version("ai-edge-litert")}, numpy {np.__version__}, '
                f'flatbuffers {version("flatbuffers")}, python {platform.python_version()}\n'
                f'# seeds {" ".join(str(x) for x in SEEDS)}, rounds per seed {ROUNDS_PER_SEED}\n')
        o = Out(f)
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            for _ in range(ROUNDS_PER_SEED):
                round_(o, rng)


main()
