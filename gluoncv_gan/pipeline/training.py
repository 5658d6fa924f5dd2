"""A training run: the estimator, its event handlers and the run folder, resumable."""
import logging
import os
import signal
import sys

import numpy as np

from .. import distributed
from ..data.loader import CachedBatchLoader
from ..estimator import (CheckpointHandler, EvaluationHandler, GANEstimator, GANLoggingHandler,
                         GeneratorEMA, HistoryHandler, LearningRateDecayHandler, ReportHandler,
                         SampleHandler, StopOnSignal, TensorBoardHandler)
from ..estimator import checkpoint as ckpt
from ..estimator.augment import DiffAugment
from ..estimator.gan_estimator import GANBatchProcessor
from ..loss import get_objective
from ..metrics.inception import FIDUnavailable, reference_features
from ..model_zoo import get_model
from ..utils.config import ConfigError, arch_kwargs, load_config, save_config
from ..utils.fileio import atomic_path
from .build import (apply_hyperparameters, build_dataset, build_net, build_trainers, contexts,
                    fixed_noise_for)
from .side_by_side import write_side_by_side

__all__ = ['train', 'Stopped', 'resume_changes', 'setup_logging', 'save_final',
           'FROZEN_ON_RESUME']

# keys a resumed run cannot change: they shape the nets, their optimiser states, or the
# sequence of batches and latents (batch_size and the worker count: Distribution.check_resume)
FROZEN_ON_RESUME = ('model', 'nz', 'ngf', 'ndf', 'skip_excitation', 'image_size', 'loss',
                    'optimizer', 'dataset', 'seed')


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

    net = build_net(config, ctx)
    trainer_g, trainer_d = build_trainers(net, config, dist.make_trainer)
    ema = None
    if config['ema_decay'] and dist.is_root:
        def factory():
            return get_model(config['model'], **arch_kwargs(config)).generator
        ema = GeneratorEMA(net.generator, factory, config['ema_decay'], ctx=ctx[0])
    estimator = GANEstimator(net, get_objective(config['loss']), trainer_g, trainer_d,
                             context=ctx, seed=config['seed'], ema=ema,
                             n_critic=config['n_critic'], weight_clip=config['weight_clip'],
                             augment=DiffAugment(config['augment'], seed=config['seed']),
                             batch_processor=GANBatchProcessor(
                                 check_interval=config['log_interval']))
    estimator.shard = dist.shard
    fixed_noise = fixed_noise_for(config)
    history = HistoryHandler(save_dir, config['log_interval'])
    checkpoints = CheckpointHandler(os.path.join(save_dir, 'checkpoints'), fixed_noise, config,
                                    interval=config['checkpoint_interval'],
                                    keep=config['keep_checkpoints'],
                                    stateful={'history': history, 'job': dist})
    evaluation = None
    if config['eval_interval'] and dist.is_root:
        metrics = [m.strip() for m in config['eval_metrics'].split(',') if m.strip()]
        evaluation = EvaluationHandler(save_dir, dataset.images, checkpoints,
                                       num_samples=config['eval_samples'],
                                       interval=config['eval_interval'], seed=config['seed'],
                                       logger=logger, metrics=metrics,
                                       real_features=_real_features(dataset.images, metrics))
        checkpoints.stateful['evaluation'] = evaluation
        history.panel_sources.append(evaluation.panels)
    if checkpoint:
        state = ckpt.read_state(checkpoint)
        try:
            dist.check_resume(state['handlers'].get('job'), config['batch_size'],
                              state['config']['batch_size'])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        net.load_parameters(os.path.join(checkpoint, 'model.params'), ctx=ctx)
        trainer_g.load_states(os.path.join(checkpoint, 'trainer_g.states'))
        trainer_d.load_states(os.path.join(checkpoint, 'trainer_d.states'))
        # the pickled optimisers came back with the checkpoint's hyperparameters: apply the
        # config's (which holds any flag given with --resume); their moments are kept
        apply_hyperparameters(trainer_g, trainer_d, config)
        changes = resume_changes(load_config(None, state['config']), config)
        if changes:
            logger.info('changed on resume: %s', ', '.join(
                '%s %s -> %s' % (key, old, new) for key, (old, new) in sorted(changes.items())))
        fixed_noise[...] = np.load(os.path.join(checkpoint, 'fixed_noise.npy'))
        if ema is not None:
            ema.load(os.path.join(checkpoint, 'generator_ema.params'))
        estimator.epoch, estimator.batch = state['epoch'], state['batch']
        estimator.iteration = state['iteration']
        history.set_state(state['handlers'].get('history', {}))
        if evaluation is not None:
            evaluation.set_state(state['handlers'].get('evaluation', {}))
        checkpoints.restore_running_means(state['metrics'])
        logger.info('Resumed from %s: epoch %d, batch %d, iteration %d', checkpoint,
                    state['epoch'] + 1, state['batch'], state['iteration'])
    dist.prepare_trainers(trainer_g, trainer_d)
    dist.broadcast_parameters(net)
    loader.set_position(estimator.epoch, estimator.batch)

    total = len(loader) * config['epochs']
    if config['iterations']:
        total = min(total, config['iterations'])
    if estimator.iteration >= total:
        logger.info('nothing left to train: the run is at iteration %d (epoch %d) and asks for %d '
                    'iterations in all (epochs %d, iterations %s); raise --epochs or --iterations '
                    'to train further', estimator.iteration, estimator.epoch, total,
                    config['epochs'], config['iterations'])
        if dist.is_root and not os.path.exists(os.path.join(save_dir, 'model.params')):
            save_final(estimator, config, save_dir, logger)
        return estimator
    real = dataset.images[loader.epoch_indices(0)[:config['num_samples']]]
    samples = SampleHandler(os.path.join(save_dir, 'samples'), fixed_noise,
                            interval=config['sample_interval'], real_images=real)
    logging_handler = GANLoggingHandler(
        config['log_interval'], total, len(loader), logger=logger, progress_bar=progress_bar,
        num_workers=dist.num_workers,
        sync_intervals=(config['sample_interval'], config['checkpoint_interval']))
    handlers = [logging_handler, logging_handler.clock]
    if config['lr_decay_epochs'] * len(loader) > total:
        raise ConfigError('lr_decay_epochs (%d epochs, %d iterations) is longer than the run (%d '
                          'iterations): lower --lr-decay-epochs or raise --epochs'
                          % (config['lr_decay_epochs'], config['lr_decay_epochs'] * len(loader),
                             total))
    if config['lr_decay_epochs']:
        handlers.append(LearningRateDecayHandler(
            [trainer_g, trainer_d], [config['lr'], config['lr_d'] or config['lr']], total,
            config['lr_decay_epochs'] * len(loader)))
    if dist.is_root:  # the other workers write nothing
        handlers += [samples, history, checkpoints] + ([evaluation] if evaluation else [])
        handlers.append(ReportHandler(save_dir, fixed_noise, dataset.images, total, len(loader)))
        if config['tensorboard']:
            board = TensorBoardHandler(os.path.join(save_dir, 'tensorboard'),
                                       config['log_interval'], sample_handler=samples)
            if board.available:
                handlers.append(board)
        save_config(config, os.path.join(save_dir, 'config.yaml'))
        np.save(os.path.join(save_dir, 'fixed_noise.npy'), fixed_noise)

    with StopOnSignal(agree=dist.any_worker if dist.num_workers > 1 else None) as stop:
        estimator.fit(loader, total, event_handlers=handlers + [stop])
    if stop.stopping and estimator.iteration < total:
        raise Stopped(stop.signum or signal.SIGTERM, estimator.iteration)
    traffic = dist.traffic()
    if traffic and estimator.fit_iterations:
        logger.info('kvstore traffic of this worker: %.2f MB pushed, %.2f MB pulled per iteration',
                    traffic[0] / estimator.fit_iterations / 1e6,
                    traffic[1] / estimator.fit_iterations / 1e6)
    distributed.save_worker_parameters(net, dist)
    if dist.is_root:
        save_final(estimator, config, save_dir, logger)
        if config['compare_with']:
            write_side_by_side(os.path.join(save_dir, 'compare.png'), net.generator, fixed_noise,
                               config['compare_with'], 'this run: %d iterations on %s'
                               % (estimator.iteration, config['dataset']), ctx=ctx[0],
                               logger=logger)
    return estimator


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


def _real_features(images, metrics):
    """Inception features of the training images when FID, KID or PR are evaluated, else None
    (computed once and cached: :func:`~gluoncv_gan.metrics.inception.reference_features`)."""
    if not any(m in ('fid', 'kid', 'pr') for m in metrics):
        return None
    try:
        return reference_features(np.asarray(images))[0]
    except FIDUnavailable as err:
        raise ConfigError('eval_metrics asks for %s: %s' % (','.join(metrics), err)) from None
