"""Exponential moving average of the generator's weights, with recalibrated BatchNorm."""
import mxnet as mx
import numpy as np

from ..utils.seeds import BN_RECALIBRATION_SALT

__all__ = ['GeneratorEMA', 'recalibrate_batchnorm']


def recalibrate_batchnorm(generator, nz, ctx=None, batches=8, batch_size=128, seed=0):
    """Re-estimate a generator's BatchNorm running statistics from its own activations.

    Averaged weights have activation statistics of their own, which neither the averaged
    running statistics nor the raw generator's match (with them the averaged generator makes
    washed-out, nearly identical images). ``batches`` training-mode passes on seeded latents
    set each running statistic to the plain mean of the batches' statistics (the BatchNorm
    momentum of pass k is set to 1 - 1/k, then restored). The passes run backward too, because
    that is where MXNet's BatchNorm updates running statistics; the gradients they leave in the
    generator are not used. The generator must not be hybridized (its momentum is read at call
    time only in imperative mode).
    """
    ctx = ctx or mx.cpu()
    norms = [b for b in _blocks(generator) if isinstance(b, mx.gluon.nn.BatchNorm)]
    if any(getattr(b, '_active', False) for b in _blocks(generator)):
        raise ValueError('recalibrate_batchnorm needs an imperative (not hybridized) generator')
    saved = [b._kwargs['momentum'] for b in norms]
    rng = np.random.RandomState([seed, BN_RECALIBRATION_SALT])
    try:
        for k in range(1, batches + 1):
            for norm in norms:
                norm._kwargs['momentum'] = 1.0 - 1.0 / k
            z = rng.standard_normal((batch_size, nz, 1, 1)).astype(np.float32)
            with mx.autograd.record(train_mode=True):
                out = generator(mx.nd.array(z, ctx=ctx))
            out.backward()
        mx.nd.waitall()
    finally:
        for norm, momentum in zip(norms, saved):
            norm._kwargs['momentum'] = momentum
    return generator


def _blocks(block):
    yield block
    for child in block._children.values():
        for sub in _blocks(child):
            yield sub


class GeneratorEMA:
    """A copy of the generator whose weights follow ``decay * ema + (1 - decay) * current``.

    Only trainable parameters are averaged; BatchNorm running statistics are recalibrated
    (:func:`recalibrate_batchnorm`) whenever the average is used, so the averaged generator is
    consistent in inference mode. It is used for sample grids and evaluation and saved in
    checkpoints.

    Parameters
    ----------
    generator : HybridBlock
        The trained generator (its first device's copy is read).
    factory : callable
        Returns a new block with the generator's architecture.
    decay : float
        Weight of the past, e.g. 0.999.
    ctx : Context
        Device of the averaged copy.
    """

    def __init__(self, generator, factory, decay, ctx=None):
        self.decay, self.ctx = decay, ctx or mx.cpu()
        self.net = factory()
        params = self.net.collect_params()
        try:
            params.reset_ctx(self.ctx)
        except ValueError:  # not initialised yet; the values are copied below anyway
            self.net.initialize(ctx=self.ctx)
        pairs = list(zip(params.values(), generator.collect_params().values()))
        for ema, param in pairs:
            ema.set_data(param.list_data()[0].as_in_context(self.ctx))
        self._pairs = [(ema, param) for ema, param in pairs if param.grad_req != 'null']
        self._calibrated_at = None

    def update(self):
        """Move the average one step towards the generator's current weights."""
        for ema, param in self._pairs:
            avg = ema.data(self.ctx)
            current = param.list_data()[0].as_in_context(self.ctx)
            avg[:] = avg * self.decay + current * (1.0 - self.decay)
        self._calibrated_at = None

    def calibrated(self, nz):
        """The averaged generator with BatchNorm statistics matching its weights."""
        if self._calibrated_at is None:
            recalibrate_batchnorm(self.net, nz, ctx=self.ctx)
            self._calibrated_at = True
        return self.net

    def save(self, path):
        self.net.save_parameters(path)

    def load(self, path):
        self.net.load_parameters(path, ctx=self.ctx)
        self._calibrated_at = None
