"""Training checkpoints: one folder per checkpoint, written atomically, and read back to resume.

:class:`RunCheckpointHandler` saves them during training and resumes a run from one. A
checkpoint ``checkpoints/iter-00001234/`` holds the DCGAN pair, both optimisers' states, the
fixed noise, the moving-average generator when kept, and ``state.json`` (position, seed, running
metrics, config, and what handlers add). It is renamed into place only when complete, never holds
a NaN (:class:`NonFiniteError`), and :func:`resume_checkpoint` checks it before use, falling back
to the previous one; see docs/training.md#stopping-and-resuming.
"""
import contextlib
import json
import logging
import os
import pickle
import re
import shutil
import tempfile
import time

import numpy as np
import portalocker
from mxnet.gluon.contrib.estimator.event_handler import BatchEnd, EpochBegin, EpochEnd

from ..utils.command_line import UserError

__all__ = ['checkpoint_name', 'list_checkpoints', 'find_checkpoint', 'save_checkpoint',
           'read_state', 'prune_checkpoints', 'CheckpointError', 'NonFiniteError',
           'check_finite', 'checkpoint_problem', 'resume_checkpoint', 'REQUIRED_FILES',
           'guard_checkpoints', 'reading_checkpoints', 'RunCheckpointHandler']

logger = logging.getLogger(__name__)

_NAME = re.compile(r'^iter-(\d{8})$')
STATE_FILE = 'state.json'
REQUIRED_FILES = ('model.params', 'trainer_g.states', 'trainer_d.states', 'fixed_noise.npy',
                  STATE_FILE)
EMA_FILE = 'generator_ema.params'


class CheckpointError(UserError):
    """A checkpoint is damaged or missing; the message names the problem and the way out."""


class NonFiniteError(UserError):
    """Training produced NaN or infinite values; nothing holding them is written."""


def check_finite(block, what):
    """Raise :class:`NonFiniteError` if a parameter of ``block`` holds NaN or an infinity.

    ``what`` names the file that was about to be written.
    """
    for name, param in block.collect_params().items():
        for data in param.list_data():
            if not np.isfinite(data.asnumpy()).all():
                raise NonFiniteError(
                    'parameter %s holds NaN or infinite values, so %s was not written (the '
                    'earlier checkpoints are kept); training diverged: resume from the last '
                    'checkpoint with a lower --lr (and --lr-d), or use another --loss'
                    % (name, what))


def checkpoint_name(iteration):
    return 'iter-%08d' % iteration


def _fsync_tree(folder):
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), 'rb') as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def guard_checkpoints(folder, shared=True):
    """Hold the guard of a checkpoints folder: shared to read, exclusive to delete or replace.

    The guard is a lock on the folder itself (no file is added to it), which the kernel drops
    when its holder exits.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        portalocker.lock(fd, portalocker.LOCK_SH if shared else portalocker.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor of the lock releases it


def _checkpoints_folder(path):
    """The checkpoints folder that a run folder, a checkpoints folder or a checkpoint is in."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(os.path.join(path, STATE_FILE)):
        return os.path.dirname(path)
    if os.path.isdir(os.path.join(path, 'checkpoints')):
        return os.path.join(path, 'checkpoints')
    return path if list_checkpoints(path) else None


@contextlib.contextmanager
def reading_checkpoints(path):
    """While inside, no checkpoint of the run at ``path`` is deleted or replaced, even when a
    training run is writing it: for the commands that read a run (export, sample, evaluate).

    ``path`` is a run folder, a checkpoints folder or a checkpoint; anything else is not guarded.
    """
    folder = _checkpoints_folder(path) if os.path.isdir(path) else None
    if folder is None:
        yield
        return
    with guard_checkpoints(folder, shared=True):
        yield


def list_checkpoints(folder):
    """Complete checkpoints in ``folder``, oldest first, as (iteration, path)."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _NAME.match(name)
        if match and os.path.isfile(os.path.join(folder, name, STATE_FILE)):
            found.append((int(match.group(1)), os.path.join(folder, name)))
    return sorted(found)


def find_checkpoint(path):
    """The checkpoint folder that ``--resume path`` means: a checkpoint, or a run's latest one."""
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(os.path.join(path, STATE_FILE)):
        return path
    for folder in (os.path.join(path, 'checkpoints'), path):
        found = list_checkpoints(folder)
        if found:
            return found[-1][1]
    raise FileNotFoundError('no checkpoint found at %s: pass a checkpoint folder '
                            '(checkpoints/iter-NNNNNNNN) or a run folder that has one' % path)


