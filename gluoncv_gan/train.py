"""Train a GAN of the model zoo, GluonCV style: a YAML recipe, flags that override it, a run folder.

Example::

    python -m gluoncv_gan.train --config configs/dcgan_lfw.yaml --save-dir runs/dcgan_lfw
    python -m gluoncv_gan.train --resume runs/dcgan_lfw          # continue where it stopped

Run folder (``--save-dir``)::

    train.log         the log (also --logging-file)
    config.yaml       the resolved config
    fixed_noise.npy   latent batch of the sample grids
    samples/          real.png, epoch-EEEE.png, iter-IIIIIIII.png, latest.png
    checkpoints/      iter-IIIIIIII/ (model, both optimiser states, position, metrics, config)
    history.json      metrics every --log-interval iterations; curves.png plots them
    report.html       one page on the run, rewritten every epoch (gluoncv_gan.report)
    evaluation.json   SWD, face rate, diversity every --eval-interval epochs; best.json: the
                      checkpoint with the lowest SWD (kept whatever --keep-checkpoints says)
    model.params      the final DCGAN pair: get_model(name).load_parameters(path)
    generator_ema.params  the moving average of the generator (with --ema-decay)
"""
import argparse
import logging
import os
import shlex
import signal
import sys

import mxnet as mx
import numpy as np

from . import distributed
from .data import LFW, FaceFolder, LFWSample
from .data.loader import CachedBatchLoader
from .estimator import (CheckpointHandler, EvaluationHandler, GANEstimator, GANLoggingHandler,
                        GeneratorEMA, HistoryHandler, LearningRateDecayHandler, ReportHandler,
                        SampleHandler, StopOnSignal, TensorBoardHandler)
from .estimator import checkpoint as ckpt
from .estimator.gan_estimator import GANBatchProcessor
from .loss import get_objective
from .model_zoo import get_model
from .utils.cli import add_debug_flag, check_output_path, command, describe_error, prog
from .utils.config import (ConfigError, add_config_flags, load_config, overrides_from_args,
                           read_config_file, save_config)
from .utils.amp import enable_bfloat16
from .utils.fileio import atomic_path

__all__ = ['build_parser', 'parse_args', 'train', 'main']

# keys a resumed run cannot change: they shape the nets, their optimiser states, or the
# sequence of batches and latents (batch_size and the worker count: Distribution.check_resume)
FROZEN_ON_RESUME = ('model', 'nz', 'ngf', 'ndf', 'image_size', 'loss', 'optimizer', 'dataset',
                    'seed')


class Stopped(Exception):
    """Training stopped on a signal, after saving a checkpoint (``signum``: the signal)."""

    def __init__(self, signum, iteration):
        super(Stopped, self).__init__(signum, iteration)
        self.signum, self.iteration = signum, iteration


