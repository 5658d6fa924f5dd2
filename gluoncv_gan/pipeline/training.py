"""A training run: the estimator, its event handlers and the run folder, resumable."""
import logging
import os
import signal
import sys

import numpy as np

from .. import distributed
from ..data.loader import CachedBatchLoader
from ..estimator import StopOnSignal
from ..estimator import checkpoint as ckpt
from ..utils.config import ConfigError, load_config, save_config
from ..utils.fileio import atomic_path
from .assembly import build_estimator
from .build import apply_hyperparameters, build_dataset, contexts
from .side_by_side import write_side_by_side

__all__ = ['train', 'Stopped', 'log_to_files', 'resume_changes', 'setup_logging', 'save_final',
           'FROZEN_ON_RESUME']

# keys a resumed run cannot change: they shape the nets, their optimiser states, or the
# sequence of batches and latents (batch_size and the worker count: Distribution.check_resume)
FROZEN_ON_RESUME = ('model', 'nz', 'ngf', 'ndf', 'skip_excitation', 'discriminator', 'image_size',
                    'loss', 'optimizer', 'dataset', 'seed')


class Stopped(Exception):
    """Training stopped on a signal, after saving a checkpoint (``signum``: the signal)."""

    def __init__(self, signum, iteration):
        super().__init__(signum, iteration)
        self.signum, self.iteration = signum, iteration


class _ShowableFormatter(logging.Formatter):
    """A formatter whose lines any stream can write: the bytes of file names that are not UTF-8
    (which Python holds as surrogates) are shown as ``\\xNN``."""

    def format(self, record):
        text = super().format(record)
        try:
            return text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
        except UnicodeEncodeError:  # a surrogate that no file name gave
            return text.encode('utf-8', 'backslashreplace').decode('utf-8')


def setup_logging(log_file, prefix=''):
    """Root logger writing to the console and to ``log_file`` (GluonCV scripts' way).

    ``log_file`` None writes the console only (the workers of rank > 0); ``prefix`` starts
    every line (a worker's rank).
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if isinstance(handler, logging.FileHandler):  # an earlier run's log file
            handler.close()
    formatter = _ShowableFormatter('%(asctime)s ' + prefix.replace('%', '%%') + '%(message)s',
                                   '%Y-%m-%d %H:%M:%S')
    handlers = [logging.StreamHandler(sys.stdout)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.insert(0, logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return logging.getLogger('gluoncv_gan.train')


def log_to_files(logger, message):
    """Write ``message`` into the log files only (the console gets it on stderr)."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def resume_changes(saved, config):
    """{key: (saved value, new value)} of a resumed run's config; refuse the unchangeable keys.

    Raises
    ------
    ConfigError
        Naming each key that cannot change on resume, with both values.
    """
    changes = {key: (saved.get(key), value) for key, value in config.items()
               if saved.get(key, value) != value}
    frozen = [key for key in FROZEN_ON_RESUME if key in changes]
    if bool(saved.get('ema_decay')) != bool(config['ema_decay']):
        frozen.append('ema_decay')  # the average can change its decay, not appear or vanish
    if frozen:
        raise ConfigError('%s cannot change when resuming (%s); drop %s, or start a new run '
                          'with another --save-dir' % (
                              ', '.join(frozen), ', '.join('%s %r in the checkpoint, %r asked'
                                                           % (k, changes[k][0], changes[k][1])
                                                           for k in frozen),
                              ', '.join('--' + k.replace('_', '-') for k in frozen)))
    return changes


def train(config, save_dir, checkpoint=None, logger=None, progress_bar=None, dist=None):
    """Train according to ``config`` into ``save_dir``, resuming from ``checkpoint`` if given.

    ``dist`` is this process's :class:`~gluoncv_gan.distributed.Distribution` (default: joined
    from ``config``). In data-parallel training only rank 0 writes to ``save_dir``; every worker
    of a resumed run loads the same checkpoint (a filesystem shared by the workers).

    Returns
    -------
    GANEstimator
        The estimator after training (``.net`` holds the trained pair).
    """
    logger = logger or logging.getLogger('gluoncv_gan.train')
    dist = dist or distributed.setup(config)
    ctx = dist.contexts(contexts(config['gpus'], config['cpus']))
    dataset, loader = _data(config, ctx, dist, logger)
    total = len(loader) * config['epochs']
    if config['iterations']:
        total = min(total, config['iterations'])
    parts = build_estimator(config, save_dir, dataset, loader, total, ctx, dist, logger=logger,
                            progress_bar=progress_bar)
    estimator = parts.estimator
    if checkpoint:
        _resume(parts, checkpoint, config, dist, logger)
    dist.prepare_trainers(estimator.trainer_g, estimator.trainer_d)
    dist.broadcast_parameters(estimator.net)
    loader.set_position(estimator.epoch, estimator.batch)
    if estimator.iteration >= total:
        logger.info('nothing left to train: the run is at iteration %d (epoch %d) and asks for %d '
                    'iterations in all (epochs %d, iterations %s); raise --epochs or --iterations '
                    'to train further', estimator.iteration, estimator.epoch, total,
                    config['epochs'], config['iterations'])
        if dist.is_root and not os.path.exists(os.path.join(save_dir, 'model.params')):
            save_final(estimator, config, save_dir, logger)
        return estimator
    if dist.is_root:
        save_config(config, os.path.join(save_dir, 'config.yaml'))
        np.save(os.path.join(save_dir, 'fixed_noise.npy'), parts.fixed_noise)
    with StopOnSignal(agree=dist.any_worker if dist.num_workers > 1 else None) as stop:
        estimator.fit(loader, total, event_handlers=parts.handlers + [stop])
    if stop.stopping and estimator.iteration < total:
        raise Stopped(stop.signum or signal.SIGTERM, estimator.iteration)
    _finish(estimator, config, save_dir, parts.fixed_noise, ctx, dist, logger)
    return estimator