def save_checkpoint(folder, iteration, net, trainer_g, trainer_d, fixed_noise, state, ema=None):
    """Write a checkpoint of the current training state; return its folder."""
    check_finite(net, 'checkpoint %s' % checkpoint_name(iteration))
    if ema is not None:
        check_finite(ema.net, 'checkpoint %s' % checkpoint_name(iteration))
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, checkpoint_name(iteration))
    tmp = tempfile.mkdtemp(prefix='.tmp-%s-' % checkpoint_name(iteration), dir=folder)
    try:
        net.save_parameters(os.path.join(tmp, 'model.params'))
        trainer_g.save_states(os.path.join(tmp, 'trainer_g.states'))
        trainer_d.save_states(os.path.join(tmp, 'trainer_d.states'))
        np.save(os.path.join(tmp, 'fixed_noise.npy'), fixed_noise)
        if ema is not None:
            ema.save(os.path.join(tmp, 'generator_ema.params'))
        with open(os.path.join(tmp, STATE_FILE), 'w') as f:
            json.dump(state, f)
        _fsync_tree(tmp)
        if os.path.exists(final):  # the same iteration saved again (e.g. epoch end after resume)
            old = final + '.old'
            with guard_checkpoints(folder, shared=False):
                os.rename(final, old)
                os.rename(tmp, final)
            shutil.rmtree(old)
        else:
            os.rename(tmp, final)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return final


def read_state(path):
    """The ``state.json`` of a checkpoint folder.

    Raises
    ------
    CheckpointError
        When it does not parse (a damaged checkpoint).
    """
    with open(os.path.join(path, STATE_FILE)) as f:
        try:
            state = json.load(f)
        except ValueError as err:
            raise CheckpointError('checkpoint %s is damaged: its %s does not parse (%s); resume '
                                  'from an earlier checkpoint or from the run folder'
                                  % (path, STATE_FILE, err)) from None
    if not isinstance(state, dict):
        raise CheckpointError('checkpoint %s is damaged: its %s is not a mapping; resume from an '
                              'earlier checkpoint or from the run folder' % (path, STATE_FILE))
    return state