def build_parser():
    """The command line of training: its own flags, and one flag per config key."""
    parser = argparse.ArgumentParser(description='Train a GAN of the gluoncv-gan model zoo.')
    parser.prog = prog('gluoncv_gan.train')  # the command's real name in usage lines
    parser.add_argument('--config', default=None, help='YAML recipe, e.g. configs/dcgan_lfw.yaml')
    parser.add_argument('--save-dir', default=None,
                        help='run folder (default runs/<model>, or the resumed run\'s folder)')
    parser.add_argument('--resume', default=None,
                        help='continue a run: a checkpoint folder, or a run folder (its latest)')
    parser.add_argument('--logging-file', default=None,
                        help='log file (default <save-dir>/train.log)')
    add_config_flags(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


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
    formatter = logging.Formatter('%(asctime)s ' + prefix.replace('%', '%%') + '%(message)s',
                                  '%Y-%m-%d %H:%M:%S')
    handlers = [logging.StreamHandler(sys.stdout)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.insert(0, logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return logging.getLogger('gluoncv_gan.train')


def contexts(gpus, cpus=1):
    """Devices from a '0,1' string; when it is empty, ``cpus`` CPU contexts (cpu(0), cpu(1)...)."""
    ids = [g.strip() for g in gpus.split(',') if g.strip()]
    if ids and cpus > 1:
        raise ConfigError('gpus %r and cpus %d both ask for devices: use one of --gpus and --cpus'
                          % (gpus, cpus))
    return [mx.gpu(int(i)) for i in ids] or [mx.cpu(i) for i in range(cpus)]


def build_dataset(config):
    """The training dataset of ``config`` (with its uint8 cache)."""
    workers = config['num_workers'] or None
    if config['dataset'] == 'lfw_sample':
        return LFWSample(size=config['image_size'], num_workers=workers)
    if config['dataset'] == 'folder':
        return FaceFolder(config['data_dir'], size=config['image_size'], num_workers=workers)
    return LFW(root=config['data_dir'], size=config['image_size'], num_workers=workers)


def build_net(config, ctx):
    """The model-zoo pair of ``config``, initialised (Normal(0.02)) on ``ctx``."""
    if config['amp']:
        enable_bfloat16()
    net = get_model(config['model'], ctx=ctx, nz=config['nz'], ngf=config['ngf'],
                    ndf=config['ndf'])
    if net.resolution != config['image_size']:
        raise ConfigError('model %s makes %dx%d images but image_size is %d: use a model of '
                          'that size or change image_size' % (config['model'], net.resolution,
                                                              net.resolution, config['image_size']))
    if config['hybridize'] and not config['amp']:
        # bfloat16 AMP crashes hybridized nets in MXNet 1.9.1 (see gluoncv_gan.utils.amp)
        net.generator.hybridize(static_alloc=True, static_shape=True)
        net.discriminator.hybridize(static_alloc=True, static_shape=True)
    return net


def build_trainers(net, config, make_trainer=mx.gluon.Trainer):
    """Trainers of the generator (rate ``lr``) and the discriminator (``lr_d``, default ``lr``).

    Adam is the tutorial's optimiser; RMSprop is the WGAN paper's (``beta2`` is its decay of the
    mean squared gradient, ``beta1`` is unused). ``make_trainer(params, optimizer,
    optimizer_params)`` builds each trainer (data-parallel: ``Distribution.make_trainer``).
    """
    if config['optimizer'] == 'rmsprop':
        opts = {'gamma1': config['beta2']}
    else:
        opts = {'beta1': config['beta1'], 'beta2': config['beta2']}
    lr_d = config['lr_d'] or config['lr']
    return (make_trainer(net.generator.collect_params(), config['optimizer'],
                         dict(opts, learning_rate=config['lr'])),
            make_trainer(net.discriminator.collect_params(), config['optimizer'],
                         dict(opts, learning_rate=lr_d)))


def fixed_noise_for(config):
    rng = np.random.RandomState([config['seed'], 0xF1])
    return rng.standard_normal((config['num_samples'], config['nz'], 1, 1)).astype(np.float32)


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


def resolve_run(args, warnings=None):
    """(config, save_dir, checkpoint or None) from the flags, the recipe and a resumed run.

    A resumed run takes the checkpoint's config, then the keys of ``--config`` and the flags
    given; its checkpoint is the newest usable one (see :func:`ckpt.resume_checkpoint`), and
    the damaged ones passed over are reported in the list ``warnings`` (default: logged).
    """
    overrides = overrides_from_args(args)
    checkpoint = None
    if args.resume:
        checkpoint = ckpt.resume_checkpoint(
            args.resume, warn=warnings.append if warnings is not None else None)
        saved = load_config(None, ckpt.read_state(checkpoint)['config'])
        requested = read_config_file(args.config) if args.config else {}
        requested.update({k: v for k, v in overrides.items() if v is not None})
        config = load_config(None, dict(saved, **requested))
        resume_changes(saved, config)
        save_dir = args.save_dir or os.path.dirname(os.path.dirname(checkpoint))
    else:
        config = load_config(args.config, overrides)
        save_dir = args.save_dir or os.path.join('runs', config['model'])
        existing = ckpt.list_checkpoints(os.path.join(save_dir, 'checkpoints'))
        if existing:
            raise ConfigError('%s already holds a run (%d checkpoints): continue it with '
                              '--resume %s, or choose another --save-dir'
                              % (save_dir, len(existing), save_dir))
    return config, os.path.abspath(save_dir), checkpoint


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
                                   num_shards=dist.num_workers, shard=dist.rank)
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
            return get_model(config['model'], nz=config['nz'], ngf=config['ngf'],
                             ndf=config['ndf']).generator
        ema = GeneratorEMA(net.generator, factory, config['ema_decay'], ctx=ctx[0])
    estimator = GANEstimator(net, get_objective(config['loss']), trainer_g, trainer_d,
                             context=ctx, seed=config['seed'], ema=ema,
                             n_critic=config['n_critic'], weight_clip=config['weight_clip'],
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
        evaluation = EvaluationHandler(save_dir, dataset.images, checkpoints,
                                       num_samples=config['eval_samples'],
                                       interval=config['eval_interval'], seed=config['seed'],
                                       logger=logger)
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
    return estimator


def apply_hyperparameters(trainer_g, trainer_d, config):
    """Set the config's learning rates and optimiser coefficients on both trainers."""
    for trainer, rate in ((trainer_g, config['lr']), (trainer_d, config['lr_d'] or config['lr'])):
        trainer.set_learning_rate(rate)
        optimizer = trainer._optimizer  # gluon has no public setter for these
        if config['optimizer'] == 'rmsprop':
            optimizer.gamma1 = config['beta2']
        else:
            optimizer.beta1, optimizer.beta2 = config['beta1'], config['beta2']


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


def resume_command(save_dir, config, args, num_workers=1):
    """The command that continues a stopped run."""
    words = ['python', '-m', 'gluoncv_gan.train', '--resume', save_dir]
    if args.logging_file:
        words += ['--logging-file', args.logging_file]
    if config['kvstore'].startswith('dist'):
        workers = os.environ.get('DMLC_NUM_WORKER', '1')
        words = ['python', '-m', 'gluoncv_gan.launch', '-n', workers, '-s',
                 os.environ.get('DMLC_NUM_SERVER', workers), '--'] + words
    elif config['horovod']:
        words = ['horovodrun', '-np', str(num_workers), '--gloo'] + words
    return ' '.join(shlex.quote(w) for w in words)


def _log_to_files(logger, message):
    """Write ``message`` into the log files only (the console gets it on stderr)."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@command()
def main(argv=None):
    """Train from the command line.

    Errors the user can fix exit with code 2 and one line ``error: <what>; <what to do>`` (also
    in the log file once it is open); SIGINT and SIGTERM stop after the current iteration with a
    checkpoint and exit with 130 and 143.
    """
    args = parse_args(argv)
    fallbacks = []
    config, save_dir, checkpoint = resolve_run(args, fallbacks)
    check_output_path(save_dir, '--save-dir', folder=True)
    if args.logging_file:
        check_output_path(args.logging_file, '--logging-file')
    dist = distributed.setup(config)
    log_file = args.logging_file or os.path.join(save_dir, 'train.log')
    logger = setup_logging(log_file if dist.is_root else None, dist.log_prefix)
    logger.info(args)
    logger.info('Config: %s', config)
    for message in fallbacks:
        logger.warning(message)
    try:
        train(config, save_dir, checkpoint, logger, dist=dist)
    except Stopped as stop:
        command_line = resume_command(save_dir, config, args, dist.num_workers)
        logger.info('stopped at iteration %d; resume with: %s', stop.iteration, command_line)
        sys.exit(128 + stop.signum)
    except KeyboardInterrupt:
        # before training began (or after it ended): nothing of the run was changed
        logger.info('interrupted outside the training loop; every file on disk is whole (each '
                    'is written atomically)')
        sys.exit(128 + signal.SIGINT)
    except Exception as err:
        _log_to_files(logger, 'error: %s' % describe_error(err))
        raise


if __name__ == '__main__':
    main()
