"""GluonCV's estimator, taught to train a GAN: two nets, two trainers, alternating updates."""
import time

import numpy as np
import mxnet as mx
from mxnet import autograd
from mxnet.gluon.contrib.estimator import Estimator
from mxnet.gluon.contrib.estimator.batch_processor import BatchProcessor
from mxnet.gluon.contrib.estimator.event_handler import GradientUpdateHandler, LoggingHandler
from mxnet.gluon.utils import split_and_load

from ..utils.seeds import LATENT_BATCH_SALT
from .augment import FAKE_FOR_D, FAKE_FOR_G, REAL
from .checkpoint import NonFiniteError
from .step_metrics import GANStepOutput, gan_metrics

__all__ = ['GANBatchProcessor', 'GANEstimator', 'latent_batch']


def latent_batch(seed, iteration, batch_size, nz):
    """The latent vectors of one iteration: a function of (seed, iteration) alone.

    Drawing them this way, rather than from MXNet's global random state (which cannot be saved),
    is what lets a resumed run repeat an uninterrupted one exactly.
    """
    rng = np.random.RandomState([seed, iteration, LATENT_BATCH_SALT])
    return rng.standard_normal((batch_size, nz, 1, 1)).astype(np.float32)


class GANBatchProcessor(BatchProcessor):
    """One GAN iteration, as in the DCGAN tutorial, with a single generator forward pass.

    1. Discriminator step: ``d_loss(D(x), D(G(z).detach()))`` (real labelled 1, fake 0), then
       the discriminator's trainer steps.
       With ``estimator.weight_clip`` c > 0, every trained discriminator parameter is then
       clipped into [-c, c] (WGAN).
    2. Generator step: ``g_loss(D(G(z)))`` on the same generated batch (the tutorial runs the
       generator a second time for this; its output would be identical), then the generator's
       trainer steps. With ``estimator.n_critic`` k > 1 it runs only on iterations whose
       number i (0-based) has ``(i + 1) % k == 0``: k discriminator steps per generator step,
       while every iteration still consumes one real batch (so counts, epochs and resuming
       are unchanged); the g_loss metric skips iterations without a generator step.

    Both trainers step here, at most once each per iteration, so :class:`GANEstimator` drops
    the default ``GradientUpdateHandler`` that would step a trainer a second time.

    Non-finite losses stop training: each iteration's loss total is kept on the device, and
    every ``check_interval`` iterations (one host synchronisation) :meth:`check_losses` raises
    :class:`~gluoncv_gan.estimator.checkpoint.NonFiniteError` naming the first iteration whose
    losses were NaN or infinite.

    Parameters
    ----------
    input_grad_only : bool, default True
        In the generator step, backpropagate through the discriminator to its input only
        (``autograd.grad`` with respect to the generated batch), so the discriminator's weight
        gradients, which no update uses, are not computed; False runs a plain ``backward``.
    check_interval : int, default 10
        Iterations between checks of the losses (the training script uses its log interval).
    """

    def __init__(self, input_grad_only=True, check_interval=10):
        super().__init__()
        self.input_grad_only = input_grad_only
        self.check_interval = max(1, int(check_interval))
        self._pending = []  # (iteration, d_loss total, g_loss total or None), not yet checked

    def check_losses(self, estimator):
        """Raise :class:`NonFiniteError` if a loss since the last check was NaN or infinite."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        totals = [d for _, d, _ in pending] + [g for _, _, g in pending if g is not None]
        if np.isfinite(mx.nd.concat(*[t.reshape((1,)) for t in totals], dim=0).asnumpy()).all():
            return
        for iteration, d_total, g_total in pending:
            d_value = d_total.asscalar()
            g_value = g_total.asscalar() if g_total is not None else 0.0
            if not (np.isfinite(d_value) and np.isfinite(g_value)):
                break
        objective = type(estimator.loss).__name__
        rates = 'lr %g (generator), %g (discriminator)' % (
            estimator.trainer_g.learning_rate, estimator.trainer_d.learning_rate)
        raise NonFiniteError(
            'the losses became non-finite at iteration %d (discriminator loss %s, generator '
            'loss %s), so training stopped and nothing after the last checkpoint was written; '
            'the learning rates (%s) are likely too high for the objective (%s): resume from '
            'the last checkpoint with a lower --lr (and --lr-d), or use another --loss'
            % (iteration, d_value, g_value if g_total is not None else 'not computed', rates,
               objective))

    def _generator_backward(self, disc, objective, fake, view):
        """Backpropagate ``g_loss(D(view(fake)))`` into the generator's parameters."""
        if not self.input_grad_only:
            with autograd.record():
                g_loss = [objective.g_loss(disc(x)) for x in view(fake)]
            autograd.backward(g_loss)
            return g_loss
        inputs = [f.detach() for f in fake]
        for x in inputs:
            x.attach_grad()
        with autograd.record():
            g_loss = [objective.g_loss(disc(x)) for x in view(inputs)]
        input_grads = autograd.grad(g_loss, inputs)
        autograd.backward(fake, head_grads=input_grads)
        return g_loss

    @staticmethod
    def _clip_discriminator(estimator):
        """Clip the discriminator's trained parameters into [-c, c], in place (WGAN)."""
        bound = estimator.weight_clip
        for param in estimator.net.discriminator.collect_params().values():
            if param.grad_req != 'null':
                for data in param.list_data():
                    mx.nd.clip(data, -bound, bound, out=data)

    def fit_batch(self, estimator, train_batch, batch_axis=0):
        """One training iteration: a discriminator step, then (every ``n_critic`` iterations) a
        generator step, on ``train_batch`` split over the estimator's devices.

        Parameters
        ----------
        estimator : GANEstimator
            Holds the pair, the objective, both trainers, the moving average and the position.
        train_batch : tuple of NDArray
            ``(real images,)``, NCHW in [-1, 1].
        batch_axis : int, default 0
            The batch axis of ``train_batch``.

        Returns
        -------
        tuple
            ``(real chunks, None, GANStepOutput, discriminator losses)``: MXNet's ``(data,
            label, pred, loss)`` of a step; the metrics read the :class:`GANStepOutput`.

        Raises
        ------
        NonFiniteError
            From :meth:`check_losses`, every ``check_interval`` iterations.
        """
        ctx = estimator.context
        real = split_and_load(train_batch[0], ctx_list=ctx, batch_axis=batch_axis)
        batch_size = train_batch[0].shape[batch_axis]
        z = split_and_load(mx.nd.array(estimator.latent(batch_size)), ctx_list=ctx,
                           batch_axis=batch_axis)
        gen, disc, objective = estimator.net.generator, estimator.net.discriminator, estimator.loss

        def view(chunks, part):
            """What D sees of a batch: the batch, or its augmentation of this iteration."""
            if not estimator.augment:
                return chunks
            return estimator.augment(chunks, estimator.iteration, part, estimator.shard)

        with autograd.record():
            fake = [gen(zi) for zi in z]
            real_out = [disc(x) for x in view(real, REAL)]
            fake_out = [disc(f) for f in view([f.detach() for f in fake], FAKE_FOR_D)]
            d_loss = [objective.d_loss(r, f) for r, f in zip(real_out, fake_out)]
        autograd.backward(d_loss)
        estimator.trainer_d.step(batch_size)
        if estimator.weight_clip:
            self._clip_discriminator(estimator)

        g_loss = []  # no generator step: nothing for the g_loss metric
        if (estimator.iteration + 1) % estimator.n_critic == 0:
            # g_loss passes through D, but only G is updated here: gradients for D's weights
            # would never be used (D already stepped, and its next backward overwrites them),
            # so D is differentiated only with respect to its input, the generated batch, and
            # that gradient is carried on into G's parameters.
            g_loss = self._generator_backward(disc, objective, fake,
                                              lambda chunks: view(chunks, FAKE_FOR_G))
            estimator.trainer_g.step(batch_size)
            if estimator.ema is not None:
                estimator.ema.update()

        estimator.advance()
        self._pending.append((estimator.iteration, _device_total(d_loss, ctx[0]),
                              _device_total(g_loss, ctx[0]) if g_loss else None))
        if estimator.iteration % self.check_interval == 0:
            self.check_losses(estimator)
        out = GANStepOutput(d_loss, g_loss, real_out, fake_out, objective)
        return real, None, out, d_loss

    def evaluate_batch(self, estimator, val_batch, batch_axis=0):
        raise NotImplementedError('a GAN has no validation loss; evaluate samples with '
                                  'gluoncv_gan.metrics instead')


