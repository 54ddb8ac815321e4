#!/usr/bin/env python3
"""Convert four TFLite models of the mediapipe 0.10.21 wheel (Apache-2.0) into plain ONNX graphs.

    python models/mediapipe-face/convert.py [--modules DIR] [--out DIR]

Models (paths relative to ``<mediapipe package>/modules/``, the default ``--modules``):

    face_detection/face_detection_short_range.tflite        -> face_detection_short_range.onnx
    face_detection/face_detection_full_range_sparse.tflite  -> face_detection_full_range_sparse.onnx
    face_landmark/face_landmark_with_attention.tflite       -> face_landmark_with_attention.onnx
    selfie_segmentation/selfie_segmentation.tflite          -> selfie_segmentation.onnx

The ONNX files (opset 17) run on onnxruntime alone.  Their inputs and outputs have the TFLite names, NHWC
shapes and value ranges; inside, the graph works in NCHW.  fp16 weights stay fp16 (initializer + Cast).
mediapipe's custom ops (Landmarks2TransformMatrix, TransformTensorBilinear, TransformLandmarks, all version 2,
and Convolution2DTransposeBias) are rewritten with standard ONNX ops, following mediapipe's C++ kernels
(mediapipe/util/tflite/operations/*.cc).

Output is byte-for-byte deterministic: same .tflite files -> same .onnx bytes.

Needs, at conversion time only: numpy, onnx, and the TFLite flatbuffer schema package ``tflite`` with
``flatbuffers`` (``pip install tflite==2.18.0 --no-deps`` plus ``pip install flatbuffers``).  mediapipe is only
needed to find the default ``--modules`` folder.
"""

import argparse
import hashlib
import os
import sys
import tempfile

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper
except ImportError:
    sys.exit("error: convert.py needs the 'onnx' package")
try:
    import tflite
    from flatbuffers import flexbuffers
except ImportError:
    sys.exit("error: convert.py needs the TFLite schema package: pip install tflite==2.18.0 --no-deps "
             "(and 'flatbuffers' if missing)")

MODELS = [
    "face_detection/face_detection_short_range.tflite",
    "face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark/face_landmark_with_attention.tflite",
    "selfie_segmentation/selfie_segmentation.tflite",
]
OPSET = 17
IR_VERSION = 8  # the IR version of opset 17; fixed so the bytes do not depend on the onnx version
PRODUCER = ("mgpe convert.py", "1")

NHWC, NCHW = "nhwc", "nchw"
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)

OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
NP_TYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
            tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64,
            tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8}
ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
              np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
              np.dtype(np.bool_): TensorProto.BOOL}


class ConversionError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Reading the .tflite flatbuffer


class TfliteOp:
    def __init__(self, index, name, inputs, outputs, options, custom_code="", custom_options=b"", version=1):
        self.index, self.name, self.inputs, self.outputs, self.options = index, name, inputs, outputs, options
        self.custom_code, self.custom_options, self.version = custom_code, custom_options, version


class TfliteModel:
    """Tensors (name, shape, dtype, constant data, sparsity) and operators of subgraph 0."""

    def __init__(self, path):
        self.buf = open(path, "rb").read()
        self.model = tflite.Model.GetRootAsModel(self.buf, 0)
        g = self.model.Subgraphs(0)
        self.names, self.shapes, self.dtypes, self.data, self.sparsity = [], [], [], {}, {}
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            self.names.append(t.Name().decode())
            self.shapes.append(tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ())
            if t.Type() not in NP_TYPES:
                raise ConversionError(f"tensor {self.names[-1]!r} has unsupported type {t.Type()}")
            self.dtypes.append(np.dtype(NP_TYPES[t.Type()]))
            raw = self._buffer(t.Buffer())
            if raw is not None:
                arr = np.frombuffer(raw, self.dtypes[-1]).copy()
                if t.Sparsity() is None:
                    arr = arr.reshape(self.shapes[-1])
                else:
                    self.sparsity[i] = t.Sparsity()
                self.data[i] = arr
        self.inputs = [int(i) for i in g.InputsAsNumpy()]
        self.outputs = [int(i) for i in g.OutputsAsNumpy()]
        self.ops = [self._op(g.Operators(i), i) for i in range(g.OperatorsLength())]

    def _buffer(self, index):
        b = self.model.Buffers(index)
        if b.Offset() > 1:  # data stored after the flatbuffer
            return self.buf[b.Offset():b.Offset() + b.Size()]
        return b.DataAsNumpy().tobytes() if b.DataLength() else None

    def _op(self, op, index):
        code = self.model.OperatorCodes(op.OpcodeIndex())
        name = OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        inputs = [int(i) for i in op.InputsAsNumpy()]
        outputs = [int(i) for i in op.OutputsAsNumpy()]
        if name == "CUSTOM":
            custom = bytes(op.CustomOptionsAsNumpy()) if op.CustomOptionsLength() else b""
            return TfliteOp(index, name, inputs, outputs, None, code.CustomCode().decode(), custom, code.Version())
        options = None
        table = op.BuiltinOptions()
        if table is not None:
            opt_names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
            options = getattr(tflite, opt_names[op.BuiltinOptionsType()])()
            options.Init(table.Bytes, table.Pos)
        return TfliteOp(index, name, inputs, outputs, options, version=code.Version())


