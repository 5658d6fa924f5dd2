"""The project's benchmark worker: training as ``python -m gluoncv_gan.train`` runs it, in a
process of its own (``python -m gluoncv_gan.benchmark --worker project``), timed on request.

The estimator and its handlers come from :func:`gluoncv_gan.pipeline.assembly.build_estimator`,
the function training calls, so the timed step is training's step.
"""
import os
import shutil
import tempfile

import mxnet as mx
from mxnet.gluon.contrib.estimator.event_handler import EpochEnd
from mxnet.gluon.data import DataLoader

from .. import distributed
from ..data import LFW, LFWSample
from ..data.loader import CachedBatchLoader
from ..model_zoo import get_model
from ..pipeline.assembly import build_estimator
from ..pipeline.build import build_dataset, contexts
from ..pipeline.training import setup_logging
from ..utils import amx
from ..utils.config import load_config
from . import reference as ref
from .flops import measure_gemm

__all__ = ['run_project_worker', 'Gate', 'GatedLoader']


class Gate(EpochEnd):
    """Between batches, wait for a ``run N`` request; time each run of N iterations.

    Called by the loader before it fetches each batch, i.e. after the previous iteration and
    all its handlers; other requests (``sample``, ``loader``, ``jpeg``) are served while
    training is paused there.
    """

    def __init__(self, stream, commands, log_interval, ready):
        self.stream, self.commands, self.log_interval = stream, commands, log_interval
        self.ready = ready
        self.remaining = self.done = 0
        self.started = None
        self.log_lines = 0
        self.closed = False

    def epoch_end(self, estimator, *args, **kwargs):
        """Stop the estimator once ``quit`` arrived (it would start another epoch)."""
        return self.closed

    def proceed(self):
        if self.closed:
            return False
        if self.remaining == 0 and self.started is not None:
            result = ref.timer_stop(self.started)
            self.started = None
            ref.reply(self.stream, status='ok', log_lines=self.log_lines, **result)
        if self.ready is not None:
            ref.reply(self.stream, **self.ready)
            self.ready = None
        if self.remaining == 0:
            count = ref.next_run(self.commands, self.stream)
            if count is None:
                self.closed = True
                return False
            self.log_lines = sum(1 for it in range(self.done + 1, self.done + count + 1)
                                 if it % self.log_interval == 0)
            self.remaining = count
            self.started = ref.timer_start()
        self.remaining -= 1
        self.done += 1
        return True


