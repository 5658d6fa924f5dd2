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

from . import distributed
from .estimator import checkpoint as ckpt
from .pipeline.training import Stopped, resume_changes, setup_logging, train
from .utils.cli import add_debug_flag, check_output_path, command, describe_error, prog
from .utils.config import ConfigError, load_config, read_config_file

__all__ = ['parse_args', 'train', 'main']

# flag -> config key, for the flags that override the YAML recipe
FLAG_KEYS = {'batch_size': 'batch_size', 'epochs': 'epochs', 'iterations': 'iterations',
             'lr': 'lr', 'beta1': 'beta1', 'gpus': 'gpus', 'num_workers': 'num_workers',
             'log_interval': 'log_interval', 'seed': 'seed', 'dataset': 'dataset',
             'data_dir': 'data_dir', 'loss': 'loss', 'model': 'model',
             'checkpoint_interval': 'checkpoint_interval', 'sample_interval': 'sample_interval',
             'keep_checkpoints': 'keep_checkpoints', 'nz': 'nz', 'ngf': 'ngf', 'ndf': 'ndf',
             'image_size': 'image_size', 'ema_decay': 'ema_decay',
             'eval_interval': 'eval_interval', 'eval_samples': 'eval_samples',
             'lr_d': 'lr_d', 'beta2': 'beta2', 'optimizer': 'optimizer',
             'n_critic': 'n_critic', 'weight_clip': 'weight_clip',
             'lr_decay_epochs': 'lr_decay_epochs'}
# data-parallel training (gluoncv_gan.distributed, docs/distributed.md)
FLAG_KEYS.update({'kvstore': 'kvstore', 'horovod': 'horovod', 'cpus': 'cpus'})


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a GAN of the gluoncv-gan model zoo.',
        epilog='Flags left out keep the value of --config (or of the resumed run).')
    parser.prog = prog('gluoncv_gan.train')  # the command's real name in usage lines
    parser.add_argument('--config', default=None, help='YAML recipe, e.g. configs/dcgan_lfw.yaml')
    parser.add_argument('--save-dir', default=None,
                        help='run folder (default runs/<model>, or the resumed run\'s folder)')
    parser.add_argument('--resume', default=None,
                        help='continue a run: a checkpoint folder, or a run folder (its latest)')
    parser.add_argument('--logging-file', default=None,
                        help='log file (default <save-dir>/train.log)')
    parser.add_argument('--model', default=None, help='model-zoo name, e.g. dcgan_lfw')
    parser.add_argument('--dataset', default=None, choices=['lfw', 'lfw_sample', 'folder'],
                        help='lfw (prepared with gluoncv_gan.data.prepare_lfw), lfw_sample (bundled), '
                             'or folder (any folder of face images, with --data-dir)')
    parser.add_argument('--data-dir', default=None, help='dataset folder')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per device and iteration (as in GluonCV: the global batch is '
                             'this x devices x workers, printed at the start)')
    parser.add_argument('--epochs', type=int, default=None, help='epochs in all')
    parser.add_argument('--iterations', type=int, default=None,
                        help='stop after this many iterations in all (instead of whole epochs)')
    parser.add_argument('--lr', type=float, default=None,
                        help="generator's learning rate (and the discriminator's without --lr-d)")
    parser.add_argument('--lr-decay-epochs', type=int, default=None, metavar='N',
                        help='decay both learning rates linearly to zero over the last N epochs')
    parser.add_argument('--beta1', type=float, default=None, help='Adam beta1')
    parser.add_argument('--loss', default=None,
                        help='GAN objective: vanilla, minimax, lsgan, hinge or wgan '
                             '(docs/recipes.md)')
    parser.add_argument('--lr-d', type=float, default=None,
                        help="discriminator's learning rate (default: --lr; TTUR when it differs)")
    parser.add_argument('--beta2', type=float, default=None,
                        help='Adam beta2 (RMSprop: decay of the mean squared gradient)')
    parser.add_argument('--optimizer', default=None, choices=['adam', 'rmsprop'],
                        help='optimiser of both nets')
    parser.add_argument('--n-critic', type=int, default=None,
                        help='discriminator steps per generator step')
    parser.add_argument('--weight-clip', type=float, default=None,
                        help='clip discriminator parameters into [-c, c] (WGAN; 0: none)')
    parser.add_argument('--ema-decay', type=float, default=None,
                        help='keep a moving average of the generator with this decay (0: none)')
    parser.add_argument('--nz', type=int, default=None, help='latent size')
    parser.add_argument('--ngf', type=int, default=None, help='generator width')
    parser.add_argument('--ndf', type=int, default=None, help='discriminator width')
    parser.add_argument('--image-size', type=int, default=None, help='image height and width')
    parser.add_argument('--gpus', default=None, help="GPU ids like '0,1'; '' for CPU")
    parser.add_argument('--cpus', type=int, default=None,
                        help='CPU contexts when --gpus is empty (more than 1: to test multi-device '
                             'training)')
    parser.add_argument('--kvstore', default=None, choices=distributed.KVSTORE_TYPES,
                        help='gradient reduction: device or local (one process), dist_sync, '
                             'dist_device_sync or dist_async (parameter servers: start with '
                             'python -m gluoncv_gan.launch)')
    parser.add_argument('--horovod', action='store_true', default=None,
                        help='data-parallel training with Horovod (start with horovodrun)')
    parser.add_argument('-j', '--num-workers', type=int, default=None,
                        help='threads that decode images into the cache (0: one per CPU)')
    parser.add_argument('--log-interval', type=int, default=None, help='iterations between logs')
    parser.add_argument('--sample-interval', type=int, default=None,
                        help='iterations between sample grids (0: per epoch only)')
    parser.add_argument('--checkpoint-interval', type=int, default=None,
                        help='iterations between checkpoints (0: per epoch only)')
    parser.add_argument('--keep-checkpoints', type=int, default=None,
                        help='newest checkpoints to keep')
    parser.add_argument('--eval-interval', type=int, default=None,
                        help='epochs between evaluations of the generator (0: none)')
    parser.add_argument('--eval-samples', type=int, default=None,
                        help='generated images per evaluation')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--no-hybridize', action='store_true', help='run the nets imperatively')
    parser.add_argument('--amp', action='store_true', default=None,
                        help='bfloat16 convolutions through MXNet AMP on CPU (opt-in; CPUs with '
                             'avx512_bf16; the nets then run imperatively). Unlike --amp in '
                             "GluonCV's GPU scripts this is not fp16, and --gpus refuses it")
    add_debug_flag(parser)
    return parser.parse_args(argv)


def overrides_from_args(args):
    """Config values given on the command line (flags left out are None and ignored)."""
    values = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items()}
    if args.no_hybridize:
        values['hybridize'] = False
    if args.amp:
        values['amp'] = True
    return values


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
