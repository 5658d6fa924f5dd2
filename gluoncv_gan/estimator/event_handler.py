"""Event handlers of GAN training, one concern each, on the estimator's event mixins."""
import json
import logging
import os
import shutil
import signal
import sys
import time

import numpy as np
from mxnet.gluon.contrib.estimator.event_handler import (BatchBegin, BatchEnd, EpochBegin,
                                                         EpochEnd, TrainBegin, TrainEnd)

from ..utils.fileio import atomic_path
from ..utils.image import make_grid, save_image
from . import checkpoint as ckpt

__all__ = ['EpochCounter', 'GANLoggingHandler', 'HandlerClock', 'SampleHandler',
           'HistoryHandler', 'EvaluationHandler', 'TensorBoardHandler',
           'LearningRateDecayHandler', 'StopOnSignal', 'metric_values']


def _short(name):
    return name.replace('training ', '', 1)


def metric_values(metrics):
    """{name: running mean since the epoch began} of the estimator's training metrics."""
    return {_short(m.name): m.get()[1] for m in metrics}


def _format_duration(seconds):
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return '%dh%02dm%02ds' % (hours, minutes, secs) if hours else '%dm%02ds' % (minutes, secs)


class EpochCounter(EpochEnd):
    """Counts finished epochs on the estimator, after every other epoch-end handler."""

    def __init__(self, priority=np.inf):
        """Create the handler.

        Parameters
        ----------
        priority : float, default inf
            Order among the epoch-end handlers: last, so that they all see the epoch unfinished.
        """
        self.priority = priority

    def epoch_end(self, estimator, *args, **kwargs):
        if estimator.epoch_complete:
            estimator.finish_epoch()


