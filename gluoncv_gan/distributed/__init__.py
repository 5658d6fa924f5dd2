"""Data-parallel training: which worker this process is, and trainers that reduce across workers.

Three ways to run: one process over its devices (``kvstore`` 'device' or 'local'), a
parameter-server job (``dist_*``, started by :mod:`gluoncv_gan.launch`; both trainers share the
worker's one dist kvstore through disjoint key ranges, :mod:`.kvstore`), or Horovod
(``--horovod``). ``batch_size`` is per device and gradients are averaged over the global batch;
worker r reads part r of each global batch and rows r of the global latents, so W workers
compute what one process with W devices does. Details and reasons: docs/distributed.md.
"""
import logging
import os

import mxnet as mx

from ..utils.config import ConfigError
from ..utils.name_registry import KVSTORES
from .horovod import import_horovod
from .kvstore import KeyRange, ServerUpdateTrainer, SharedKVStore

__all__ = ['KVSTORE_TYPES', 'Distribution', 'setup', 'save_worker_parameters', 'SharedKVStore',
           'KeyRange', 'ServerUpdateTrainer']

# what a worker of a parameter-server job needs (set by gluoncv_gan.launch or MXNet's launcher)
PS_VARIABLES = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_WORKER',
                'DMLC_NUM_SERVER')
# test and debugging aid: a folder where every worker saves its final parameters
WORKER_PARAMS_VARIABLE = 'GLUONCV_GAN_WORKER_PARAMS'

# gradient reduction: one process ('device', 'local') or a parameter-server job ('dist_*')
KVSTORE_TYPES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async')
for _name in KVSTORE_TYPES:  # the names the config check allows
    KVSTORES.register(mx.kv.create, name=_name)

logger = logging.getLogger(__name__)


