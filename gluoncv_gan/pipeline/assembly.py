"""The estimator of a training run with its event handlers, built from a config in one place:
what :func:`~gluoncv_gan.pipeline.training.train` fits and what ``python -m
gluoncv_gan.benchmark`` times."""
import os
from collections import namedtuple

import numpy as np

from ..estimator import (EvaluationHandler, GANBatchProcessor, GANEstimator, GANLoggingHandler,
                         GeneratorEMA, HistoryHandler, LearningRateDecayHandler, ReportHandler,
                         RunCheckpointHandler, SampleHandler, TensorBoardHandler)
from ..estimator.augment import DiffAugment
from ..loss import get_objective
from ..metrics.inception import FIDUnavailable, reference_features
from ..model_zoo import get_model
from ..utils.config import ConfigError, arch_kwargs
from .build import build_net, build_trainers, fixed_noise_for
from .evaluation import GeneratorEvaluation

__all__ = ['TrainingParts', 'build_estimator']

TrainingParts = namedtuple('TrainingParts', 'estimator handlers checkpoints fixed_noise')


def build_estimator(config, save_dir, dataset, loader, total, ctx, dist, logger=None,
                    progress_bar=None):
    """The estimator of ``config`` and every handler training attaches to it.

    Parameters
    ----------
    config : dict
        A resolved config (:func:`gluoncv_gan.utils.config.load_config`).
    save_dir : str
        The run folder the handlers write.
    dataset, loader : LFW or FaceFolder, CachedBatchLoader
        The training images (``.images``: uint8 NHWC) and what the estimator is fitted on.
    total : int
        Iterations of the whole run.
    ctx, dist : list of Context, Distribution
        This worker's devices and its place in the job (only the root writes files).
    logger, progress_bar : logging.Logger or None, bool or None
        Where the log lines go; a tqdm bar (None: when stderr is a terminal).

    Returns
    -------
    TrainingParts
        ``estimator``, ``handlers`` (the list for ``fit``), ``checkpoints`` (the
        :class:`RunCheckpointHandler`, which also resumes) and ``fixed_noise``.
    """
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
    checkpoints = RunCheckpointHandler(os.path.join(save_dir, 'checkpoints'), fixed_noise, config,
                                       interval=config['checkpoint_interval'],
                                       keep=config['keep_checkpoints'],
                                       stateful={'history': history, 'job': dist})
    logging_handler = GANLoggingHandler(
        config['log_interval'], total, len(loader), logger=logger, progress_bar=progress_bar,
        num_workers=dist.num_workers,
        sync_intervals=(config['sample_interval'], config['checkpoint_interval']))
    handlers = [logging_handler, logging_handler.clock] + _rate_decay(config, estimator, loader,
                                                                      total)
    if dist.is_root:  # the other workers write nothing
        samples = SampleHandler(os.path.join(save_dir, 'samples'), fixed_noise,
                                interval=config['sample_interval'],
                                real_images=dataset.images[
                                    loader.epoch_indices(0)[:config['num_samples']]])
        handlers += [samples, history, checkpoints]
        handlers += _evaluation(config, save_dir, dataset, checkpoints, history, logger)
        handlers.append(ReportHandler(save_dir, fixed_noise, dataset.images, total, len(loader)))
        if config['tensorboard']:
            board = TensorBoardHandler(os.path.join(save_dir, 'tensorboard'),
                                       config['log_interval'], sample_handler=samples)
            handlers += [board] if board.available else []
    return TrainingParts(estimator, handlers, checkpoints, fixed_noise)


def _rate_decay(config, estimator, loader, total):
    """[LearningRateDecayHandler] when the config decays the rates, else []."""
    decay = config['lr_decay_epochs'] * len(loader)
    if decay > total:
        raise ConfigError('lr_decay_epochs (%d epochs, %d iterations) is longer than the run (%d '
                          'iterations): lower --lr-decay-epochs or raise --epochs'
                          % (config['lr_decay_epochs'], decay, total))
    if not decay:
        return []
    return [LearningRateDecayHandler([estimator.trainer_g, estimator.trainer_d],
                                     [config['lr'], config['lr_d']], total, decay)]


def _evaluation(config, save_dir, dataset, checkpoints, history, logger):
    """[EvaluationHandler] when the config evaluates during training, else []; its state is
    saved with the checkpoints and its curves go into the history plot."""
    if not config['eval_interval']:
        return []
    metrics = [m.strip() for m in config['eval_metrics'].split(',') if m.strip()]
    measure = GeneratorEvaluation(dataset.images, config['eval_samples'], seed=config['seed'],
                                  metrics=metrics,
                                  real_features=_real_features(dataset.images, metrics))
    evaluation = EvaluationHandler(save_dir, measure, checkpoints,
                                   num_samples=config['eval_samples'],
                                   interval=config['eval_interval'], best_by=measure.best_by,
                                   real_face_rate=measure.real_face_rate, logger=logger)
    checkpoints.stateful['evaluation'] = evaluation
    history.panel_sources.append(evaluation.panels)
    return [evaluation]


def _real_features(images, metrics):
    """Inception features of the training images when FID, KID or PR are evaluated, else None
    (computed once and cached: :func:`~gluoncv_gan.metrics.inception.reference_features`)."""
    if not any(m in ('fid', 'kid', 'pr') for m in metrics):
        return None
    try:
        return reference_features(np.asarray(images))[0]
    except FIDUnavailable as err:
        raise ConfigError('eval_metrics asks for %s: %s' % (','.join(metrics), err)) from None
