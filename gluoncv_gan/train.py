"""Train a GAN of the model zoo, GluonCV style: a YAML recipe, flags that override it, a run folder.

Example::

    python -m gluoncv_gan.train --config configs/dcgan_lfw.yaml --save-dir runs/dcgan_lfw
    python -m gluoncv_gan.train --resume runs/dcgan_lfw          # continue where it stopped

What the run folder (``--save-dir``) holds: docs/training.md#the-run-folder.
"""
import argparse
import logging
import os
import shlex
import signal
import sys

from . import distributed, thread_advice
from .estimator import checkpoint as ckpt
from .pipeline.training import Stopped, log_to_files, resume_changes, setup_logging, train
from .utils.command_line import add_debug_flag, check_output_path, command, describe_error, prog
from .utils.config import (ConfigError, add_config_flags, load_config, overrides_from_args,
                           read_config_file)
from .utils.runlock import RunLock

__all__ = ['build_parser', 'parse_args', 'train', 'main']


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
        if saved['lr_d'] == saved['lr'] and 'lr_d' not in requested:
            requested['lr_d'] = requested.get('lr')  # a D rate that was lr's follows a new lr
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


def run_folder(args):
    """The run folder a command line trains into, found without changing anything on disk.

    For a new run, the config is validated first (a bad one creates no folder).
    """
    if not args.resume:
        config = load_config(args.config, overrides_from_args(args))
        return os.path.abspath(args.save_dir or os.path.join('runs', config['model']))
    if args.save_dir:
        return os.path.abspath(args.save_dir)
    path = os.path.abspath(os.path.expanduser(args.resume))
    if os.path.isfile(os.path.join(path, ckpt.STATE_FILE)):  # a checkpoint folder
        return os.path.dirname(os.path.dirname(path))
    if not os.path.isdir(os.path.join(path, 'checkpoints')) and ckpt.list_checkpoints(path):
        return os.path.dirname(path)  # a run's checkpoints/ folder
    return path


def _one_of_several_workers():
    """True in a process of a data-parallel job (gluoncv_gan.launch or horovodrun): which one
    writes the run folder is known only once the job is joined."""
    return bool(os.environ.get('DMLC_ROLE') or os.environ.get('HOROVOD_RANK'))


@command()
def main(argv=None):
    """Train from the command line.

    Errors the user can fix exit with code 2 and one line ``error: <what>; <what to do>`` (also
    in the log file once it is open); SIGINT and SIGTERM stop after the current iteration with a
    checkpoint and exit with 130 and 143.
    """
    args = parse_args(argv)
    if args.resume:
        ckpt.find_checkpoint(args.resume)  # none there: say so before a folder is created
    folder = run_folder(args)
    check_output_path(folder, '--save-dir', folder=True)
    if args.logging_file:
        check_output_path(args.logging_file, '--logging-file')
    # one run per folder: taken before anything in it is read or changed (by rank 0 alone in a
    # data-parallel job, once the job is joined)
    lock = RunLock(folder)
    if not _one_of_several_workers():
        lock.acquire()
    try:
        return _train_locked(args, lock)
    finally:
        lock.release()


def _train_locked(args, lock):
    """The rest of :func:`main`, with the run folder locked (or to be locked by rank 0)."""
    fallbacks = []
    config, save_dir, checkpoint = resolve_run(args, fallbacks)
    dist = distributed.setup(config)
    if dist.is_root and _one_of_several_workers():
        lock.acquire()
    log_file = args.logging_file or os.path.join(save_dir, 'train.log')
    logger = setup_logging(log_file if dist.is_root else None, dist.log_prefix)
    logger.info(args)
    logger.info('Config: %s', config)
    if thread_advice():
        logger.warning(thread_advice())
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
        log_to_files(logger, 'error: %s' % describe_error(err))
        raise


if __name__ == '__main__':
    main()