class Distribution:
    """This process's part in data-parallel training.

    Parameters
    ----------
    kvstore : str
        One of :data:`KVSTORE_TYPES` ('device' under Horovod).
    rank, num_workers : int
        This worker's rank and the number of workers.
    shared : SharedKVStore or None
        The worker's dist kvstore (parameter-server jobs only).
    hvd : module or None
        ``horovod.mxnet`` (Horovod jobs only).
    """

    def __init__(self, kvstore='device', rank=0, num_workers=1, shared=None, hvd=None):
        self.kvstore, self.rank, self.num_workers = kvstore, rank, num_workers
        self.shared, self.hvd = shared, hvd
        self._trainers = 0
        self._flag_key = None
        self.devices = 1  # this process's devices, set by contexts()

    @property
    def is_root(self):
        """True on rank 0, the only rank that writes run files."""
        return self.rank == 0

    @property
    def shard(self):
        """(rank, workers): which part of each global batch this worker computes."""
        return self.rank, self.num_workers

    @property
    def log_prefix(self):
        return '[rank %d/%d] ' % (self.rank, self.num_workers) if self.num_workers > 1 else ''

    def describe(self):
        if self.hvd is not None:
            return 'Horovod, rank %d of %d workers' % (self.rank, self.num_workers)
        if self.shared is not None:
            return 'kvstore %s, rank %d of %d workers (%s servers)' % (
                self.kvstore, self.rank, self.num_workers, os.environ.get('DMLC_NUM_SERVER'))
        return 'kvstore %s, one process' % self.kvstore

    def get_state(self):
        """What a checkpoint records of the job: its workers and each worker's devices."""
        return {'num_workers': self.num_workers, 'devices': self.devices}

    def check_resume(self, state, batch_size, saved_batch_size):
        """Refuse to resume a checkpoint with another job shape.

        The number of workers and the images of a worker's iteration (``batch_size`` per device
        times its devices) define the global batches, the data order each worker sees and the
        length of an epoch, so a resumed job must keep both. A checkpoint without ``devices``
        was written when ``batch_size`` was the images of a worker's iteration, whatever its
        devices: it resumes where that count is kept (e.g. ``--cpus 2 --batch-size 16`` then
        resumes with ``--batch-size 8``).

        Raises
        ------
        ValueError
            Naming the saved and the requested values and how to resume.
        """
        state = state or {}
        saved_workers = state.get('num_workers', 1)
        saved_images = saved_batch_size * state.get('devices', 1)
        images = batch_size * self.devices
        if saved_workers != self.num_workers or saved_images != images:
            fix = ('--batch-size %d' % (saved_images // self.devices)
                   if saved_images % self.devices == 0 else
                   'a number of devices that divides %d' % saved_images)
            raise ValueError(
                'the checkpoint was written by a job of %d worker(s) with %d images per worker '
                'and iteration, but this job has %d worker(s) with %d (--batch-size %d per device '
                'x %d device(s)): resume with the same number of workers (launch -n %d) and %s, '
                'or start a new run from its model.params'
                % (saved_workers, saved_images, self.num_workers, images, batch_size,
                   self.devices, saved_workers, fix))

    def contexts(self, ctx):
        """The devices this process trains on, from the configured ``ctx`` list.

        Horovod runs one device per process: the one at this process's local rank.
        """
        chosen = ctx if self.hvd is None else [ctx[self.hvd.local_rank() % len(ctx)]]
        self.devices = len(chosen)
        return chosen

    def make_trainer(self, params, optimizer, optimizer_params=None):
        """A ``gluon.Trainer`` (or Horovod's) for ``params`` that reduces across workers.

        Call it in the same order on every worker (it assigns kvstore keys in call order).
        """
        optimizer_params = dict(optimizer_params or {})
        self._trainers += 1
        if self.hvd is not None:
            # Horovod divides by the number of workers itself; the prefix keeps the two
            # trainers' allreduce names apart
            return self.hvd.DistributedTrainer(params, optimizer, optimizer_params,
                                               prefix='trainer%d.' % self._trainers)
        if self.shared is None:
            return mx.gluon.Trainer(params, optimizer, optimizer_params, kvstore=self.kvstore,
                                    update_on_kvstore=False)
        if hasattr(params, 'values'):  # a ParameterDict or dict, as gluon.Trainer accepts
            params = list(params.values())
        keys = self.shared.view(len(params))
        if self.kvstore == 'dist_async':
            # gluon allows only server-side updates here; each push is one update with the
            # worker's own batch, so there is no averaging over workers
            return ServerUpdateTrainer(params, optimizer, optimizer_params, kvstore=keys,
                                       update_on_kvstore=True)
        # The servers sum the workers' gradients; dividing by the number of workers makes
        # step(per-worker batch) the mean over the global batch.
        optimizer_params['rescale_grad'] = \
            optimizer_params.get('rescale_grad', 1.0) / self.num_workers
        return mx.gluon.Trainer(params, optimizer, optimizer_params, kvstore=keys,
                                update_on_kvstore=False)

    def prepare_trainers(self, *trainers):
        """Create the trainers' kvstores now, on every worker, in the same order.

        ``gluon.Trainer`` does it lazily, at its first ``step`` or ``save_states``, and then
        copies the parameters of rank 0's first device to every device of every worker (all
        parameters, BatchNorm running statistics included). Done lazily, that copy would
        come after the first forward pass and overwrite the other devices' BatchNorm
        statistics of that pass; and in a parameter-server job it waits in a barrier of all
        workers, where rank 0 alone saving a checkpoint before a trainer's first step (the
        generator's, with ``n_critic`` > 1) would wait for ever. dist_async is left lazy: its
        trainers' states are never saved (:class:`ServerUpdateTrainer`), and the optimiser
        sent to the servers must carry the gradient scale that the first ``step`` sets.
        """
        if self.hvd is not None or self.kvstore == 'dist_async':
            return
        if self.shared is not None and self._flag_key is None:
            # one more key, after the trainers' on every worker: see any_worker
            self._flag_key = self.shared.view(1)
            self._flag_key.init(0, mx.nd.zeros((1,)))
        for trainer in trainers:
            if not trainer._kv_initialized:  # gluon has no public call for this
                trainer._init_kvstore()
            if trainer._params_to_init:
                trainer._init_params()

    def any_worker(self, flag):
        """True on every worker when ``flag`` is true on any of them (a collective call).

        Workers that must stop at the same iteration (a signal reaches each at its own moment)
        call it once per iteration: a one-number sum through the servers or Horovod. dist_async
        workers do not wait for each other, so each keeps its own answer.
        """
        if self.hvd is not None and self.num_workers > 1:
            total = self.hvd.allreduce(mx.nd.array([float(flag)]), average=False,
                                       name='gluoncv_gan.stop')
            return total.asscalar() > 0
        if self._flag_key is None:
            return bool(flag)
        out = mx.nd.zeros((1,))
        self._flag_key.pushpull(0, mx.nd.array([float(flag)]), out=out)
        return out.asscalar() > 0

    def broadcast_parameters(self, block):
        """Make every worker start from rank 0's parameters.

        Horovod needs this call; kvstore trainers do it themselves (their first step
        broadcasts rank 0's values through the servers).
        """
        if self.hvd is not None:
            self.hvd.broadcast_parameters(block.collect_params(), root_rank=0)

    def traffic(self):
        """(bytes pushed, bytes pulled) by this worker so far, or None without servers."""
        if self.shared is None:
            return None
        return self.shared.bytes_pushed, self.shared.bytes_pulled


def _check_ps_environment(kvstore):
    missing = [name for name in PS_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            '--kvstore %s makes this process one worker of a parameter-server job, but %s %s '
            'not set: start the job with python -m gluoncv_gan.launch -n 2 -s 1 -- python -m '
            'gluoncv_gan.train --kvstore %s ... (one machine; several: see docs/distributed.md), '
            'or train in one process with --kvstore device'
            % (kvstore, ', '.join(missing), 'is' if len(missing) == 1 else 'are', kvstore))


def setup(config):
    """Join the job that ``config`` asks for; return this process's :class:`Distribution`.

    Raises
    ------
    ConfigError
        When the job cannot be joined as configured (the message says what to change).
    """
    kvstore, horovod = config['kvstore'], config['horovod']
    if kvstore not in KVSTORE_TYPES:
        raise ConfigError('unknown kvstore %r: use one of %s' % (kvstore, ', '.join(KVSTORE_TYPES)))
    if horovod:
        if kvstore.startswith('dist'):
            raise ConfigError('--horovod replaces the parameter servers: drop --kvstore %s, or '
                              'drop --horovod' % kvstore)
        hvd = import_horovod()
        return Distribution('device', hvd.rank(), hvd.size(), hvd=hvd)
    if not kvstore.startswith('dist'):
        return Distribution(kvstore)
    _check_ps_environment(kvstore)
    if kvstore == 'dist_async':
        if config.get('lr_d') not in (None, config['lr']):
            raise ConfigError('dist_async updates both nets on the servers with one optimiser, so '
                              'lr_d (%g) must equal lr (%g): drop --lr-d or use dist_sync'
                              % (config['lr_d'], config['lr']))
        if config.get('lr_decay_epochs'):
            raise ConfigError('dist_async updates the weights on the servers, whose learning rate '
                              'lr_decay_epochs cannot change: use dist_sync with --lr-decay-epochs')
        if config.get('weight_clip'):
            raise ConfigError('dist_async updates the weights on the servers, where weight_clip '
                              'cannot clip them: use dist_sync with --weight-clip')
    store = mx.kv.create(kvstore)
    return Distribution(kvstore, store.rank, store.num_workers, shared=SharedKVStore(store))


def save_worker_parameters(block, dist):
    """Save this worker's parameters to ``$GLUONCV_GAN_WORKER_PARAMS/worker-<rank>.params``.

    Only when that variable names a folder: a check that the workers agree, used by the tests.
    """
    folder = os.environ.get(WORKER_PARAMS_VARIABLE)
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'worker-%d.params' % dist.rank)
    block.save_parameters(path)
    return path