class StopOnSignal(BatchEnd, EpochEnd):
    """Stop training cleanly when SIGINT (Ctrl-C) or SIGTERM arrives.

    Used as a context manager around ``fit``: while it is active, the first signal only sets
    :attr:`signum`; the iteration in progress finishes, then the estimator stops (the epoch-end
    handlers run, so the checkpoint handler saves the position). A second signal gets the
    default action and ends the process at once (what is on disk stays whole: every file is
    written atomically).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, agree=None, priority=-np.inf):
        """Create the handler.

        Parameters
        ----------
        agree : callable or None
            ``agree(flag)`` returns True on every data-parallel worker when the flag is true on
            any (:meth:`gluoncv_gan.distributed.Distribution.any_worker`), so that all stop after
            the same iteration; None: this process alone.
        priority : float, default -inf
            Order among the handlers: first, so that a stop is seen by all the others.
        """
        self.priority = priority
        self.agree = agree or bool
        self.signum = None
        self.stopping = False
        self._previous = {}

    def _on_signal(self, signum, frame):
        self.signum = signum
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        logging.getLogger('gluoncv_gan.train').warning(
            'Received %s: stopping after this iteration (again to abort at once)',
            signal.Signals(signum).name)

    def __enter__(self):
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        return False

    def batch_end(self, estimator, *args, **kwargs):
        self.stopping = self.agree(self.signum is not None)
        return self.stopping

    def epoch_end(self, estimator, *args, **kwargs):
        return self.stopping


class HandlerClock(BatchEnd, EpochEnd):
    """Marks when an iteration's or an epoch's training is done, before the other handlers run.

    It runs right after the estimator's metric handler; :class:`GANLoggingHandler`, which runs
    last, leaves the time in between (evaluation, sample grids, checkpoints, the report...) out
    of the speed and the ETA. Where handlers may work (every epoch end, and the iterations that
    are multiples of ``sync_intervals``) it first waits for MXNet's queued computation, which
    belongs to training.
    """

    def __init__(self, sync_intervals=(), priority=-999):
        """Create the handler.

        Parameters
        ----------
        sync_intervals : sequence of int
            Iterations at whose multiples other handlers may work (0 entries are ignored).
        priority : int, default -999
            Order among the handlers: right after the estimator's metric handler.
        """
        self.sync_intervals = [i for i in sync_intervals if i]
        self.priority = priority
        self.started = None

    def _mark(self, sync):
        if sync:
            import mxnet as mx
            mx.nd.waitall()
        self.started = time.time()

    def batch_end(self, estimator, *args, **kwargs):
        self._mark(any(estimator.iteration % i == 0 for i in self.sync_intervals))
        return False

    def epoch_end(self, estimator, *args, **kwargs):
        self._mark(True)
        return False


class GANLoggingHandler(TrainBegin, TrainEnd, EpochBegin, EpochEnd, BatchBegin, BatchEnd):
    """The tutorial's log line every ``log_interval`` iterations, epoch summaries, a progress bar.

    Speed and ETA count training time only when :attr:`clock` (a :class:`HandlerClock`) is among
    the estimator's handlers: the other handlers' time is then left out.
    """

    def __init__(self, log_interval, total_iterations, batches_per_epoch, logger=None,
                 progress_bar=None, priority=np.inf, num_workers=1, sync_intervals=()):
        """Create the handler.

        Parameters
        ----------
        log_interval : int
            Iterations between log lines.
        total_iterations : int
            Iterations of the whole run (for the ETA).
        batches_per_epoch : int
            Iterations per epoch.
        logger : logging.Logger or None
            Where lines go (the training script's root logger writes the console and the log file).
        progress_bar : bool or None
            A tqdm bar on stderr; None shows it when stderr is a terminal.
        num_workers : int, default 1
            Data-parallel workers: the speed is also given in all (the workers run in step).
        sync_intervals : tuple of int
            Intervals (iterations) at which other handlers work at a batch end (sample grids,
            checkpoints), for :attr:`clock`.
        priority : float, default inf
            Order among the handlers: last, after every other handler's work.
        """
        self.log_interval, self.num_workers = log_interval, num_workers
        self.total_iterations, self.batches_per_epoch = total_iterations, batches_per_epoch
        self.logger = logger or logging.getLogger('gluoncv_gan.train')
        self.progress_bar = sys.stderr.isatty() if progress_bar is None else progress_bar
        self.priority = priority
        self._bar = None
        self.clock = HandlerClock((log_interval,) + tuple(sync_intervals))
        self._paused = self._epoch_paused = 0.0

    def _count_pause(self):
        """Add the time since :attr:`clock` marked the end of training work to the pauses."""
        if self.clock.started is not None:
            pause = time.time() - self.clock.started
            self._paused += pause
            self._epoch_paused += pause
            self.clock.started = None

    def train_begin(self, estimator, *args, **kwargs):
        self._train_start = self._tic = time.time()
        self._paused = 0.0
        self.clock.started = None
        self._start_iteration = self._tic_iteration = estimator.iteration
        self.logger.info('Training from iteration %d (epoch %d, batch %d) to iteration %d',
                         estimator.iteration, estimator.epoch + 1, estimator.batch,
                         self.total_iterations)

    def epoch_begin(self, estimator, *args, **kwargs):
        self._epoch_start = time.time()
        self._epoch_paused = 0.0
        self._epoch_start_iteration = estimator.iteration
        if self.progress_bar:
            from tqdm import tqdm
            self._bar = tqdm(total=self.batches_per_epoch, initial=estimator.batch,
                             desc='epoch %d' % (estimator.epoch + 1), unit='it', leave=False)

    def batch_begin(self, estimator, *args, **kwargs):
        pass

    def batch_end(self, estimator, *args, **kwargs):
        self._count_pause()
        if self._bar is not None:
            self._bar.update(1)
        if estimator.iteration % self.log_interval:
            return False
        batch_size = kwargs['batch'][0].shape[0]
        # MXNet runs asynchronously: without waiting, a process whose loop nothing synchronises
        # (e.g. a worker of rank > 0) would time the queueing of its iterations
        import mxnet as mx
        mx.nd.waitall()
        now = time.time()
        training = now - self._tic - self._paused  # without the other handlers' time
        speed = batch_size * (estimator.iteration - self._tic_iteration) / max(training, 1e-9)
        self._tic, self._tic_iteration, self._paused = now, estimator.iteration, 0.0
        values = metric_values(estimator.train_metrics)
        eta = (self.total_iterations - estimator.iteration) * batch_size / max(speed, 1e-9)
        speed_text = '%.1f samples/s' % speed
        if self.num_workers > 1:
            speed_text += ' per worker, %.1f in all' % (speed * self.num_workers)
        self.logger.info(
            'speed: %s, discriminator loss = %.4f, generator loss = %.4f, binary '
            'training acc = %.4f (real %.3f, fake %.3f), D(x) = %.3f, D(G(z)) = %.3f at iter %d '
            'epoch %d, ETA %s', speed_text, values['d_loss'], values['g_loss'], values['d_acc'],
            values['d_acc_real'], values['d_acc_fake'], values['D(x)'], values['D(G(z))'],
            estimator.iteration, estimator.epoch + 1, _format_duration(eta))
        return False

    def epoch_end(self, estimator, *args, **kwargs):
        self._count_pause()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if not estimator.epoch_complete:
            return False
        elapsed = time.time() - self._epoch_start
        done = estimator.iteration - self._epoch_start_iteration
        values = metric_values(estimator.train_metrics)
        self.logger.info('[Epoch %d] finished in %.1f s (%d iterations, %.1f samples/s; %.1f s of '
                         'it in evaluation, samples, checkpoints and report): %s',
                         estimator.epoch + 1, elapsed, done,
                         done * estimator.batch_size / max(elapsed - self._epoch_paused, 1e-9),
                         self._epoch_paused, ', '.join('%s=%.4f' % kv for kv in values.items()))
        return False

    def train_end(self, estimator, *args, **kwargs):
        elapsed = time.time() - self._train_start
        self.logger.info('Training finished: %d iterations in %.1f s (%d epochs completed)',
                         estimator.iteration - self._start_iteration, elapsed, estimator.epoch)


class LearningRateDecayHandler(BatchBegin):
    """Linear decay of learning rates to zero over the last ``decay_iterations`` of a run.

    Before iteration ``i`` (counted from the start of the run) every trainer's rate is its base
    rate times ``min(1, (total_iterations - i) / decay_iterations)``, so the last iteration runs
    at ``1 / decay_iterations`` of it. The rate depends on the iteration alone, so a resumed run
    continues the same schedule; resuming with more epochs moves the decay to the new end.
    """

    def __init__(self, trainers, base_rates, total_iterations, decay_iterations):
        """Create the handler.

        Parameters
        ----------
        trainers : list of Trainer
            Trainers whose rates decay.
        base_rates : list of float
            Their undecayed rates (from the config: a resumed trainer holds a decayed one).
        total_iterations : int
            Iterations of the whole run.
        decay_iterations : int
            Length of the decay, in iterations (positive).
        """
        if decay_iterations <= 0:
            raise ValueError('decay_iterations must be positive, got %r' % decay_iterations)
        self.trainers, self.base_rates = list(trainers), list(base_rates)
        self.total_iterations, self.decay_iterations = total_iterations, decay_iterations

    def factor(self, iteration):
        """The multiplier of the base rates before ``iteration``."""
        remaining = self.total_iterations - iteration
        return min(1.0, max(remaining, 0) / float(self.decay_iterations))

    def batch_begin(self, estimator, *args, **kwargs):
        factor = self.factor(estimator.iteration)
        for trainer, base in zip(self.trainers, self.base_rates):
            trainer.set_learning_rate(base * factor)


class SampleHandler(TrainBegin, BatchEnd, EpochEnd, TrainEnd):
    """Sample grids from a fixed latent batch, every epoch and every ``interval`` iterations.

    Writes ``samples/real.png`` (real training images) at the start, ``samples/epoch-EEEE.png``
    and ``samples/iter-IIIIIIII.png``, and keeps ``samples/latest.png`` a copy of the newest.
    """

    def __init__(self, folder, fixed_noise, interval=0, real_images=None, priority=500):
        """Create the handler.

        Parameters
        ----------
        folder : str
            The samples folder.
        fixed_noise : numpy.ndarray
            Latent batch (N, nz, 1, 1), the same for the whole run.
        interval : int
            Iterations between grids (0: per epoch only).
        real_images : numpy.ndarray or None
            uint8 NHWC images for ``real.png``.
        priority : int, default 500
            Order among the handlers.
        """
        self.folder, self.fixed_noise, self.interval = folder, fixed_noise, interval
        self.real_images = real_images
        self.priority = priority
        self.latest = os.path.join(folder, 'latest.png')

    def render(self, estimator):
        """The generator's images of the fixed latent batch, in inference mode (uint8 grid)."""
        import mxnet as mx
        ctx = estimator.context[0]
        with mx.autograd.predict_mode():
            images = estimator.sampling_generator(mx.nd.array(self.fixed_noise, ctx=ctx))
        return make_grid(images)

    def _write(self, estimator, name):
        path = save_image(os.path.join(self.folder, name), self.render(estimator))
        with atomic_path(self.latest) as tmp:
            shutil.copyfile(path, tmp)
        return path

    def train_begin(self, estimator, *args, **kwargs):
        os.makedirs(self.folder, exist_ok=True)
        if self.real_images is not None:
            save_image(os.path.join(self.folder, 'real.png'), make_grid(self.real_images))

    def batch_end(self, estimator, *args, **kwargs):
        if self.interval and estimator.iteration % self.interval == 0:
            self._write(estimator, 'iter-%08d.png' % estimator.iteration)
        return False

    def epoch_end(self, estimator, *args, **kwargs):
        if estimator.epoch_complete:
            self._write(estimator, 'epoch-%04d.png' % (estimator.epoch + 1))
        return False

    def train_end(self, estimator, *args, **kwargs):
        # a run that stopped mid-epoch still ends with a grid of its final state
        final = 'iter-%08d.png' % estimator.iteration
        if not os.path.exists(os.path.join(self.folder, final)) and estimator.batch > 0:
            self._write(estimator, final)


class HistoryHandler(BatchEnd, EpochEnd):
    """Loss and accuracy curves: recorded every ``log_interval`` iterations, plotted each epoch.

    Keeps ``history.json`` (one row per log point: iteration, epoch (1-based: the epoch in
    progress), and each metric's mean over the iterations since the previous row) and
    ``curves.png`` in the run folder. Its rows are saved in checkpoints, so a resumed run's
    curves continue without a gap or a repeat.
    """

    def __init__(self, run_dir, log_interval, priority=400):
        """Create the handler.

        Parameters
        ----------
        run_dir : str
            The run folder (``history.json``, ``curves.png``).
        log_interval : int
            Iterations between rows.
        priority : int, default 400
            Order among the epoch-end handlers (after the samples, before evaluation).
        """
        self.run_dir, self.log_interval, self.priority = run_dir, log_interval, priority
        self.rows = []
        self._last = None
        self.panel_sources = []  # callables returning {title: [(label, xs, ys), ...]}

    def get_state(self):
        return {'rows': self.rows}

    def set_state(self, state):
        self.rows = list(state.get('rows', []))

    def _snapshot(self, estimator):
        return {_short(m.name): m.get_state() for m in estimator.train_metrics}

    def batch_end(self, estimator, *args, **kwargs):
        if estimator.iteration % self.log_interval:
            return False
        now = self._snapshot(estimator)
        row = {'iteration': estimator.iteration, 'epoch': estimator.epoch + 1}
        for name, state in now.items():
            before = (self._last or {}).get(name, {'sum': 0.0, 'num': 0})
            if before['num'] > state['num']:  # the metrics were reset at an epoch start
                before = {'sum': 0.0, 'num': 0}
            num = state['num'] - before['num']
            row[name] = (state['sum'] - before['sum']) / num if num else float('nan')
        self.rows.append(row)
        self._last = now
        return False

    def epoch_end(self, estimator, *args, **kwargs):
        self._last = None
        self.save()
        return False

    def save(self):
        with atomic_path(os.path.join(self.run_dir, 'history.json')) as tmp:
            with open(tmp, 'w') as f:
                json.dump(self.rows, f)
        if self.rows:
            extra = {}
            for source in self.panel_sources:
                extra.update(source())
            self.plot(os.path.join(self.run_dir, 'curves.png'), extra)

    def plot(self, path, extra_series=None):
        """Plot losses, accuracies and D outputs against iterations into ``path``."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        it = [r['iteration'] for r in self.rows]
        panels = [('loss', ['d_loss', 'g_loss']), ('discriminator accuracy',
                                                    ['d_acc', 'd_acc_real', 'd_acc_fake']),
                  ('discriminator output', ['D(x)', 'D(G(z))'])]
        panels += list((extra_series or {}).items())
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
        for ax, (title, names) in zip(np.atleast_1d(axes), panels):
            for name in names:
                if isinstance(name, tuple):
                    name, xs, ys = name
                    ax.plot(xs, ys, marker='o', label=name)
                elif name in self.rows[0]:
                    ax.plot(it, [r[name] for r in self.rows], label=name, linewidth=1)
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(loc='best', fontsize='small')
        np.atleast_1d(axes)[-1].set_xlabel('iteration')
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format='png', dpi=80)
        plt.close(fig)


class EvaluationHandler(TrainBegin, EpochEnd):
    """Evaluate the generator every ``interval`` epochs and mark the best checkpoint.

    As MXNet's ``ValidationHandler`` takes its ``eval_fn``, this handler is given what it
    measures: ``eval_fn(generator, nz, ctx)`` returns the metrics of a generator (the
    moving-average one when training keeps one) as a dict with at least ``swd``, ``swd_levels``,
    ``face_rate``, ``diversity`` and ``sharpness``, and ``fid``, ``kid``/``kid_std``,
    ``precision``/``recall`` when it measures those (training passes
    :class:`gluoncv_gan.pipeline.evaluation.GeneratorEvaluation`). Results are logged, plotted
    in ``curves.png`` and kept in ``evaluation.json``; the epoch's checkpoint is marked best in
    ``best.json`` when its ``best_by`` metric is the lowest so far, and is then kept whatever
    ``keep_checkpoints`` says (DCGAN quality peaks and then degrades).
    """

    def __init__(self, run_dir, eval_fn, checkpoints, num_samples=2000, interval=1,
                 best_by='swd', real_face_rate=None, logger=None, priority=350):
        """Create the handler.

        Parameters
        ----------
        run_dir : str
            The run folder.
        eval_fn : callable
            ``eval_fn(generator, nz, ctx)`` -> dict of metrics, as above.
        checkpoints : RunCheckpointHandler
            Whose next epoch-end checkpoint is the one evaluated.
        num_samples : int
            Generated images per evaluation (for the log line).
        interval : int
            Epochs between evaluations.
        best_by : str
            The metric (lower is better) that picks the best checkpoint: ``swd`` or ``fid``.
        real_face_rate : callable or None
            Returns the face-detection rate of the real images compared with, shown beside the
            generated one; called once (its value is kept in the handler's state).
        logger : logging.Logger or None
            Where the evaluation lines go.
        priority : int
            Order among the epoch-end handlers (after samples and history, before checkpoints).
        """
        self.run_dir, self.eval_fn, self.checkpoints = run_dir, eval_fn, checkpoints
        self.num_samples, self.interval, self.best_by = num_samples, interval, best_by
        self.real_face_rate = real_face_rate
        self.logger = logger or logging.getLogger('gluoncv_gan.train')
        self.priority = priority
        self.rows, self.best = [], None
        self.face_rate_real = None

    def get_state(self):
        return {'rows': self.rows, 'best': self.best, 'face_rate_real': self.face_rate_real}

    def set_state(self, state):
        self.rows = list(state.get('rows', []))
        self.best = state.get('best')
        self.face_rate_real = state.get('face_rate_real')
        if self.best:
            self.checkpoints.protect = {self.best['checkpoint']}

    def panels(self):
        """Series for the curves plot: SWD, FID (when measured) and face rate against
        iterations."""
        if not self.rows:
            return {}
        its = [r['iteration'] for r in self.rows]
        out = {'sliced Wasserstein distance x1e3 (lower is better)':
               [('swd', its, [r['swd'] for r in self.rows])]}
        fid = [(r['iteration'], r['fid']) for r in self.rows if 'fid' in r]
        if fid:
            out['FID (lower is better)'] = [('fid', [i for i, _ in fid], [v for _, v in fid])]
        out['face-detection rate'] = [('generated', its, [r['face_rate'] for r in self.rows]),
                                      ('real', its, [self.face_rate_real] * len(its))]
        return out

    def train_begin(self, estimator, *args, **kwargs):
        if self.face_rate_real is None and self.real_face_rate is not None:
            self.face_rate_real = self.real_face_rate()

    def evaluate(self, estimator):
        """Metrics of the current (sampling) generator: what ``eval_fn`` returns."""
        return dict(self.eval_fn(estimator.sampling_generator, estimator.nz,
                                 estimator.context[0]))

    def epoch_end(self, estimator, *args, **kwargs):
        if not estimator.epoch_complete or (estimator.epoch + 1) % self.interval:
            return False
        start = time.time()
        result = self.evaluate(estimator)
        result.update(epoch=estimator.epoch + 1, iteration=estimator.iteration,
                      seconds=round(time.time() - start, 1))
        self.rows.append(result)
        self.logger.info('[Epoch %d] evaluation on %d samples (%.1f s): SWD x1e3 = %.2f %s, '
                         'face rate = %.3f (real %.3f), diversity = %.4f, sharpness = %.3f%s',
                         result['epoch'], self.num_samples, result['seconds'], result['swd'],
                         ['%.1f' % v for v in result['swd_levels']], result['face_rate'],
                         self.face_rate_real, result['diversity'], result['sharpness'],
                         _inception_summary(result))
        metric = self.best_by
        if self.best is None or self.best.get(metric) is None \
                or result[metric] < self.best[metric]:
            path = os.path.join(self.checkpoints.folder, ckpt.checkpoint_name(estimator.iteration))
            self.best = {metric: result[metric], 'metric': metric, 'epoch': result['epoch'],
                         'iteration': estimator.iteration, 'checkpoint': path}
            if metric != 'swd':
                self.best['swd'] = result['swd']
            self.checkpoints.protect = {path}  # the epoch-end checkpoint written next
            self.logger.info('[Epoch %d] best %s so far: %s', result['epoch'], metric.upper(),
                             path)
        for name, value in (('evaluation.json', self.rows), ('best.json', self.best)):
            with atomic_path(os.path.join(self.run_dir, name)) as tmp:
                with open(tmp, 'w') as f:
                    json.dump(value, f, indent=1)
        return False


def _inception_summary(result):
    parts = []
    if 'fid' in result:
        parts.append('FID = %.2f' % result['fid'])
    if 'kid' in result:
        parts.append('KID x1e3 = %.2f' % (1e3 * result['kid']))
    if 'precision' in result:
        parts.append('precision / recall = %.3f / %.3f' % (result['precision'],
                                                          result['recall']))
    return ''.join(', ' + p for p in parts)


class TensorBoardHandler(TrainBegin, BatchEnd, EpochEnd, TrainEnd):
    """Scalars and sample grids for TensorBoard through mxboard, when mxboard is installed.

    Without mxboard it does nothing (:attr:`available` is False).
    """

    def __init__(self, logdir, log_interval, sample_handler=None, priority=700):
        """Create the handler.

        Parameters
        ----------
        logdir : str
            mxboard's log folder.
        log_interval : int
            Iterations between scalar points.
        sample_handler : SampleHandler or None
            Renders the epoch's sample grid (None: no images).
        priority : int, default 700
            Order among the handlers.
        """
        self.logdir, self.log_interval = logdir, log_interval
        self.sample_handler, self.priority = sample_handler, priority
        try:
            from mxboard import SummaryWriter
        except ImportError:
            self.available, self._writer_class = False, None
        else:
            self.available, self._writer_class = True, SummaryWriter
        self.writer = None

    def train_begin(self, estimator, *args, **kwargs):
        if self.available:
            self.writer = self._writer_class(logdir=self.logdir)

    def batch_end(self, estimator, *args, **kwargs):
        if self.writer is not None and estimator.iteration % self.log_interval == 0:
            for name, value in metric_values(estimator.train_metrics).items():
                self.writer.add_scalar(name, value, global_step=estimator.iteration)
        return False

    def epoch_end(self, estimator, *args, **kwargs):
        if self.writer is not None and self.sample_handler is not None:
            grid = self.sample_handler.render(estimator)
            self.writer.add_image('samples', np.moveaxis(grid, -1, 0),
                                  global_step=estimator.iteration)
        return False

    def train_end(self, estimator, *args, **kwargs):
        if self.writer is not None:
            self.writer.close()
