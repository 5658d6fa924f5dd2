"""Opt-in bfloat16 training on CPU (``--amp``).

``Convolution``, ``Deconvolution`` and ``FullyConnected`` run in bfloat16 by explicit casts
around MXNet's imperative operators (:func:`enable_bfloat16`); everything else, the optimiser
and the master weights stay float32, and no loss scaling is needed.
:func:`bfloat16_op_lists` states the same choice as AMP operator lists. MXNet 1.9.1's limits
(the bfloat16 ``Deconvolution`` weight gradient, ``amp.init``, hybridized nets), why
:func:`transposed_convolution` exists and why ``--amp`` runs the nets imperatively:
docs/performance.md#bfloat16---amp. The casts apply to the whole process and cannot be turned
off.
"""
import logging
import os

from . import amx
from .command_line import UserError

__all__ = ['cpu_has_bfloat16', 'bfloat16_op_lists', 'transposed_convolution', 'cast_to',
           'enable_bfloat16', 'Bfloat16Unavailable']

BF16_OPS = ('Convolution', 'Deconvolution', 'FullyConnected')
FP32_OPS = ('BatchNorm',)
# =0: transposed convolutions stay float32 under --amp (to measure what they contribute)
DECONV_VARIABLE = 'GLUONCV_GAN_BF16_DECONV'


class Bfloat16Unavailable(UserError):
    """``--amp`` cannot run here (no bfloat16 CPU, or an MXNet without oneDNN)."""


def cpu_has_bfloat16(flags=None):
    """True when the CPU has native bfloat16 (``avx512_bf16`` or AMX) in /proc/cpuinfo."""
    return amx.bfloat16_path(amx.cpu_flags() if flags is None else flags) is not None


def bfloat16_op_lists():
    """The operator lists of ``amp.init`` / ``amp.convert_symbol`` for this project.

    MXNet's bfloat16 lists with ``Deconvolution`` moved from the float32 list to the bfloat16
    one and ``BatchNorm`` pinned to float32 (MXNet's default runs it in whatever type comes in).

    Returns
    -------
    dict
        ``target_precision_ops``, ``fp32_ops`` and ``conditional_fp32_ops``.
    """
    from mxnet.contrib.amp.lists import symbol_bf16 as lists
    target = sorted(set(lists.BF16_FUNCS) | set(BF16_OPS))
    fp32 = [op for op in lists.FP32_FUNCS if op not in BF16_OPS] + [
        op for op in FP32_OPS if op not in lists.FP32_FUNCS]
    return {'target_precision_ops': target, 'fp32_ops': fp32,
            'conditional_fp32_ops': list(lists.CONDITIONAL_FP32_FUNCS)}


OP_TYPE = 'gluoncv_gan_bf16_deconvolution'


def _parse(text):
    return tuple(int(v) for v in str(text).strip('()[] ').split(',') if v.strip())


