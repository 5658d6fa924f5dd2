"""Training checkpoints: one folder per checkpoint, written atomically.

A checkpoint ``checkpoints/iter-00001234/`` holds

- ``model.params``: the DCGAN pair (generator and discriminator, BatchNorm statistics included);
- ``trainer_g.states``, ``trainer_d.states``: both optimisers' states (Adam moments, step counts);
- ``fixed_noise.npy``: the latent batch of the sample grids;
- ``generator_ema.params``: the moving average of the generator, when training keeps one;
- ``state.json``: position (epoch, batch within the epoch, iteration), seed, running metric sums,
  the resolved config, and anything handlers add (history, best score).

It is written into a hidden temporary folder that is renamed into place only when complete, so
a process killed at any moment leaves either the previous checkpoints or the new one, never a
half-written checkpoint under a checkpoint's name.
"""
import json
import os
import re
import shutil
import tempfile

import numpy as np

__all__ = ['checkpoint_name', 'list_checkpoints', 'find_checkpoint', 'save_checkpoint',
           'read_state', 'prune_checkpoints']

_NAME = re.compile(r'^iter-(\d{8})$')
STATE_FILE = 'state.json'


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
    """The ``state.json`` of a checkpoint folder."""
    with open(os.path.join(path, STATE_FILE)) as f:
        return json.load(f)


def prune_checkpoints(folder, keep, protect=()):
    """Delete all but the ``keep`` newest checkpoints, sparing those in ``protect``.

    Leftover temporary folders of interrupted writes are removed too.
    """
    protect = {os.path.abspath(p) for p in protect}
    for _, path in list_checkpoints(folder)[:-keep]:
        if os.path.abspath(path) not in protect:
            shutil.rmtree(path, ignore_errors=True)
    for name in os.listdir(folder):
        if name.startswith('.tmp-') or name.endswith('.old'):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
