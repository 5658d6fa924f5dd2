"""GAN objectives: what the discriminator and the generator minimise.

An objective is a Gluon ``Loss`` with ``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)``
(per-sample losses from the discriminator's raw outputs), ``prob(out)`` (the score of "real"
shown in logs) and ``is_real(out)`` (for the accuracy metrics), so the training loop never
changes with the objective. The ``loss`` key / ``--loss`` flag chooses ``vanilla``, ``minimax``,
``lsgan``, ``hinge`` or ``wgan``; formulas and sources: docs/recipes.md#objectives-loss---loss.
"""
from mxnet import gluon

from .utils.name_registry import OBJECTIVES

__all__ = ['GANObjective', 'VanillaGANLoss', 'MinimaxGANLoss', 'LSGANLoss', 'HingeGANLoss',
           'WassersteinGANLoss', 'get_objective', 'objective_names']


class GANObjective(gluon.loss.Loss):
    """Base class of GAN objectives (a Gluon Loss, so GluonCV's estimator accepts it)."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def d_loss(self, real_out, fake_out):
        """The discriminator's loss: that of real outputs labelled 1 plus fake ones labelled 0."""
        return self(real_out, real_out.ones_like()) + self(fake_out, fake_out.zeros_like())

    def g_loss(self, fake_out):
        raise NotImplementedError

    def prob(self, out):
        """Raw discriminator outputs as a probability-like score of "real"."""
        return out.sigmoid()

    def is_real(self, out):
        """Boolean (0/1) NDArray: the discriminator's decision "real"."""
        return out > 0

    def hybrid_forward(self, F, out, target):
        """The discriminator's per-sample loss of raw outputs ``out`` labelled ``target``
        (1 real, 0 fake)."""
        raise NotImplementedError


@OBJECTIVES.register(name='vanilla')
class VanillaGANLoss(GANObjective):
    """The original GAN objective as the tutorial trains it: sigmoid binary cross-entropy.

    The discriminator minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` and the generator the
    non-saturating ``BCE(D(G(z)), 1)``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._bce = gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False)

    def hybrid_forward(self, F, out, target):
        return self._bce(out, target)

    def g_loss(self, fake_out):
        return self(fake_out, fake_out.ones_like())


@OBJECTIVES.register(name='minimax')
class MinimaxGANLoss(VanillaGANLoss):
    """The original minimax GAN objective (Goodfellow et al. 2014), provided for comparison.

    The discriminator is trained as in :class:`VanillaGANLoss`; the generator minimises
    ``log(1 - sigmoid(D(G(z))))`` = ``-BCE(D(G(z)), 0)``, whose gradient vanishes while the
    discriminator rejects the samples confidently (early in training): the reason the tutorial
    uses the non-saturating loss instead.
    """

    def g_loss(self, fake_out):
        return -self(fake_out, fake_out.zeros_like())


@OBJECTIVES.register(name='lsgan')
class LSGANLoss(GANObjective):
    """Least-squares GAN (Mao et al. 2017), targets 1 for real and 0 for fake.

    Discriminator: ``0.5 (D(x) - 1)^2 + 0.5 D(G(z))^2``; generator: ``0.5 (D(G(z)) - 1)^2``.
    The output regresses to the target, so it is shown as it is and "real" means above 0.5.
    """

    def hybrid_forward(self, F, out, target):
        return 0.5 * F.square(out - target)

    def g_loss(self, fake_out):
        return self(fake_out, fake_out.ones_like())

    def prob(self, out):
        return out

    def is_real(self, out):
        return out > 0.5


class _RawScoreObjective(GANObjective):
    """An objective on an unbounded critic score: shown raw, "real" means positive."""

    def prob(self, out):
        return out

    def g_loss(self, fake_out):
        return -fake_out


@OBJECTIVES.register(name='hinge')
class HingeGANLoss(_RawScoreObjective):
    """Hinge objective (Lim & Ye 2017; Miyato et al. 2018 with spectral normalisation).

    Discriminator: ``relu(1 - D(x)) + relu(1 + D(G(z)))``; generator: ``-D(G(z))``.
    """

    def hybrid_forward(self, F, out, target):
        sign = 2 * target - 1  # +1 real, -1 fake
        return F.relu(1 - sign * out)


@OBJECTIVES.register(name='wgan')
class WassersteinGANLoss(_RawScoreObjective):
    """Wasserstein GAN critic objective (Arjovsky et al. 2017).

    Critic: ``D(G(z)) - D(x)``; generator: ``-D(G(z))``. The critic must be kept Lipschitz:
    train with ``weight_clip`` (0.01 in the paper) and ``n_critic`` (5) — gradient penalties
    need second-order gradients, which MXNet 1.x lacks for convolutions.
    """

    def hybrid_forward(self, F, out, target):
        return (1 - 2 * target) * out  # -D(x) for real, +D(G(z)) for fake


def objective_names():
    """Names accepted by :func:`get_objective` (and by the ``loss`` config key)."""
    return OBJECTIVES.names()


def get_objective(name, **kwargs):
    """The objective called ``name`` (see :func:`objective_names`)."""
    return OBJECTIVES.get(name)(**kwargs)