def densify(values, shape, sparsity):
    """Dense array from TFLite's sparse format (traversal order, optional blocks, DENSE/CSR dimensions)."""
    order = [int(d) for d in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(d) for d in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    n = len(shape)
    vec_types = {tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
                 tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
                 tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector}

    def index_vector(kind, table):
        vec = vec_types[kind]()
        vec.Init(table.Bytes, table.Pos)
        return vec.ValuesAsNumpy().astype(np.int64)

    pos = np.zeros(1, np.int64)  # position of each element at the current level
    coords = np.zeros((1, len(order)), np.int64)  # its coordinate in every (expanded) dimension
    for level, dim in enumerate(order):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == tflite.DimensionType.DENSE:
            size = meta.DenseSize()
            pos = (pos[:, None] * size + np.arange(size)).ravel()
            coords = np.repeat(coords, size, axis=0)
            coords[:, dim] = np.tile(np.arange(size), len(coords) // size)
        else:
            segments = index_vector(meta.ArraySegmentsType(), meta.ArraySegments())
            indices = index_vector(meta.ArrayIndicesType(), meta.ArrayIndices())
            counts = segments[pos + 1] - segments[pos]
            pos = np.concatenate([np.arange(a, b) for a, b in zip(segments[pos], segments[pos + 1])] or [pos[:0]])
            coords = np.repeat(coords, counts, axis=0)
            coords[:, dim] = indices[pos]
    dense_coords = coords[:, :n].copy()
    for j, dim in enumerate(block_map):  # blocked dimension: outer index * block size + inner index
        block_size = sparsity.DimMetadata(order.index(n + j)).DenseSize()
        dense_coords[:, dim] = dense_coords[:, dim] * block_size + coords[:, n + j]
    out = np.zeros(shape, values.dtype)
    out[tuple(dense_coords.T)] = values[pos]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Building the ONNX graph


class Converter:
    def __init__(self, model: TfliteModel, stem):
        self.m, self.stem = model, stem
        self.nodes, self.inits = [], []
        self.used = set()
        self.const_cache = {}
        self.consts = dict(model.data)  # constant TFLite tensors (fp16 arrays stand for dequantized floats)
        self.vals = {}  # tensor -> {layout: onnx name}, the first entry is the layout it was produced in
        self.tnames = self._tensor_names()

    def _tensor_names(self):
        """Short stable names: TFLite's fused names cut at ';', made unique; graph I/O names kept exactly."""
        io = set(self.m.inputs) | set(self.m.outputs)
        for t in io:
            self.used.add(self.m.names[t])
        names = {}
        for t, full in enumerate(self.m.names):
            names[t] = full if t in io else self.uniq(full.split(";")[0] or f"t{t}")
        return names

    def uniq(self, base):
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    # -- nodes and constants --

    def node(self, op_type, inputs, hint, outputs=None, **attrs):
        """Append a node; returns its output name (outputs given: those exact names)."""
        outputs = outputs or [self.uniq(hint)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attrs))
        return outputs[0]

    def const(self, arr, hint):
        """Initializer for arr (cached by content); fp16 data is stored as fp16 and Cast to float."""
        arr = np.ascontiguousarray(arr)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self.const_cache:
            name = self.uniq(hint)
            self.inits.append(helper.make_tensor(name, ONNX_TYPES[arr.dtype], arr.shape, arr.tobytes(), raw=True))
            if arr.dtype == np.float16:
                name = self.node("Cast", [name], name + "__f32", to=TensorProto.FLOAT)
            self.const_cache[key] = name
        return self.const_cache[key]

    def ints(self, values, hint):
        return self.const(np.asarray(values, np.int64), hint)

    def floats(self, values, hint):
        return self.const(np.asarray(values, np.float32), hint)

    # -- TFLite tensors --

    def shape(self, t):
        return self.m.shapes[t]

    def array(self, t, what="weights"):
        if t not in self.consts:
            raise ConversionError(f"{what} tensor {self.m.names[t]!r} is not constant")
        return self.consts[t]

    def rename(self, old, new):
        for n in self.nodes:
            n.input[:] = [new if i == old else i for i in n.input]
            n.output[:] = [new if o == old else o for o in n.output]
            if n.name == old:
                n.name = new

    def layout(self, t):
        return next(iter(self.vals[t])) if t in self.vals else NHWC

    def set(self, t, name, layout=NHWC):
        self.vals[t] = {layout if len(self.shape(t)) == 4 else NHWC: name}

    def get(self, t, layout=None):
        """ONNX name of tensor t; 4-D tensors in the layout asked for (None: as held)."""
        if len(self.shape(t)) != 4:
            layout = NHWC
        if t in self.consts:
            arr = self.consts[t]
            return self.const(arr.transpose(TO_NCHW) if layout == NCHW else arr, self.tnames[t])
        held = self.vals[t]
        if layout is None or layout in held:
            return held[layout or self.layout(t)]
        src_layout, src = next(iter(held.items()))
        perm = TO_NCHW if layout == NCHW else TO_NHWC
        src_shape = self.shape(t) if src_layout == NHWC else tuple(np.take(self.shape(t), TO_NCHW))
        dst_shape = [src_shape[p] for p in perm]
        hint = f"{self.tnames[t]}__{layout}"
        if [d for d in src_shape if d != 1] == [d for d in dst_shape if d != 1]:  # same memory order
            held[layout] = self.node("Reshape", [src, self.ints(dst_shape, "shape_" + "x".join(map(str, dst_shape)))],
                                     hint)
        else:
            held[layout] = self.node("Transpose", [src], hint, perm=list(perm))
        return held[layout]

    def get_flat(self, t):
        """t in NHWC memory order (an NCHW value whose transpose moves no data is returned as is)."""
        held = self.vals.get(t, {})
        if NCHW in held and NHWC not in held:
            nchw = [d for d in np.take(self.shape(t), TO_NCHW) if d != 1]
            if nchw == [d for d in self.shape(t) if d != 1]:
                return held[NCHW]
        return self.get(t, NHWC)

    def operand(self, t, rank, layout):
        """Input of a broadcasting op whose output has `rank` dims in `layout`."""
        if t in self.consts:
            arr = self.consts[t]
            if layout == NCHW and arr.size > 1:
                arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(TO_NCHW)
            return self.const(arr, self.tnames[t])
        if layout == NCHW and len(self.shape(t)) != 4:
            raise ConversionError(f"cannot broadcast {self.m.names[t]!r} against an NCHW tensor")
        return self.get(t, layout)

    def emit(self, op_type, inputs, t_out, layout=NCHW, act=0, **attrs):
        """Node producing TFLite tensor t_out, followed by a fused activation."""
        out = self.tnames[t_out]
        if act == tflite.ActivationFunctionType.NONE:
            self.node(op_type, inputs, None, outputs=[out], **attrs)
        else:
            pre = self.node(op_type, inputs, out + "__preact", **attrs)
            activation(self, act, pre, out)
        self.set(t_out, out, layout)


# ---------------------------------------------------------------------------------------------------------------
# Converters, one per TFLite op family


def activation(cv, act, x, out):
    A = tflite.ActivationFunctionType
    if act == A.RELU:
        cv.node("Relu", [x], None, outputs=[out])
    elif act in (A.RELU6, A.RELU_N1_TO_1):
        lo, hi = (0.0, 6.0) if act == A.RELU6 else (-1.0, 1.0)
        cv.node("Clip", [x, cv.floats(lo, f"clip_{lo:g}"), cv.floats(hi, f"clip_{hi:g}")], None, outputs=[out])
    elif act == A.TANH:
        cv.node("Tanh", [x], None, outputs=[out])
    else:
        raise ConversionError(f"unsupported fused activation {act}")


def same_pads(in_hw, kernel, strides, dilations, padding):
    """ONNX pads [top, left, bottom, right]; TFLite SAME puts the odd pixel at the end."""
    if padding == tflite.Padding.VALID:
        return [0, 0, 0, 0]
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def conv_2d(cv, op):
    """CONV_2D and DEPTHWISE_CONV_2D: TFLite OHWI / 1HW(C*M) weights -> ONNX OIHW, group = C for depthwise."""
    o = op.options
    x, w_t = op.inputs[0], op.inputs[1]
    w = cv.array(w_t)
    c_in = cv.shape(x)[3]
    if op.name == "DEPTHWISE_CONV_2D":
        w, group = w.transpose(3, 0, 1, 2), c_in  # output channel c*M + m reads input channel c
    else:
        w, group = w.transpose(0, 3, 1, 2), 1
    kernel = list(w.shape[2:])
    strides, dil = [o.StrideH(), o.StrideW()], [o.DilationHFactor(), o.DilationWFactor()]
    inputs = [cv.get(x, NCHW), cv.const(w, cv.tnames[w_t])]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(cv.const(cv.array(op.inputs[2]), cv.tnames[op.inputs[2]]))
    cv.emit("Conv", inputs, op.outputs[0], NCHW, o.FusedActivationFunction(), kernel_shape=kernel, strides=strides,
            dilations=dil, group=group, pads=same_pads(cv.shape(x)[1:3], kernel, strides, dil, o.Padding()))


def pool_2d(cv, op):
    """MAX_POOL_2D, AVERAGE_POOL_2D (padding never counted in averages, as in TFLite)."""
    o = op.options
    x = op.inputs[0]
    kernel, strides = [o.FilterHeight(), o.FilterWidth()], [o.StrideH(), o.StrideW()]
    pads = same_pads(cv.shape(x)[1:3], kernel, strides, [1, 1], o.Padding())
    attrs = {"count_include_pad": 0} if op.name == "AVERAGE_POOL_2D" else {}
    onnx_op = "AveragePool" if op.name == "AVERAGE_POOL_2D" else "MaxPool"
    cv.emit(onnx_op, [cv.get(x, NCHW)], op.outputs[0], NCHW, o.FusedActivationFunction(), kernel_shape=kernel,
            strides=strides, pads=pads, **attrs)


def binary(cv, op):
    """ADD, MUL, SUB, DIV, MAXIMUM, MINIMUM (numpy broadcasting); in NCHW when a 4-D input is held so."""
    out = op.outputs[0]
    rank = len(cv.shape(out))
    runtime = [t for t in op.inputs if t not in cv.consts]
    layout = NHWC
    if rank == 4 and all(len(cv.shape(t)) == 4 for t in runtime) and any(cv.layout(t) == NCHW for t in runtime):
        layout = NCHW
    onnx_op = {"ADD": "Add", "MUL": "Mul", "SUB": "Sub", "DIV": "Div", "MAXIMUM": "Max", "MINIMUM": "Min"}[op.name]
    act = op.options.FusedActivationFunction() if op.options is not None and hasattr(
        op.options, "FusedActivationFunction") else 0
    cv.emit(onnx_op, [cv.operand(t, rank, layout) for t in op.inputs], out, layout, act)


def unary(cv, op):
    """Elementwise activations; the output keeps the input's layout."""
    x = op.inputs[0]
    layout = cv.layout(x)
    name = cv.get(x, layout)
    if op.name == "RELU6":
        return cv.emit("Clip", [name, cv.floats(0.0, "clip_0"), cv.floats(6.0, "clip_6")], op.outputs[0], layout)
    if op.name == "RELU_N1_TO_1":
        return cv.emit("Clip", [name, cv.floats(-1.0, "clip_-1"), cv.floats(1.0, "clip_1")], op.outputs[0], layout)
    # HardSwish(x) = x * clip(x/6 + 1/2, 0, 1) = x * relu6(x + 3) / 6
    onnx_op = {"RELU": "Relu", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "HARD_SWISH": "HardSwish"}[op.name]
    cv.emit(onnx_op, [name], op.outputs[0], layout)


def prelu(cv, op):
    """PRELU as Relu(x) + alpha * Min(x, 0), alpha (e.g. [1, 1, C]) broadcast in NCHW as [1, C, 1, 1]: the same
    values, and onnxruntime keeps these ops in its blocked layout (its PRelu cost a third of the mesh's time)."""
    x, alpha = op.inputs
    layout = NCHW if len(cv.shape(x)) == 4 else NHWC
    name, out = cv.get(x, layout), cv.tnames[op.outputs[0]]
    pos = cv.node("Relu", [name], out + "__pos")
    neg = cv.node("Min", [name, cv.floats(0.0, "zero")], out + "__neg")
    scaled = cv.node("Mul", [neg, cv.operand(alpha, len(cv.shape(x)), layout)], out + "__negscaled")
    cv.emit("Add", [pos, scaled], op.outputs[0], layout)


def pad(cv, op):
    """PAD / PADV2 with constant paddings, zero or a constant value."""
    x = op.inputs[0]
    p = cv.array(op.inputs[1], "paddings").astype(np.int64)
    layout = NCHW if len(cv.shape(x)) == 4 else NHWC
    if layout == NCHW:
        p = p[list(TO_NCHW)]
    inputs = [cv.get(x, layout), cv.ints(np.concatenate([p[:, 0], p[:, 1]]), cv.tnames[op.inputs[1]])]
    if op.name == "PADV2":
        inputs.append(cv.const(cv.array(op.inputs[2], "pad value").astype(np.float32).reshape(()), "pad_value"))
    cv.emit("Pad", inputs, op.outputs[0], layout)


def reshape(cv, op):
    """RESHAPE on NHWC memory order; the new shape is TFLite's static output shape."""
    shape = cv.shape(op.outputs[0])
    cv.emit("Reshape", [cv.get_flat(op.inputs[0]), cv.ints(shape, "shape_" + "x".join(map(str, shape)))],
            op.outputs[0], NHWC)


def concatenation(cv, op):
    """CONCATENATION; 4-D inputs are joined in NCHW on the matching axis."""
    out = op.outputs[0]
    rank = len(cv.shape(out))
    axis = op.options.Axis() % rank
    layout = NHWC
    if rank == 4 and any(t not in cv.consts and cv.layout(t) == NCHW for t in op.inputs):
        layout, axis = NCHW, TO_NCHW.index(axis)
    cv.emit("Concat", [cv.get(t, layout) for t in op.inputs], out, layout, op.options.FusedActivationFunction(),
            axis=axis)


def strided_slice(cv, op):
    """STRIDED_SLICE with begin/end masks, offset and shrink_axis; an identity slice becomes an alias."""
    o = op.options
    x = op.inputs[0]
    shape = cv.shape(x)
    begin, end, strides = (cv.array(t, "slice").astype(np.int64) for t in op.inputs[1:4])
    if o.EllipsisMask() or o.NewAxisMask():
        raise ConversionError("STRIDED_SLICE with ellipsis or new_axis mask is not supported")
    starts, ends, shrink = [], [], []
    for i, size in enumerate(shape):
        b, e = int(begin[i]), int(end[i])
        if o.Offset():
            e = b + e
        if o.BeginMask() >> i & 1:
            b = 0 if strides[i] > 0 else size - 1
        if o.EndMask() >> i & 1:
            e = size if strides[i] > 0 else -size - 1
        if o.ShrinkAxisMask() >> i & 1:
            e, shrink = b + 1, shrink + [i]
            if b == -1:
                e = size
        starts.append(b)
        ends.append(e)

    def clamp(v, size):
        return min(max(v + size if v < 0 else v, 0), size)

    if not shrink and all(strides == 1) and all(clamp(b, n) == 0 and clamp(e, n) == n
                                                 for b, e, n in zip(starts, ends, shape)):
        cv.vals[op.outputs[0]] = cv.vals[x]  # identity slice: an alias
        return
    layout, axes = NHWC, list(range(len(shape)))
    if len(shape) == 4 and not shrink and cv.layout(x) == NCHW:
        layout, axes = NCHW, [TO_NCHW.index(a) for a in axes]
    hint = cv.tnames[op.outputs[0]]
    inputs = [cv.get(x, layout), cv.ints(starts, hint + "__starts"), cv.ints(ends, hint + "__ends"),
              cv.ints(axes, hint + "__axes"), cv.ints(strides, hint + "__steps")]
    if shrink:
        sliced = cv.node("Slice", inputs, hint + "__slice")
        cv.emit("Squeeze", [sliced, cv.ints(shrink, hint + "__squeeze")], op.outputs[0], NHWC)
    else:
        cv.emit("Slice", inputs, op.outputs[0], layout)


def resize_bilinear(cv, op):
    """RESIZE_BILINEAR: align_corners -> 'align_corners', half_pixel_centers -> 'half_pixel', else 'asymmetric'."""
    o = op.options
    x = op.inputs[0]
    if o.AlignCorners() and o.HalfPixelCenters():
        raise ConversionError("RESIZE_BILINEAR with both align_corners and half_pixel_centers")
    mode = "align_corners" if o.AlignCorners() else "half_pixel" if o.HalfPixelCenters() else "asymmetric"
    n, h, w, c = cv.shape(op.outputs[0])
    sizes = cv.ints([n, c, h, w], f"sizes_{n}x{c}x{h}x{w}")
    cv.emit("Resize", [cv.get(x, NCHW), "", "", sizes], op.outputs[0], NCHW, mode="linear",
            coordinate_transformation_mode=mode)


def depth_to_space(cv, op):
    """DEPTH_TO_SPACE: TFLite's NHWC order (channel = (dy * bs + dx) * C + c) is ONNX's DCR mode in NCHW."""
    cv.emit("DepthToSpace", [cv.get(op.inputs[0], NCHW)], op.outputs[0], NCHW, blocksize=op.options.BlockSize(),
            mode="DCR")


def dequantize(cv, op):
    """DEQUANTIZE of constant fp16 data: kept fp16 (stored fp16, Cast to float where used)."""
    src, out = op.inputs[0], op.outputs[0]
    if src in cv.consts and cv.consts[src].dtype == np.float16:
        cv.consts[out] = cv.consts[src]
    elif src not in cv.consts and cv.m.dtypes[src] == np.float16:
        cv.emit("Cast", [cv.get(src)], out, cv.layout(src), to=TensorProto.FLOAT)
    else:
        raise ConversionError(f"DEQUANTIZE of {cv.m.dtypes[src]} data is not supported")


def densify_op(cv, op):
    """DENSIFY of a constant sparse tensor, done here in numpy."""
    src = op.inputs[0]
    if src not in cv.m.sparsity:
        raise ConversionError("DENSIFY input is not a constant sparse tensor")
    cv.consts[op.outputs[0]] = densify(cv.consts[src], cv.shape(op.outputs[0]), cv.m.sparsity[src])


def transpose_conv_bias(cv, op):
    """mediapipe Convolution2DTransposeBias: TFLite transpose conv plus bias; options are a raw
    TfLiteTransposeConvParams {padding (1 SAME, 2 VALID), stride_w, stride_h}.  SAME crops
    max(0, k - (in - 1) % s - 1) pixels, half (rounded down) at the start."""
    padding, stride_w, stride_h = (int(v) for v in np.frombuffer(op.custom_options[:12], np.int32))
    x, w_t, b_t = op.inputs
    w = cv.array(w_t)  # OHWI
    in_hw, kernel, strides = cv.shape(x)[1:3], list(w.shape[1:3]), [stride_h, stride_w]
    crop = [max(0, k - (n - 1) % s - 1) if padding == 1 else 0 for n, k, s in zip(in_hw, kernel, strides)]
    pads = [c // 2 for c in crop] + [c - c // 2 for c in crop]
    inputs = [cv.get(x, NCHW), cv.const(w.transpose(3, 0, 1, 2), cv.tnames[w_t]),
              cv.const(cv.array(b_t).reshape(-1), cv.tnames[b_t])]
    cv.emit("ConvTranspose", inputs, op.outputs[0], NCHW, kernel_shape=kernel, strides=strides, pads=pads)


def landmarks_to_transform_matrix(cv, op):
    """mediapipe Landmarks2TransformMatrix v2: [1, N, 3] landmarks -> [1, 4, 4] matrix.

    rotation r = target - atan2(dy, dx) of the right - left landmark; the subset is rotated by r, its
    bounding box (w, h, centre) taken and the centre rotated back.  Matrix:
    T(centre) * R(-r) * S(scale_x * w / out_w, scale_y * h / out_h) * T(-out_w / 2, -out_h / 2).
    ONNX has no Atan2: cos/sin of r come from the normalised (dx, dy) vector."""
    p = flexbuffers.Loads(op.custom_options)
    src = op.inputs[0]
    if len(cv.shape(src)) != 3 or cv.shape(src)[2] != 3:
        raise ConversionError("Landmarks2TransformMatrix expects [1, N, 3] landmarks")
    h = cv.tnames[op.outputs[0]]
    lm = cv.get(src)

    def node(op_type, inputs, suffix, **attrs):
        return cv.node(op_type, inputs, f"{h}__{suffix}", **attrs)

    def gather(indices, suffix):
        return node("Gather", [lm, cv.ints(indices, f"{h}__{suffix}_idx")], suffix, axis=1)

    def coord(x, axis, suffix):  # [..., axis:axis+1] of the last dimension
        return node("Slice", [x, cv.ints([axis], f"start_{axis}"), cv.ints([axis + 1], f"end_{axis + 1}"),
                              cv.ints([-1], "axis_-1")], suffix)

    zero, one, half = cv.floats(0.0, "f_0"), cv.floats(1.0, "f_1"), cv.floats(0.5, "f_0.5")
    d = node("Sub", [gather([p["right_rotation_idx"]], "right"), gather([p["left_rotation_idx"]], "left")], "d")
    dx, dy = coord(d, 0, "dx"), coord(d, 1, "dy")
    norm = node("Sqrt", [node("Add", [node("Mul", [dx, dx], "dx2"), node("Mul", [dy, dy], "dy2")], "norm2")], "norm")
    is_zero = node("Equal", [norm, zero], "norm_is_0")
    safe = node("Where", [is_zero, one, norm], "norm_safe")
    cos_a = node("Where", [is_zero, one, node("Div", [dx, safe], "cos_a_raw")], "cos_a")  # atan2(0, 0) = 0
    sin_a = node("Div", [dy, safe], "sin_a")
    t = float(p["target_rotation_radians"])
    if t == 0.0:  # r = -a
        cos_r, sin_r = cos_a, node("Neg", [sin_a], "sin_r")
    else:  # cos(t - a), sin(t - a)
        ct, st = cv.floats(np.cos(t), f"{h}__cos_t"), cv.floats(np.sin(t), f"{h}__sin_t")
        cos_r = node("Add", [node("Mul", [ct, cos_a], "ct_ca"), node("Mul", [st, sin_a], "st_sa")], "cos_r")
        sin_r = node("Sub", [node("Mul", [st, cos_a], "st_ca"), node("Mul", [ct, sin_a], "ct_sa")], "sin_r")

    subset = list(p["subset_idxs"])
    if len(subset) % 2:  # an odd last index pairs with itself; only the set of indices matters
        subset.append(subset[-1])
    pts = gather(subset, "subset")
    x, y = coord(pts, 0, "x"), coord(pts, 1, "y")
    xr = node("Sub", [node("Mul", [cos_r, x], "cos_x"), node("Mul", [sin_r, y], "sin_y")], "x_rot")
    yr = node("Add", [node("Mul", [sin_r, x], "sin_x"), node("Mul", [cos_r, y], "cos_y")], "y_rot")
    bbox = {}
    for v, nm in ((xr, "x"), (yr, "y")):
        lo = node("ReduceMin", [v], f"{nm}_min", axes=[1], keepdims=1)
        hi = node("ReduceMax", [v], f"{nm}_max", axes=[1], keepdims=1)
        bbox[nm] = (node("Sub", [hi, lo], f"{nm}_size"), node("Mul", [node("Add", [lo, hi], f"{nm}_sum"), half],
                                                                   f"{nm}_mid"))
    # centre rotated back by R(-r)
    cx = node("Add", [node("Mul", [cos_r, bbox["x"][1]], "c_mx"), node("Mul", [sin_r, bbox["y"][1]], "s_my")],
              "centre_x")
    cy = node("Sub", [node("Mul", [cos_r, bbox["y"][1]], "c_my"), node("Mul", [sin_r, bbox["x"][1]], "s_mx")],
              "centre_y")
    ow, oh = float(p["output_width"]), float(p["output_height"])
    sx = node("Mul", [bbox["x"][0], cv.floats(p["scale_x"] / ow, f"{h}__kx")], "scale_x")
    sy = node("Mul", [bbox["y"][0], cv.floats(p["scale_y"] / oh, f"{h}__ky")], "scale_y")
    m00, m01 = node("Mul", [cos_r, sx], "m00"), node("Mul", [sin_r, sy], "m01")
    m10, m11 = node("Neg", [node("Mul", [sin_r, sx], "s_sx")], "m10"), node("Mul", [cos_r, sy], "m11")
    hw, hh = cv.floats(ow / 2, f"{h}__half_w"), cv.floats(oh / 2, f"{h}__half_h")

    def shift(c, a, b, suffix):  # c - a * out_w / 2 - b * out_h / 2
        return node("Sub", [c, node("Add", [node("Mul", [a, hw], suffix + "_a"), node("Mul", [b, hh], suffix + "_b")],
                                        suffix + "_ab")], suffix)

    m03, m13 = shift(cx, m00, m01, "m03"), shift(cy, m10, m11, "m13")
    zero_111 = cv.floats(np.zeros((1, 1, 1)), "f_0_1x1x1")
    row0 = node("Concat", [m00, m01, zero_111, m03], "row0", axis=2)
    row1 = node("Concat", [m10, m11, zero_111, m13], "row1", axis=2)
    rows23 = cv.floats([[[0, 0, 1, 0], [0, 0, 0, 1]]], "matrix_rows_2_3")
    cv.emit("Concat", [row0, row1, rows23], op.outputs[0], NHWC, axis=1)


def transform_tensor_bilinear(cv, op):
    """mediapipe TransformTensorBilinear v2: out[y, x] samples the NHWC input at
    (M00 (x + .5) + M01 (y + .5) + M03 - .5, M10 (x + .5) + M11 (y + .5) + M13 - .5) bilinearly; samples
    outside [0, W-1] x [0, H-1] are 0.  ONNX: GridSample (align_corners=1, zeros) times that in-bounds mask."""
    p = flexbuffers.Loads(op.custom_options)
    data, mat = op.inputs
    _, in_h, in_w, _ = cv.shape(data)
    out_h, out_w = int(p["output_height"]), int(p["output_width"])
    if in_h < 2 or in_w < 2:
        raise ConversionError("TransformTensorBilinear needs an input of at least 2x2")
    h = cv.tnames[op.outputs[0]]
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    pix = np.stack([xs + 0.5, ys + 0.5, np.zeros_like(xs), np.ones_like(xs)], -1).reshape(1, -1, 4)
    rows = cv.node("Slice", [cv.get(mat), cv.ints([0], "start_0"), cv.ints([2], "end_2"), cv.ints([1], "axis_1")],
                   f"{h}__rows01")
    rows_t = cv.node("Transpose", [rows], f"{h}__rows01_t", perm=[0, 2, 1])
    tc = cv.node("MatMul", [cv.floats(pix, f"{h}__pixel_centres"), rows_t], f"{h}__tc_half")
    tc = cv.node("Sub", [tc, cv.floats(0.5, "f_0.5")], f"{h}__tc")  # [1, out_h * out_w, 2] (x, y)
    limit = cv.floats([in_w - 1, in_h - 1], f"{h}__limit")
    inside = cv.node("And", [cv.node("GreaterOrEqual", [tc, cv.floats(0.0, "f_0")], f"{h}__ge0"),
                             cv.node("LessOrEqual", [tc, limit], f"{h}__le_max")], f"{h}__inside_xy")
    inside = cv.node("ReduceMin", [cv.node("Cast", [inside], f"{h}__inside_f", to=TensorProto.FLOAT)],
                     f"{h}__inside", axes=[2], keepdims=0)
    mask = cv.node("Reshape", [inside, cv.ints([1, 1, out_h, out_w], f"shape_1x1x{out_h}x{out_w}")], f"{h}__mask")
    grid = cv.node("Sub", [cv.node("Mul", [tc, cv.floats([2 / (in_w - 1), 2 / (in_h - 1)], f"{h}__to_unit")],
                                   f"{h}__grid2"), cv.floats(1.0, "f_1")], f"{h}__grid_flat")
    grid = cv.node("Reshape", [grid, cv.ints([1, out_h, out_w, 2], f"shape_1x{out_h}x{out_w}x2")], f"{h}__grid")
    sampled = cv.node("GridSample", [cv.get(data, NCHW), grid], f"{h}__sampled", mode="bilinear",
                      padding_mode="zeros", align_corners=1)
    cv.emit("Mul", [sampled, mask], op.outputs[0], NCHW)


def transform_landmarks(cv, op):
    """mediapipe TransformLandmarks v2: [1, N, D] landmarks; (x, y) -> M[:2, :2] (x, y) + M[:2, 3], z kept."""
    lm, mat = op.inputs
    dims = cv.shape(op.outputs[0])[-1]
    if dims not in (2, 3):
        raise ConversionError("TransformLandmarks expects 2 or 3 values per landmark")
    h = cv.tnames[op.outputs[0]]
    m = cv.get(mat)
    lin = cv.node("Slice", [m, cv.ints([0, 0], "start_0_0"), cv.ints([2, 2], "end_2_2"), cv.ints([1, 2], "axes_1_2")],
                  f"{h}__linear")
    lin_t = cv.node("Transpose", [lin], f"{h}__linear_t", perm=[0, 2, 1])
    shift = cv.node("Slice", [m, cv.ints([0, 3], "start_0_3"), cv.ints([2, 4], "end_2_4"), cv.ints([1, 2], "axes_1_2")],
                    f"{h}__shift")
    shift = cv.node("Reshape", [shift, cv.ints([1, 1, 2], "shape_1x1x2")], f"{h}__shift_row")
    xy = cv.get(lm)
    if dims == 3:
        xy = cv.node("Slice", [xy, cv.ints([0], "start_0"), cv.ints([2], "end_2"), cv.ints([-1], "axis_-1")],
                     f"{h}__xy")
    if dims == 2:
        cv.emit("Add", [cv.node("MatMul", [xy, lin_t], f"{h}__xy_lin"), shift], op.outputs[0], NHWC)
    else:
        z = cv.node("Slice", [cv.get(lm), cv.ints([2], "start_2"), cv.ints([3], "end_3"), cv.ints([-1], "axis_-1")],
                    f"{h}__z")
        xy = cv.node("Add", [cv.node("MatMul", [xy, lin_t], f"{h}__xy_lin"), shift], f"{h}__xy_out")
        cv.emit("Concat", [xy, z], op.outputs[0], NHWC, axis=-1)


BUILTIN_OPS = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": conv_2d,
    "MAX_POOL_2D": pool_2d, "AVERAGE_POOL_2D": pool_2d,
    "ADD": binary, "MUL": binary, "SUB": binary, "DIV": binary, "MAXIMUM": binary, "MINIMUM": binary,
    "RELU": unary, "RELU6": unary, "RELU_N1_TO_1": unary, "LOGISTIC": unary, "TANH": unary, "HARD_SWISH": unary,
    "PRELU": prelu,
    "PAD": pad, "PADV2": pad,
    "RESHAPE": reshape,
    "CONCATENATION": concatenation,
    "STRIDED_SLICE": strided_slice,
    "RESIZE_BILINEAR": resize_bilinear,
    "DEPTH_TO_SPACE": depth_to_space,
    "DEQUANTIZE": dequantize,
    "DENSIFY": densify_op,
}
CUSTOM_OPS = {  # name -> (converter, op version it implements)
    "Convolution2DTransposeBias": (transpose_conv_bias, 1),
    "Landmarks2TransformMatrix": (landmarks_to_transform_matrix, 2),
    "TransformTensorBilinear": (transform_tensor_bilinear, 2),
    "TransformLandmarks": (transform_landmarks, 2),
}


# ---------------------------------------------------------------------------------------------------------------
# Whole models


def convert(path, rel):
    """ONNX ModelProto for the .tflite file at path (rel: its path under modules/, recorded in the metadata)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        m = TfliteModel(path)
    except ConversionError:
        raise
    except Exception as e:  # a truncated or foreign file
        raise ConversionError(f"cannot read {path} as a TFLite model: {e}") from None
    cv = Converter(m, stem)
    for t in m.inputs + m.outputs:
        if m.dtypes[t] != np.float32:
            raise ConversionError(f"{stem}: input/output {m.names[t]!r} is not float32")
    for t in m.inputs:
        cv.set(t, m.names[t], NHWC)
    for op in m.ops:
        where = f"{stem}: op #{op.index}"
        if op.name == "CUSTOM":
            fn, version = CUSTOM_OPS.get(op.custom_code, (None, None))
            if fn is None or op.version != version:
                raise ConversionError(f"{where}: unsupported custom op {op.custom_code} v{op.version}")
        else:
            fn = BUILTIN_OPS.get(op.name)
            if fn is None:
                raise ConversionError(f"{where}: unsupported TFLite op {op.name}")
        try:
            fn(cv, op)
        except ConversionError as e:
            raise ConversionError(f"{where} ({op.name}): {e}") from None

    # graph outputs: NHWC values under their exact TFLite names (an NCHW value of that name gives it up)
    for t in m.outputs:
        name, want = cv.get(t, NHWC), m.names[t]
        if name == want:
            continue
        if any(want in n.output for n in cv.nodes):
            cv.rename(want, cv.uniq(want + "__" + NCHW))
        if name in {m.names[i] for i in m.inputs + m.outputs} or not any(name in n.output for n in cv.nodes):
            cv.node("Identity", [name], None, outputs=[want])
        else:
            cv.rename(name, want)

    def info(t):
        return helper.make_tensor_value_info(m.names[t], TensorProto.FLOAT, list(m.shapes[t]))

    graph = helper.make_graph(cv.nodes, stem, [info(t) for t in m.inputs], [info(t) for t in m.outputs], cv.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name=PRODUCER[0], producer_version=PRODUCER[1])
    source = hashlib.sha256(m.buf).hexdigest()
    helper.set_model_props(model, {"source": f"mediapipe/modules/{rel}", "source_sha256": source,
                                   "license": "Apache-2.0 (mediapipe)"})
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ConversionError(f"{stem}: the ONNX graph does not check: {str(e).splitlines()[0]}") from None
    for out in inferred.graph.output:  # the declared output shapes must be what the graph computes
        dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
        expected = [t for t in m.outputs if m.names[t] == out.name][0]
        if tuple(dims) != m.shapes[expected]:
            raise ConversionError(f"{stem}: output {out.name} has shape {dims}, expected {list(m.shapes[expected])}")
    return model, len(m.ops)


def default_modules():
    try:
        import mediapipe
    except ImportError:
        sys.exit("error: mediapipe is not installed; pass --modules DIR (the wheel's mediapipe/modules folder)")
    return os.path.join(os.path.dirname(mediapipe.__file__), "modules")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules", help="mediapipe's modules folder (default: the installed mediapipe's)")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)), help="output folder")
    ap.add_argument("--models", nargs="+", default=MODELS, help=argparse.SUPPRESS)  # other models, for checks
    args = ap.parse_args(argv)
    modules = args.modules or default_modules()
    os.makedirs(args.out, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    missing = [os.path.join(modules, rel) for rel in args.models if not os.path.isfile(os.path.join(modules, rel))]
    if missing:
        print(f"error: model file not found: {missing[0]}", file=sys.stderr)
        return 1
    for rel in args.models:
        path = os.path.join(modules, rel)
        try:
            model, n_ops = convert(path, rel)
        except ConversionError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        data = model.SerializeToString(deterministic=True)
        dst = os.path.join(args.out, os.path.splitext(os.path.basename(rel))[0] + ".onnx")
        fd, tmp = tempfile.mkstemp(prefix=".convert-", suffix=".onnx.tmp", dir=args.out)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
            os.replace(tmp, dst)
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"{os.path.basename(dst)}: {n_ops} TFLite ops converted, {len(model.graph.node)} ONNX nodes, "
              f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