def checkpoint_problem(path):
    """What is wrong with a checkpoint folder, in a few words, or None when it is usable.

    Every file must be there, ``state.json`` must parse, the parameters (the moving average's
    too) must load and be finite, and the optimiser states and the fixed noise must load.
    """
    import mxnet as mx
    try:
        state = read_state(path)
    except (CheckpointError, OSError) as err:
        return str(err).split(': ', 1)[-1].split('; ')[0]
    if not {'epoch', 'batch', 'iteration', 'config'} <= set(state):
        return '%s lacks the training position or the config' % STATE_FILE
    needed = list(REQUIRED_FILES) + ([EMA_FILE] if state['config'].get('ema_decay') else [])
    missing = [name for name in needed if not os.path.isfile(os.path.join(path, name))]
    if missing:
        return 'missing %s' % ', '.join(missing)
    for name in needed:
        file = os.path.join(path, name)
        try:
            if name.endswith('.params'):
                arrays = mx.nd.load(file)
                if not all(np.isfinite(a.asnumpy()).all() for a in arrays.values()):
                    return '%s holds NaN or infinite values' % name
            elif name.endswith('.states'):
                if state['config'].get('kvstore') == 'dist_async' and not os.path.getsize(file):
                    continue  # its optimiser states live on the servers: an empty file
                with open(file, 'rb') as f:
                    pickle.load(f)
            elif name.endswith('.npy'):
                np.load(file, allow_pickle=False)
        except (mx.base.MXNetError, OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
            detail = str(err).strip().splitlines()
            return '%s does not load (%s)' % (name, detail[-1] if detail else type(err).__name__)
    return None


def _set_aside(path):
    """Rename a damaged checkpoint out of the way (kept for inspection); return its new path."""
    aside = '%s.damaged-%d' % (path, int(time.time()))
    os.rename(path, aside)
    return aside


def resume_checkpoint(path, warn=None):
    """The checkpoint ``--resume path`` continues from, checked.

    ``path`` is a checkpoint folder, which must be usable, or a run folder: its newest usable
    checkpoint. Damaged newer ones are renamed ``iter-NNNNNNNN.damaged-<time>`` (never deleted,
    so they can be inspected, and never overwritten when training passes them again), each with
    a warning naming the problem.

    Raises
    ------
    CheckpointError
        When the checkpoint named is damaged, or no checkpoint of the run is usable.
    FileNotFoundError
        When there is no checkpoint at ``path``.

    ``warn(message)`` reports each fallback (default: this module's logger).
    """
    warn = warn or logger.warning
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(os.path.join(path, STATE_FILE)):
        problem = checkpoint_problem(path)
        if problem:
            raise CheckpointError('checkpoint %s is damaged (%s); resume from the run folder to '
                                  'fall back to the newest usable checkpoint: --resume %s'
                                  % (path, problem, os.path.dirname(os.path.dirname(path))))
        return path
    find_checkpoint(path)  # FileNotFoundError when there is none
    folder = os.path.join(path, 'checkpoints')
    found = list_checkpoints(folder) or list_checkpoints(path)
    for _, candidate in reversed(found):
        problem = checkpoint_problem(candidate)
        if problem is None:
            return candidate
        aside = _set_aside(candidate)
        warn('Checkpoint %s is damaged (%s): falling back to the previous one; the damaged one '
             'is kept as %s' % (candidate, problem, aside))
    raise CheckpointError('no usable checkpoint in %s (all %d are damaged and were set aside as '
                          '*.damaged-*); start a new run' % (path, len(found)))


def prune_checkpoints(folder, keep, protect=()):
    """Delete all but the ``keep`` newest checkpoints, sparing those in ``protect``.

    Leftover temporary folders of interrupted writes are removed too.
    """
    protect = {os.path.abspath(p) for p in protect}
    with guard_checkpoints(folder, shared=False):
        for _, path in list_checkpoints(folder)[:-keep]:
            if os.path.abspath(path) not in protect:
                shutil.rmtree(path, ignore_errors=True)
    for name in os.listdir(folder):
        if name.startswith('.tmp-') or name.endswith('.old'):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


class RunCheckpointHandler(EpochBegin, BatchEnd, EpochEnd):
    """Save the whole run every epoch and every ``interval`` iterations (keeping the newest
    ``keep``), and resume it from such a checkpoint (:meth:`resume`).

    Named apart from MXNet's ``CheckpointHandler``, which saves a net and a trainer only.
    """

    def __init__(self, folder, fixed_noise, config, interval=0, keep=3, stateful=None,
                 priority=600):
        """Create the handler.

        Parameters
        ----------
        folder : str
            The checkpoints folder.
        fixed_noise : numpy.ndarray
            Saved with every checkpoint.
        config : dict
            The resolved config, saved with every checkpoint.
        interval : int
            Iterations between checkpoints (0: per epoch only).
        keep : int
            Newest checkpoints kept (protected ones, e.g. the best, are kept in addition).
        stateful : dict
            name -> object with ``get_state()`` (and ``set_state()`` when it is restored on resume),
            saved in ``state.json``.
        priority : int
            Order among the epoch-end handlers (after evaluation, which marks the best checkpoint).
        """
        self.folder, self.fixed_noise, self.config = folder, fixed_noise, config
        self.interval, self.keep = interval, keep
        self.stateful = stateful or {}
        self.protect = set()
        self.priority = priority
        self._pending_means = None
        self.last_saved = None

    def save(self, estimator, epoch, batch):
        estimator.check_losses()  # a NaN loss not yet checked must not reach a checkpoint
        state = {'epoch': epoch, 'batch': batch, 'iteration': estimator.iteration,
                 'seed': estimator.seed, 'config': self.config,
                 'metrics': {m.name: m.get_state() for m in estimator.train_metrics},
                 'handlers': {name: obj.get_state() for name, obj in self.stateful.items()},
                 'time': time.time()}
        self.last_saved = save_checkpoint(
            self.folder, estimator.iteration, estimator.net, estimator.trainer_g,
            estimator.trainer_d, self.fixed_noise, state, ema=estimator.ema)
        prune_checkpoints(self.folder, self.keep, protect=self.protect)
        return self.last_saved

    def resume(self, estimator, path, state):
        """Put the run back where checkpoint ``path`` (its ``state``: :func:`read_state`) left it.

        Loads the pair, both optimisers' states, the fixed noise, the moving average, the
        position and the states of :attr:`stateful`; the running metric sums come back at the
        next epoch start (after the estimator resets the metrics). The optimisers come back with
        the checkpoint's hyperparameters: the caller applies the config's.
        """
        estimator.net.load_parameters(os.path.join(path, 'model.params'), ctx=estimator.context)
        estimator.trainer_g.load_states(os.path.join(path, 'trainer_g.states'))
        estimator.trainer_d.load_states(os.path.join(path, 'trainer_d.states'))
        self.fixed_noise[...] = np.load(os.path.join(path, 'fixed_noise.npy'))
        if estimator.ema is not None:
            estimator.ema.load(os.path.join(path, EMA_FILE))
        estimator.epoch, estimator.batch = state['epoch'], state['batch']
        estimator.iteration = state['iteration']
        for name, obj in self.stateful.items():
            if hasattr(obj, 'set_state'):
                obj.set_state(state['handlers'].get(name, {}))
        self._pending_means = state['metrics']

    def epoch_begin(self, estimator, *args, **kwargs):
        if self._pending_means:
            for metric in estimator.train_metrics:
                if metric.name in self._pending_means:
                    metric.set_state(self._pending_means[metric.name])
        self._pending_means = None

    def batch_end(self, estimator, *args, **kwargs):
        if self.interval and estimator.iteration % self.interval == 0 \
                and not estimator.epoch_complete:
            self.save(estimator, estimator.epoch, estimator.batch)
        return False

    def epoch_end(self, estimator, *args, **kwargs):
        # the estimator also ends an epoch early when training stops mid-epoch
        if estimator.epoch_complete:
            self.save(estimator, estimator.epoch + 1, 0)
        elif estimator.batch > 0:
            self.save(estimator, estimator.epoch, estimator.batch)
        return False