def _data(config, ctx, dist, logger):
    """(dataset, loader) of this worker: its shard, ``batch_size`` images per device."""
    dataset = build_dataset(config)
    if not len(dataset):
        raise ConfigError('none of the images of dataset %s could be decoded (each is named in a '
                          'warning above): point --data-dir at a folder of readable images'
                          % config['dataset'])
    per_worker = config['batch_size'] * len(ctx)  # batch_size is per device, as in GluonCV
    try:
        loader = CachedBatchLoader(dataset, per_worker, seed=config['seed'],
                                   num_shards=dist.num_workers, shard=dist.rank,
                                   flip=config['flip'])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    logger.info('Data: %s, %d images of %dx%d, %d batches of %d per epoch', config['dataset'],
                len(dataset), dataset.size, dataset.size, len(loader), per_worker)
    logger.info('Devices: %s on %s; global batch %d (%d per device x %d device(s) x %d '
                'worker(s))', dist.describe(), ', '.join(str(c) for c in ctx),
                per_worker * dist.num_workers, config['batch_size'], len(ctx), dist.num_workers)
    return dataset, loader


def _resume(parts, checkpoint, config, dist, logger):
    """Continue from ``checkpoint`` with ``config``'s hyperparameters, after checking that the
    job and the config may resume it."""
    state = ckpt.read_state(checkpoint)
    try:
        dist.check_resume(state['handlers'].get('job'), config['batch_size'],
                          state['config']['batch_size'])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    parts.checkpoints.resume(parts.estimator, checkpoint, state)
    # the pickled optimisers came back with the checkpoint's hyperparameters: apply the
    # config's (which holds any flag given with --resume); their moments are kept
    apply_hyperparameters(parts.estimator.trainer_g, parts.estimator.trainer_d, config)
    changes = resume_changes(load_config(None, state['config']), config)
    if changes:
        logger.info('changed on resume: %s', ', '.join(
            '%s %s -> %s' % (key, old, new) for key, (old, new) in sorted(changes.items())))
    logger.info('Resumed from %s: epoch %d, batch %d, iteration %d', checkpoint,
                state['epoch'] + 1, state['batch'], state['iteration'])


def _finish(estimator, config, save_dir, fixed_noise, ctx, dist, logger):
    """After a completed fit: traffic figures, the final weights, the comparison picture."""
    traffic = dist.traffic()
    if traffic and estimator.fit_iterations:
        logger.info('kvstore traffic of this worker: %.2f MB pushed, %.2f MB pulled per iteration',
                    traffic[0] / estimator.fit_iterations / 1e6,
                    traffic[1] / estimator.fit_iterations / 1e6)
    distributed.save_worker_parameters(estimator.net, dist)
    if dist.is_root:
        save_final(estimator, config, save_dir, logger)
        if config['compare_with']:
            write_side_by_side(os.path.join(save_dir, 'compare.png'), estimator.net.generator,
                               fixed_noise, config['compare_with'], 'this run: %d iterations on %s'
                               % (estimator.iteration, config['dataset']), ctx=ctx[0],
                               logger=logger)


def save_final(estimator, config, save_dir, logger):
    """Write ``model.params`` (and the moving average), refusing non-finite values."""
    ckpt.check_finite(estimator.net, 'model.params')
    with atomic_path(os.path.join(save_dir, 'model.params')) as tmp:
        estimator.net.save_parameters(tmp)
    if estimator.ema is not None:
        ckpt.check_finite(estimator.ema.net, 'generator_ema.params')
        with atomic_path(os.path.join(save_dir, 'generator_ema.params')) as tmp:
            estimator.ema.save(tmp)
    logger.info('Saved the trained %s pair to %s', config['model'],
                os.path.join(save_dir, 'model.params'))
