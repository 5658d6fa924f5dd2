"""GAN objectives: what the discriminator and the generator minimise.

An objective is a Gluon ``Loss`` with two methods, so the training loop never changes when the
objective does:

- ``d_loss(real_out, fake_out)``: per-sample loss of the discriminator, given its raw outputs on
  real and on generated images;
- ``g_loss(fake_out)``: per-sample loss of the generator, given the discriminator's raw outputs on
  generated images.

``prob(out)`` maps raw outputs to the "probability of real" shown in logs, and
``is_real(out)`` decides real vs fake for the accuracy metrics.
"""
from mxnet import gluon

__all__ = ['GANObjective', 'VanillaGANLoss', 'get_objective', 'objective_names']


class GANObjective(gluon.loss.Loss):
    """Base class of GAN objectives (a Gluon Loss, so GluonCV's estimator accepts it)."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super(GANObjective, self).__init__(weight, batch_axis, **kwargs)

    def d_loss(self, real_out, fake_out):
        raise NotImplementedError

    def g_loss(self, fake_out):
        raise NotImplementedError

    def prob(self, out):
        """Raw discriminator outputs as a probability-like score of "real"."""
        return out.sigmoid()

    def is_real(self, out):
        """Boolean (0/1) NDArray: the discriminator's decision "real"."""
        return out > 0

    def hybrid_forward(self, F, out, target):
        """Loss of raw outputs ``out`` against ``target`` (1 real, 0 fake), per sample."""
        raise NotImplementedError


class VanillaGANLoss(GANObjective):
    """The original GAN objective as the tutorial trains it: sigmoid binary cross-entropy.

    The discriminator minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` and the generator the
    non-saturating ``BCE(D(G(z)), 1)``.
    """

    def __init__(self, **kwargs):
        super(VanillaGANLoss, self).__init__(**kwargs)
        self._bce = gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False)

    def hybrid_forward(self, F, out, target):
        return self._bce(out, target)

    def d_loss(self, real_out, fake_out):
        return self(real_out, real_out.ones_like()) + self(fake_out, fake_out.zeros_like())

    def g_loss(self, fake_out):
        return self(fake_out, fake_out.ones_like())


_OBJECTIVES = {
    'vanilla': VanillaGANLoss,
}


def objective_names():
    """Names accepted by :func:`get_objective` (and by the ``loss`` config key)."""
    return sorted(_OBJECTIVES)


def get_objective(name, **kwargs):
    """The objective called ``name`` (see :func:`objective_names`)."""
    if name not in _OBJECTIVES:
        raise ValueError('unknown GAN objective %r; choose one of: %s'
                         % (name, ', '.join(objective_names())))
    return _OBJECTIVES[name](**kwargs)