def _register_transposed_convolution(deconvolution, convolution, dtype):
    """Register the custom operator :func:`transposed_convolution` runs (once per process).

    A custom operator, not an ``autograd.Function``: its backward pass records a convolution
    and backpropagates through it, which MXNet allows on a custom operator's own thread but not
    inside a Function's backward (there it fails once the net has several of them).
    """
    import mxnet as mx
    if OP_TYPE in _REGISTERED:
        return

    class TransposedConvolution(mx.operator.CustomOp):
        """float32 in and out, bfloat16 inside. The input gradient of a transposed convolution
        is the ``Convolution`` of the output gradient with the same weights, and its weight
        gradient is that convolution's weight gradient with the transposed convolution's input
        as the head gradient: both come from one recorded bfloat16 ``Convolution``."""

        def __init__(self, kwargs):
            super().__init__()
            self._kwargs = kwargs

        def forward(self, is_train, req, in_data, out_data, aux):
            data, weight = (mx.nd.amp_cast(a, dtype=dtype) for a in in_data)
            out = deconvolution(data, weight, no_bias=True, **self._kwargs)
            self.assign(out_data[0], req[0], mx.nd.amp_cast(out, dtype='float32'))

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            grad, data, weight = (mx.nd.amp_cast(a, dtype=dtype)
                                  for a in (out_grad[0], in_data[0], in_data[1]))
            weight.attach_grad()
            conv = {k: v for k, v in self._kwargs.items() if k in ('kernel', 'stride', 'pad')}
            with mx.autograd.record():
                data_grad = convolution(grad, weight, num_filter=weight.shape[0], no_bias=True,
                                        **conv)
            data_grad.backward(data)
            self.assign(in_grad[0], req[0], mx.nd.amp_cast(data_grad, dtype='float32'))
            self.assign(in_grad[1], req[1], mx.nd.amp_cast(weight.grad, dtype='float32'))

    @mx.operator.register(OP_TYPE)
    class TransposedConvolutionProp(mx.operator.CustomOpProp):  # noqa: F841 (registered)
        def __init__(self, kernel, stride, pad, adj, num_filter):
            super().__init__(need_top_grad=True)
            self._kwargs = {'kernel': _parse(kernel), 'stride': _parse(stride),
                            'pad': _parse(pad), 'adj': _parse(adj),
                            'num_filter': int(num_filter)}

        def list_arguments(self):
            return ['data', 'weight']

        def infer_shape(self, in_shape):
            k, s, p, a = (self._kwargs[n] for n in ('kernel', 'stride', 'pad', 'adj'))
            size = [(i - 1) * s[d] - 2 * p[d] + k[d] + a[d]
                    for d, i in enumerate(in_shape[0][2:])]
            return in_shape, [[in_shape[0][0], self._kwargs['num_filter']] + size], []

        def create_operator(self, ctx, shapes, dtypes):
            return TransposedConvolution(self._kwargs)

    _REGISTERED.add(OP_TYPE)


_REGISTERED = set()


def transposed_convolution(deconvolution, convolution, dtype):
    """A drop-in ``Deconvolution`` for NDArrays that computes in ``dtype`` and trains.

    MXNet 1.9.1's own bfloat16 ``Deconvolution`` cannot compute its weight gradient; this one
    takes it from the adjoint convolution (see :func:`_register_transposed_convolution`).

    Parameters
    ----------
    deconvolution, convolution : callable
        MXNet's own ``mx.nd.Deconvolution`` and ``mx.nd.Convolution``, as they were before AMP
        wrapped them.
    dtype : numpy dtype
        The type to compute in (AMP's bfloat16). Inputs and output stay float32.

    Returns
    -------
    callable
        With ``Deconvolution``'s signature. Transposed convolutions with a bias, groups,
        dilation, a ``target_shape``, non-NCHW layout or a 1x1 input run as the float32
        original.
    """
    import mxnet as mx
    _register_transposed_convolution(deconvolution, convolution, dtype)

    def wrapped(data=None, weight=None, bias=None, **kwargs):
        plain = (data.ndim != 4 or data.shape[2:] == (1, 1) or bias is not None
                 or not kwargs.get('no_bias', False)
                 or int(kwargs.get('num_group', 1)) != 1
                 or kwargs.get('layout') not in (None, 'NCHW')
                 or any(int(d) != 1 for d in kwargs.get('dilate', ()) or ())
                 or any(int(t) for t in kwargs.get('target_shape', ()) or ()))
        if plain:
            args = [a for a in (data, weight, bias) if a is not None]
            return deconvolution(*args, **kwargs)
        params = {'kernel': kwargs['kernel'], 'stride': kwargs.get('stride') or (1, 1),
                  'pad': kwargs.get('pad') or (0, 0), 'adj': kwargs.get('adj') or (0, 0),
                  'num_filter': kwargs['num_filter']}
        return mx.nd.Custom(mx.nd.amp_cast(data, dtype='float32'),
                            mx.nd.amp_cast(weight, dtype='float32'), op_type=OP_TYPE,
                            **{k: str(tuple(v)) if isinstance(v, (tuple, list)) else str(v)
                               for k, v in params.items()})
    wrapped.__wrapped__ = deconvolution
    wrapped.__name__ = 'Deconvolution'
    wrapped.__doc__ = deconvolution.__doc__
    return wrapped


