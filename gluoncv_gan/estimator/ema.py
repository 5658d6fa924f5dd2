"""Exponential moving average of the generator's weights."""
import mxnet as mx

__all__ = ['GeneratorEMA']


class GeneratorEMA:
    """A copy of the generator whose parameters follow ``decay * ema + (1 - decay) * current``.

    BatchNorm running statistics are averaged the same way. The averaged generator usually
    makes smoother, better samples than the raw one; it is used for sample grids and
    evaluation, and saved in checkpoints.

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
        self._pairs = list(zip(self.net.collect_params().values(),
                               generator.collect_params().values()))
        for ema, param in self._pairs:
            ema.set_data(param.list_data()[0].as_in_context(self.ctx))

    def update(self):
        """Move the average one step towards the generator's current parameters."""
        for ema, param in self._pairs:
            avg = ema.data(self.ctx)
            current = param.list_data()[0].as_in_context(self.ctx)
            avg[:] = avg * self.decay + current * (1.0 - self.decay)

    def save(self, path):
        self.net.save_parameters(path)

    def load(self, path):
        self.net.load_parameters(path, ctx=self.ctx)
