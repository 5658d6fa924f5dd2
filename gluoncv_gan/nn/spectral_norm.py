"""Spectral normalisation of convolutions (Miyato et al. 2018), hybridizable.

A :class:`SNConv2D` convolves with ``W / sigma(W)``, ``sigma`` estimated by power iteration from
a persistent, saved vector ``u``. A graph cannot write a parameter, so ``u`` is stepped outside
it before each training-mode forward: by the layer itself on NDArrays, or inside a hybridized
block by :func:`power_iterate_hybridized`, called by the outermost block's ``forward`` (a
forward pre-hook would make Gluon warn on hybridizing). See
docs/recipes.md#spectral-normalisation-sngan_lfw.
"""
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

__all__ = ['SNConv2D', 'power_iterate_hybridized', 'power_iteration', 'spectral_norm_sigma']

_EPS = 1e-12


@mx.init.register
class _UnitNormal(mx.init.Initializer):
    """Initialise a vector with a random direction of unit length."""

    def _init_weight(self, _, arr):
        arr[:] = mx.nd.random.normal(0, 1, shape=arr.shape, ctx=arr.context)
        arr[:] = arr / (mx.nd.norm(arr) + _EPS)


def _normalize(F, x):
    """``x`` (1, n) scaled to unit length."""
    return F.broadcast_div(x, F.sqrt(F.sum(F.square(x))) + _EPS)


def _sigma(F, weight, u):
    """Spectral-norm estimate ``u^T W v`` with ``v = normalize(W^T u)``; u and v are constants."""
    matrix = F.reshape(weight, shape=(0, -1))
    u = F.BlockGrad(u)
    v = F.BlockGrad(_normalize(F, F.dot(u, matrix)))
    return F.sum(F.dot(v, matrix, transpose_b=True) * u)


def spectral_norm_sigma(weight, u):
    """The estimate of the largest singular value of ``weight`` that the layer divides by.

    Parameters
    ----------
    weight : NDArray
        Convolution weight (out_channels, in_channels, kh, kw).
    u : NDArray
        Power-iteration vector (1, out_channels).

    Returns
    -------
    float
    """
    return float(_sigma(mx.nd, weight, u).asscalar())


def power_iteration(weight, u):
    """One power-iteration step: ``u`` (1, out_channels) updated in place from ``weight``."""
    matrix = weight.reshape((0, -1))
    v = _normalize(mx.nd, mx.nd.dot(u, matrix))
    u[:] = _normalize(mx.nd, mx.nd.dot(v, matrix, transpose_b=True))


class SNConv2D(nn.HybridBlock):
    """2-D convolution with a spectrally normalised weight.

    Parameters
    ----------
    channels : int
        Output channels.
    kernel_size, strides, padding : int or tuple of int
        As in :class:`mxnet.gluon.nn.Conv2D`.
    use_bias : bool, default True
        Add a bias (not normalised).
    in_channels : int, default 0
        Input channels (0: inferred at the first forward).
    weight_initializer, bias_initializer
        As in :class:`mxnet.gluon.nn.Conv2D`.

    Parameters of the block: ``weight``, ``bias`` (if ``use_bias``) and ``u`` (no gradient),
    the power-iteration state, which takes one step before each training-mode forward (see the
    module documentation for layers inside a hybridized block).
    """

    def __init__(self, channels, kernel_size, strides=1, padding=0, use_bias=True, in_channels=0,
                 weight_initializer=None, bias_initializer='zeros', **kwargs):
        super().__init__(**kwargs)
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        self._channels = channels
        self._kwargs = {'kernel': pair(kernel_size), 'stride': pair(strides),
                        'pad': pair(padding), 'num_filter': channels, 'no_bias': not use_bias}
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(channels, in_channels) +
                                          self._kwargs['kernel'], init=weight_initializer,
                                          allow_deferred_init=True)
            self.bias = self.params.get('bias', shape=(channels,), init=bias_initializer,
                                        allow_deferred_init=True) if use_bias else None
            self.u = self.params.get('u', shape=(1, channels), init=_UnitNormal(),
                                     grad_req='null', differentiable=False)

    def forward(self, x, *args):
        if isinstance(x, mx.nd.NDArray) and autograd.is_training():
            self.update_u(x.context)
        return super().forward(x, *args)

    def hybrid_forward(self, F, x, weight, u, bias=None):
        normalized = F.broadcast_div(weight, _sigma(F, weight, u))
        if bias is None:
            return F.Convolution(x, normalized, **self._kwargs)
        return F.Convolution(x, normalized, bias, **self._kwargs)

    def sigma(self, ctx=None):
        """The current estimate of the weight's largest singular value (float)."""
        return spectral_norm_sigma(self.weight.data(ctx), self.u.data(ctx))

    def update_u(self, ctx):
        """One power-iteration step of ``u`` on device ``ctx`` (outside any graph)."""
        try:
            weight = self.weight.data(ctx)
        except mx.gluon.parameter.DeferredInitializationError:
            return  # the first forward infers the shape; the next ones iterate
        with autograd.pause():
            power_iteration(weight, self.u.data(ctx))

    def __repr__(self):
        return '%s(%s, kernel_size=%s, stride=%s, padding=%s)' % (
            self.__class__.__name__, self._channels, self._kwargs['kernel'],
            self._kwargs['stride'], self._kwargs['pad'])


def _layers_in_graphs(block, in_graph):
    """SNConv2D layers below ``block`` that run inside a cached graph (they never see NDArrays).

    ``in_graph`` tells whether ``block`` itself runs inside one (it, or an ancestor, is
    hybridized); a hybridized layer whose parents are not runs on NDArrays and steps itself.
    """
    for child in block._children.values():
        if isinstance(child, SNConv2D):
            if in_graph:
                yield child
            continue
        for layer in _layers_in_graphs(child, in_graph or getattr(child, '_active', False)):
            yield layer


def power_iterate_hybridized(block, x):
    """Step ``u`` of the :class:`SNConv2D` layers that ``block``'s forward on ``x`` runs in graphs.

    Call it first thing in the ``forward`` of the outermost block that holds spectrally
    normalised layers. It acts in training mode on NDArray inputs only, and only on the layers
    that run inside a cached graph (``block`` or a block between it and the layer hybridized);
    the others update themselves, and in inference mode nothing changes.
    """
    if isinstance(x, mx.nd.NDArray) and autograd.is_training():
        for layer in _layers_in_graphs(block, getattr(block, '_active', False)):
            layer.update_u(x.context)