def cast_to(operator, dtype):
    """``operator`` run in ``dtype``: its NDArray inputs cast to ``dtype``, its output back to
    float32 (the casts are recorded, so gradients come back as float32)."""
    import mxnet as mx

    def wrapped(*args, **kwargs):
        args = [mx.nd.amp_cast(a, dtype=dtype) if isinstance(a, mx.nd.NDArray) else a
                for a in args]
        kwargs = {k: mx.nd.amp_cast(v, dtype=dtype) if isinstance(v, mx.nd.NDArray) else v
                  for k, v in kwargs.items()}
        return mx.nd.amp_cast(operator(*args, **kwargs), dtype='float32')
    wrapped.__wrapped__ = operator
    wrapped.__name__ = operator.__name__
    wrapped.__doc__ = operator.__doc__
    return wrapped


def enable_bfloat16(logger=None, state=None):
    """Run this process's convolutions in bfloat16 (call it before the nets run).

    Explicit casts around MXNet's imperative operators rather than ``amp.init``: with AMP's
    patched namespaces, the backward pass of :func:`transposed_convolution` fails ("Backward
    shape inconsistent with the forward shape"). ``Convolution`` and ``FullyConnected`` run
    in bfloat16 between casts, ``Deconvolution`` through :func:`transposed_convolution`; their
    outputs are float32, so BatchNorm, activations and losses stay float32, as do the weights,
    gradients and optimiser states. ``GLUONCV_GAN_BF16_DECONV=0`` keeps the transposed
    convolutions float32. Logs one line naming the bfloat16 path (AMX, AVX-512 BF16, and why
    not AMX when the CPU has it) and the operators in each type. Applies to the whole process,
    imperative nets only.

    Parameters
    ----------
    logger : logging.Logger or None
        Where the line goes.
    state : dict or None
        The :func:`gluoncv_gan.utils.amx.setup_amx` state of this process (default: the one
        ``import gluoncv_gan`` made).

    Returns
    -------
    dict
        The state (``path``, ``hardware``, ``isa``, ``reason``...).

    Raises
    ------
    Bfloat16Unavailable
        When this MXNet build has no oneDNN, or the CPU has no native bfloat16.
    """
    import mxnet as mx
    from mxnet.contrib.amp.amp import bfloat16
    state = state or amx.STATE or amx.setup_amx(environ={}, mxnet_loaded=True)
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        raise Bfloat16Unavailable('--amp needs an MXNet build with MKLDNN (oneDNN), which '
                                  'provides the bfloat16 kernels; this build has none: train '
                                  'without --amp, or install the mxnet wheel from PyPI (built '
                                  'with MKLDNN)')
    if state['path'] is None:
        raise Bfloat16Unavailable('--amp needs a CPU with bfloat16 instructions (avx512_bf16 or '
                                  'AMX in the flags of %s) and this one has neither, so bfloat16 '
                                  'would be emulated and slower than float32: train without '
                                  '--amp' % amx.cpu_info_path())
    deconvolution = os.environ.get(DECONV_VARIABLE, '').strip().lower() not in (
        '0', 'false', 'no', 'off')
    ops = [op for op in BF16_OPS if deconvolution or op != 'Deconvolution']
    (logger or logging.getLogger(__name__)).info(
        '%s; bfloat16: %s; float32: %s, losses, weights', amx.describe(state),
        ', '.join(ops), ', '.join(FP32_OPS + (() if deconvolution else ('Deconvolution',))))
    if getattr(mx.nd.Convolution, 'bfloat16_training', False):  # enabled before
        return state
    originals = {name: getattr(mx.nd, name) for name in BF16_OPS}
    replaced = {'Convolution': cast_to(originals['Convolution'], bfloat16),
                'FullyConnected': cast_to(originals['FullyConnected'], bfloat16)}
    if deconvolution:
        replaced['Deconvolution'] = transposed_convolution(
            originals['Deconvolution'], originals['Convolution'], bfloat16)
    for name, operator in replaced.items():
        operator.bfloat16_training = True
        setattr(mx.nd, name, operator)
        setattr(mx.nd.op, name, operator)
    return state
