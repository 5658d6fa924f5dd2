"""One parameter-server kvstore shared by the generator's and the discriminator's trainers.

``gluon.Trainer`` names its parameters 0, 1, ..., n-1 in its kvstore, so two trainers on one
store would collide on their keys (MXNet fails on the first shape mismatch, and would silently
mix two parameters of equal shape). A second dist kvstore in the same worker is no way out:
in MXNet 1.9.1 a second ``mx.kv.create('dist_sync')`` in the same process never returns. So
each worker creates one store, and every trainer gets a :class:`KeyRange` view of it that adds
an offset to the trainer's keys. Views are handed out in the same order on every worker (the
generator's trainer first), so the keys agree across workers.
"""
import logging

import numpy as np
from mxnet.gluon import Trainer
from mxnet.kvstore import KVStoreBase

__all__ = ['SharedKVStore', 'KeyRange', 'ServerUpdateTrainer']

logger = logging.getLogger(__name__)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


class SharedKVStore:
    """A distributed kvstore lent to several trainers, each through its own range of keys.

    Parameters
    ----------
    store : mxnet.kvstore.KVStore
        The worker's one dist kvstore.

    Attributes
    ----------
    bytes_pushed, bytes_pulled : int
        Bytes this worker sent to and received from the servers in push-pulls (gradients,
        or weights with ``dist_async``), not counting the one-off initial broadcast.
    """

    def __init__(self, store):
        self.store = store
        self.next_key = 0
        self.optimizer = None
        self.bytes_pushed = self.bytes_pulled = 0

    def view(self, num_keys):
        """A :class:`KeyRange` of ``num_keys`` keys after those already handed out."""
        view = KeyRange(self, self.next_key)
        self.next_key += num_keys
        return view

    def set_optimizer(self, optimizer):
        """Send the optimiser to the servers once.

        A server holds one optimiser for all keys; sending a second one (from the second
        trainer) would replace the first and lose the optimiser states it has built up.
        """
        if self.optimizer is None:
            self.store.set_optimizer(optimizer)
            self.optimizer = optimizer
            return
        if type(optimizer) is not type(self.optimizer) or \
                optimizer.learning_rate != self.optimizer.learning_rate:
            raise ValueError('the servers run one optimiser for both nets, but the trainers use '
                             '%s (lr %g) and %s (lr %g): give both the same optimiser and learning '
                             'rate, or use dist_sync (which updates on the workers)'
                             % (type(self.optimizer).__name__, self.optimizer.learning_rate,
                                type(optimizer).__name__, optimizer.learning_rate))


class KeyRange(KVStoreBase):
    """A view of a :class:`SharedKVStore` whose key k is the store's key ``first + k``.

    It implements the kvstore calls ``gluon.Trainer`` makes and forwards the rest of the
    store's description (type, rank, number of workers) unchanged.
    """

    def __init__(self, shared, first):
        self._shared, self._first = shared, first
        self._store = shared.store

    def _key(self, key):
        if isinstance(key, (list, tuple)):
            return [k + self._first for k in key]
        return key + self._first

    def broadcast(self, key, value, out, priority=0):
        self._store.broadcast(self._key(key), value, out, priority=priority)

    def pushpull(self, key, value, out=None, priority=0):
        # the devices of one worker are reduced locally: one array per key goes over the network
        array = _first(value)
        nbytes = array.size * np.dtype(array.dtype).itemsize
        self._shared.bytes_pushed += nbytes
        self._shared.bytes_pulled += nbytes
        self._store.pushpull(self._key(key), value, out=out, priority=priority)

    def init(self, key, value):
        self._store.init(self._key(key), value)

    def push(self, key, value, priority=0):
        self._store.push(self._key(key), value, priority=priority)

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        self._store.pull(self._key(key), out=out, priority=priority, ignore_sparse=ignore_sparse)

    def row_sparse_pull(self, key, out=None, priority=0, row_ids=None):
        self._store.row_sparse_pull(self._key(key), out=out, priority=priority, row_ids=row_ids)

    def set_optimizer(self, optimizer):
        self._shared.set_optimizer(optimizer)

    def is_capable(self, capability):
        return self._store.is_capable(capability)

    def save_optimizer_states(self, fname, dump_optimizer=False):
        self._store.save_optimizer_states(fname, dump_optimizer=dump_optimizer)

    def load_optimizer_states(self, fname):
        self._store.load_optimizer_states(fname)

    @property
    def type(self):
        return self._store.type

    @property
    def rank(self):
        return self._store.rank

    @property
    def num_workers(self):
        return self._store.num_workers


class ServerUpdateTrainer(Trainer):
    """A ``gluon.Trainer`` whose optimiser runs on the parameter servers (``dist_async``).

    A worker cannot read the servers' optimiser states, so :meth:`save_states` writes an empty
    file and :meth:`load_states` keeps the optimiser as it is: a resumed ``dist_async`` run
    restores the weights but restarts the optimiser's moments.
    """

    def save_states(self, fname):
        open(fname, 'wb').close()

    def load_states(self, fname):
        logger.warning('dist_async: the optimiser states live on the servers and were not saved; '
                       'the resumed run restarts them (%s ignored)', fname)