class GatedLoader(CachedBatchLoader):
    """CachedBatchLoader serving its epochs one after another as one long epoch.

    Batches are the loader's own (:meth:`CachedBatchLoader.batch`); the estimator sees a single
    epoch of ``length`` batches, so per-epoch handlers never fire mid-benchmark.
    """

    def __init__(self, dataset, batch_size, seed, length, gate):
        super().__init__(dataset, batch_size, seed=seed)
        self._per_epoch = super().__len__()
        self._length, self._gate = length, gate

    def __len__(self):
        return self._length

    def __iter__(self):
        index = 0
        while self._gate.proceed():
            yield self.batch(index // self._per_epoch, index % self._per_epoch)
            index += 1


class Requests:
    """The worker's requests besides ``run N``: each takes N and answers with its timing."""

    def __init__(self, config, dataset, ctx, args):
        self.config, self.dataset, self.ctx, self.args = config, dataset, ctx, args
        self._generator = None

    def table(self):
        return {'sample': self.sample, 'loader': self.loader, 'jpeg': self.jpeg,
                'gemm': self.gemm, 'gemm_bf16': self.gemm_bf16}

    def gemm(self, n):
        return measure_gemm(n, self.ctx[0], size=self.args.gemm_size)

    def gemm_bf16(self, n):
        return measure_gemm(n, self.ctx[0], size=self.args.gemm_size, dtype='bfloat16')

    def sample(self, n):
        config, ctx, size = self.config, self.ctx[0], self.args.sample_batch_size
        if self._generator is None:
            self._generator = get_model(config['model'], nz=config['nz'], ngf=config['ngf'],
                                        ndf=config['ndf'], ctx=ctx).generator
            self._generator.hybridize(static_alloc=True, static_shape=True)
        with mx.autograd.predict_mode():
            self._generator(mx.nd.random.normal(shape=(size, config['nz'], 1, 1), ctx=ctx))
            mx.nd.waitall()
            started = ref.timer_start()
            for _ in range(n):
                self._generator(mx.nd.random.normal(shape=(size, config['nz'], 1, 1), ctx=ctx))
            result = ref.timer_stop(started)
        return dict(result, images=n * size)

    def loader(self, n):
        batch_size = self.config['batch_size']
        plain = CachedBatchLoader(self.dataset, batch_size, seed=self.config['seed'] + 1)
        done = 0
        started = ref.timer_start()
        while done < n:
            for _ in plain:
                done += 1
                if done == n:
                    break
        return dict(ref.timer_stop(started), images=n * batch_size)

    def jpeg(self, n):
        config = self.config
        if config['dataset'] == 'lfw_sample':
            raw = LFWSample(size=config['image_size'], use_cache=False)
        else:
            raw = LFW(root=config['data_dir'], size=config['image_size'], use_cache=False)
        n = min(n, len(raw))
        workers = int(os.environ.get('OMP_NUM_THREADS') or 1)
        data = DataLoader(raw.take(n), batch_size=config['batch_size'], last_batch='keep',
                          num_workers=workers, thread_pool=True)
        for _ in data:  # untimed pass: the files are then in the page cache
            pass
        started = ref.timer_start()
        for _ in data:
            pass
        return dict(ref.timer_stop(started), images=n, num_workers=workers)


def run_project_worker(args):
    """Serve ``run N`` and the other requests on stdin until ``quit``, training the config
    defaults on ``args``' data with the estimator and handlers of training."""
    stream = ref.protocol_stream()
    total = args.iterations + 1  # never reached: the benchmark says "quit" first
    save_dir = tempfile.mkdtemp(prefix='gluoncv-gan-benchmark-')
    try:
        config = load_config(None, {
            'dataset': args.dataset, 'data_dir': args.data_dir, 'batch_size': args.batch_size,
            'seed': args.seed, 'iterations': total, 'sample_interval': total,
            'checkpoint_interval': total, 'amp': bool(args.worker_amp)})
        logger = setup_logging(os.path.join(save_dir, 'train.log'))
        dist = distributed.setup(config)
        ctx = dist.contexts(contexts(config['gpus'], config['cpus']))
        dataset = build_dataset(config)
        gate = Gate(stream, Requests(config, dataset, ctx, args).table(),
                    config['log_interval'], None)
        data = GatedLoader(dataset, config['batch_size'], config['seed'], total, gate)
        parts = build_estimator(config, save_dir, dataset, data, total, ctx, dist,
                                logger=logger, progress_bar=False)
        dist.prepare_trainers(parts.estimator.trainer_g, parts.estimator.trainer_d)
        dist.broadcast_parameters(parts.estimator.net)
        gate.ready = _ready(config, dataset, parts.estimator, args.worker_amp)
        parts.estimator.fit(data, total, event_handlers=parts.handlers + [gate])
        ref.say_goodbye(stream)
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)


def _ready(config, dataset, estimator, amp):
    """The worker's first reply: its threads and the settings of its training."""
    return {'status': 'ready', 'threads': ref.thread_report(),
            'pre_import': {'gluoncv_gan_imported': True,
                           'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS')},
            'num_images': len(dataset), 'log_interval': config['log_interval'],
            'input_grad_only': bool(getattr(estimator.batch_processor, 'input_grad_only', False)),
            'sample_interval': config['sample_interval'],
            'checkpoint_interval': config['checkpoint_interval'],
            'bfloat16_path': {'line': amx.describe(amx.STATE), 'path': amx.STATE['path'],
                              'isa': amx.STATE['isa']} if amp else None}