def _device_total(losses, ctx):
    """The sum of a list of per-device loss arrays, as a 1-element array on ``ctx`` (no sync)."""
    return mx.nd.add_n(*[loss.sum().as_in_context(ctx) for loss in losses])


class GANEstimator(Estimator):
    """An ``mxnet.gluon.contrib.estimator.Estimator`` that trains a generator/discriminator pair.

    The estimator's fit loop, handler dispatch and stopping are used as they are; the
    :class:`GANBatchProcessor` does the alternating updates.

    Parameters
    ----------
    net : DCGAN
        A block with ``.generator`` and ``.discriminator`` (initialised).
    objective : GANObjective
        The GAN loss (see :mod:`gluoncv_gan.loss`).
    trainer_g, trainer_d : gluon.Trainer
        Trainers of the generator's and the discriminator's parameters.
    context : Context or list of Context
        Devices; batches are split across them.
    seed : int
        Seed of the latent vectors (see :func:`latent_batch`).
    ema : GeneratorEMA or None
        A moving average of the generator, updated after each generator step.
    train_metrics : list of EvalMetric or None
        Default: :func:`gluoncv_gan.estimator.step_metrics.gan_metrics`.
    n_critic : int, default 1
        Discriminator steps per generator step (see :class:`GANBatchProcessor`).
    weight_clip : float, default 0
        Clip the discriminator's parameters into [-weight_clip, weight_clip] after each of its
        steps (0: no clipping).
    augment : DiffAugment or None
        Augment every batch the discriminator sees, real and generated (see
        :mod:`gluoncv_gan.estimator.augment`).

    Attributes
    ----------
    epoch : int
        The epoch in progress (0-based); after training, the number of epochs completed.
    batch : int
        Batches completed in the current epoch.
    iteration : int
        Iterations completed in all.
    fit_seconds, fit_iterations : float, int
        Wall time and iterations of the last :meth:`fit` (its whole loop, handlers included).
    """

    def __init__(self, net, objective, trainer_g, trainer_d, context=None, seed=0,
                 train_metrics=None, batch_processor=None, ema=None, n_critic=1, weight_clip=0.0,
                 augment=None):
        super().__init__(
            net, objective, train_metrics=train_metrics or gan_metrics(), trainer=trainer_d,
            context=context, batch_processor=batch_processor or GANBatchProcessor())
        self.trainer_g, self.trainer_d = trainer_g, trainer_d
        self.nz = net.generator.nz
        self.seed = seed
        self.ema = ema
        self.augment = augment
        if n_critic < 1 or weight_clip < 0:
            raise ValueError('n_critic must be >= 1 and weight_clip >= 0, got %r and %r'
                             % (n_critic, weight_clip))
        self.n_critic, self.weight_clip = int(n_critic), float(weight_clip)
        self.epoch = self.batch = self.iteration = 0
        self.fit_seconds, self.fit_iterations = 0.0, 0
        self.shard = (0, 1)  # (rank, workers) in data-parallel training: see latent()

    def latent(self, batch_size):
        """Latent batch (numpy) of the iteration about to run.

        One of ``W`` data-parallel workers (``shard = (r, W)``) takes rows
        ``[r * batch_size, (r + 1) * batch_size)`` of the global batch of ``W * batch_size``.
        """
        rank, workers = self.shard
        z = latent_batch(self.seed, self.iteration, batch_size * workers, self.nz)
        return z[rank * batch_size:(rank + 1) * batch_size]

    def advance(self):
        """Count one finished iteration."""
        self.iteration += 1
        self.batch += 1

    def finish_epoch(self):
        """Count one finished epoch."""
        self.epoch += 1
        self.batch = 0

    @property
    def sampling_generator(self):
        """The generator that makes samples: the moving average when there is one."""
        return self.ema.calibrated(self.nz) if self.ema is not None else self.net.generator

    @property
    def epoch_complete(self):
        """True when every batch of the current epoch has run."""
        return self.batch >= self.batches_per_epoch

    def fit(self, train_data, total_iterations, event_handlers=None):
        """Train until ``total_iterations`` iterations have run in all (counting earlier runs).

        Parameters
        ----------
        train_data : DataLoader
            Batches (data, label); with a resumable loader, positioned at (epoch, batch).
        total_iterations : int
            Iteration count at which training stops.
        event_handlers : list of EventHandler
            Handlers; an :class:`EpochCounter` is added.
        """
        from .event_handler import EpochCounter
        self.batches_per_epoch = len(train_data)
        self.batch_size = getattr(train_data, 'batch_size', None) \
            or train_data._batch_sampler._batch_size
        remaining = total_iterations - self.iteration
        self.fit_seconds, self.fit_iterations = 0.0, 0
        if remaining <= 0:
            return
        handlers = list(event_handlers or []) + [EpochCounter()]
        start, first = time.time(), self.iteration
        super().fit(train_data, batches=remaining, event_handlers=handlers)
        self.check_losses()
        mx.nd.waitall()
        self.fit_seconds, self.fit_iterations = time.time() - start, self.iteration - first

    def check_losses(self):
        """Raise ``NonFiniteError`` if a loss not yet checked was NaN or infinite."""
        check = getattr(self.batch_processor, 'check_losses', None)
        if check is not None:
            check(self)

    def _prepare_default_handlers(self, val_data, event_handlers):
        handlers = super()._prepare_default_handlers(val_data, event_handlers)
        # The batch processor steps both trainers itself; the default update handler would
        # step the discriminator's trainer a second time. The default logging handler knows
        # one loss only; gluoncv_gan.estimator.event_handler.GANLoggingHandler replaces it.
        return [h for h in handlers if type(h) not in (GradientUpdateHandler, LoggingHandler)]
