"""Benchmark the project's DCGAN training step against the MXNet DCGAN tutorial's step.

Example::

    python -m gluoncv_gan.benchmark                          # under two minutes on 2 cores
    python -m gluoncv_gan.benchmark --iters 10 --repeats 5 --json bench.json
    python -m gluoncv_gan.benchmark --data-dir ~/.mxnet/datasets/lfw --threads 4

Three training steps are timed, each in a persistent worker process of its own that waits on
stdin for ``run N``, runs N iterations on real LFW batches (64x64), waits for MXNet to finish
and answers with the elapsed time. The workers take turns (A B C A B C ...) after a warm-up,
so exactly one of them computes at any time and each keeps its warm state:

A. ``project``: the step exactly as ``python -m gluoncv_gan.train`` runs it: the config
   defaults, hybridized nets, :class:`~gluoncv_gan.estimator.GANEstimator` with its batch
   processor and the handlers the training script attaches (logging every ``log_interval``
   iterations, history, metrics, samples, checkpoints, TensorBoard when mxboard is
   installed), fed by :class:`~gluoncv_gan.data.loader.CachedBatchLoader`. The sample and
   checkpoint handlers get an interval longer than the worker's whole run and the loader
   serves every iteration as one epoch, so no grid or checkpoint is written inside a timed
   window. Threads: ``OMP_NUM_THREADS`` as the package sets it (or ``--threads``).
B. ``reference (MXNet defaults)``: :mod:`gluoncv_gan.reference`, the tutorial's step, run as
   a file by a bare interpreter (``python -c "runpy.run_path(...)"``, so the ``gluoncv_gan``
   package and its ``__init__`` are never imported) with every thread variable removed from
   its environment: MXNet picks its own thread count, as for a tutorial user. The worker
   reports what it saw before importing MXNet and what the OpenMP runtime then uses; the
   benchmark stops if ``gluoncv_gan`` was imported or a thread variable was set.
C. ``reference (project threads)``: the same worker with A's ``OMP_NUM_THREADS``.
D. (with ``--amp`` only) ``project with --amp``: worker A's step with bfloat16 convolutions
   (:mod:`gluoncv_gan.utils.amp`; the nets run imperatively there).

The project worker also measures generator sampling (inference mode, hybridized, batches of
256), :class:`CachedBatchLoader` throughput and JPEG decoding without a cache (the dataset with
``use_cache=False`` through a gluon ``DataLoader``), and every worker reports its peak resident
memory (``ru_maxrss``) after its last timed run.

FLOPs are counted analytically (see :func:`flops_per_image`) and turned into achieved GFLOP/s,
compared with a measured ceiling, the rate of a large fp32 matrix product in worker A (see
:func:`measure_gemm`).

It stays a package command (``gluoncv-gan benchmark``), not a script in a top-level
``benchmarks/`` folder as GluonCV keeps ``scripts/``: the project's top level is fixed, and the
workers start the installed package's own modules.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from . import reference as ref
from . import thread_advice
from .utils.command_line import check_output_path, command, prog, seed_argument
from .utils.cores import usable_cores
from .utils.fileio import atomic_path
from .utils.amp import cpu_has_bfloat16
from .utils.amx import cpu_info_path
from .utils.onednn import probe_kernels
from .utils.lifeline import child_environment, die_with_parent

__all__ = ['parse_args', 'conv_macs', 'flops_per_image', 'measure_gemm', 'run_benchmark',
           'format_report', 'main']

WORKERS = (('A', 'project', 'project: estimator + handlers'),
           ('B', 'reference_default', 'tutorial step, MXNet defaults'),
           ('C', 'reference_tuned', 'tutorial step, project threads'))
AMP_WORKER = ('D', 'project_amp', 'project with --amp (bfloat16)')
# Runs gluoncv_gan/reference.py as a plain file: the package __init__ is never imported.
BOOTSTRAP = ("import runpy, sys; path = sys.argv[1]; sys.argv = sys.argv[1:]; "
             "runpy.run_path(path, run_name='__main__')")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time the project\'s DCGAN training step against the MXNet tutorial\'s '
                    '(with MXNet\'s default threads and with the project\'s), plus sampling, '
                    'data loading, memory and FLOP rates.')
    parser.prog = prog('gluoncv_gan.benchmark')  # the command's real name in usage lines
    parser.add_argument('--batch-size', type=int, default=64, help='images per iteration')
    parser.add_argument('--iters', type=int, default=4, help='iterations per timed run')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs of each step (the median is reported)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations of each step before the timed runs')
    parser.add_argument('--threads', type=int, default=None,
                        help='OMP_NUM_THREADS of the project step and of the tuned reference '
                             '(default: what gluoncv_gan sets, i.e. $OMP_NUM_THREADS or the '
                             'number of usable cores)')
    parser.add_argument('--dataset', default=None, choices=['lfw', 'lfw_sample'],
                        help='lfw (prepared, or --data-dir) or the bundled lfw_sample (default: '
                             'lfw when it is prepared or --data-dir is given, else lfw_sample)')
    parser.add_argument('--data-dir', default=None,
                        help='an LFW root (default $MXNET_HOME/datasets/lfw)')
    parser.add_argument('--sample-batch-size', type=int, default=256,
                        help='latent vectors per generator call when timing sampling')
    parser.add_argument('--sample-batches', type=int, default=2,
                        help='timed generator calls (after one untimed call)')
    parser.add_argument('--loader-batches', type=int, default=50,
                        help='batches timed from the cached loader')
    parser.add_argument('--jpeg-images', type=int, default=256,
                        help='images decoded from JPEG without a cache')
    parser.add_argument('--seed', type=seed_argument, default=0, help='random seed')
    parser.add_argument('--json', default=None, help='write the results to this JSON file')
    parser.add_argument('--amp', action='store_true',
                        help='also time the project step with --amp (bfloat16 convolutions), '
                             'as a fourth worker D in the same interleaved runs')
    parser.add_argument('--gemm-size', type=int, default=2048,
                        help='matrix size of the GEMMs (fp32, and bfloat16 with --amp) that '
                             'measure the achievable rate')
    # internal: run as the project's benchmark worker
    parser.add_argument('--worker', default=None, choices=['project'], help=argparse.SUPPRESS)
    parser.add_argument('--iterations', type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument('--worker-amp', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ('batch_size', 'iters', 'repeats', 'sample_batch_size', 'sample_batches',
                 'loader_batches', 'jpeg_images'):
        if getattr(args, name) < 1:
            parser.error('--%s must be at least 1' % name.replace('_', '-'))
    if args.warmup < 0:
        parser.error('--warmup must be 0 or more')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be at least 1')
    return args


# ------------------------------------------------------------------------------------------
# Analytic FLOPs and the measured fp32 ceiling


def _conv_layers(block):
    from mxnet.gluon import nn
    for child in block._children.values():
        if isinstance(child, (nn.Conv2D, nn.Conv2DTranspose)):
            yield child
        else:
            for layer in _conv_layers(child):
                yield layer


def conv_macs(block, size):
    """Multiply-adds per image of every convolution of a sequential block of square images.

    Layers are taken in registration order, which is the order of the forward pass for the
    DCGAN networks (sequences of layers). Only convolutions change the spatial size there.

    Parameters
    ----------
    block : Block
        E.g. a ``DCGANGenerator`` (input size 1) or a ``DCGANDiscriminator``.
    size : int
        Height (= width) of the block's input.

    Returns
    -------
    list of (str, int, int)
        (layer name, multiply-adds per image, output size). A convolution costs
        ``out_h * out_w * C_out * C_in/groups * k * k``; a transposed convolution scatters
        each input pixel, ``in_h * in_w * C_in * C_out/groups * k * k``.
    """
    from mxnet.gluon import nn
    rows = []
    for layer in _conv_layers(block):
        kw = layer._kwargs
        k, s, p, d = kw['kernel'][0], kw['stride'][0], kw['pad'][0], kw['dilate'][0]
        shape = layer.weight.shape
        if isinstance(layer, nn.Conv2DTranspose):
            out = (size - 1) * s - 2 * p + d * (k - 1) + kw['adj'][0] + 1
            macs = size * size * shape[0] * shape[1] * k * k
        else:
            out = (size + 2 * p - d * (k - 1) - 1) // s + 1
            macs = out * out * shape[0] * shape[1] * k * k
        rows.append((layer.name, int(macs), int(out)))
        size = out
    return rows


def flops_per_image(nz=100, ngf=64, ndf=64, resolution=64, input_grad_only=False):
    """Convolution FLOPs per training image of the project's step and of the tutorial's.

    Accounting (2 FLOPs per multiply-add; BatchNorm, activations, losses and the optimiser
    are left out, they are a few percent at most):

    - ``Fg``, ``Fd``: one forward pass of the generator and of the discriminator.
    - A backward pass costs about twice its forward pass: the gradient with respect to the
      input and the gradient with respect to the weights cost about one forward each. The
      input gradient of the discriminator's first layer on real and on detached images is
      not needed but is counted, so the count is high by at most that layer's share (~1 %).
    - Project: the generator runs once (``Fg``); the discriminator runs on the real batch,
      on the detached fake batch and on the fake batch again for the generator step
      (``3 Fd``). The discriminator step backpropagates two passes (``4 Fd``); the generator
      step backpropagates through the discriminator (``2 Fd``, or ``1 Fd`` when the batch
      processor asks for the input gradient only, ``input_grad_only``) and the generator
      (``2 Fg``): ``3 Fg + 9 Fd`` (``3 Fg + 8 Fd``).
    - Tutorial: its generator step runs the generator a second time and computes the
      discriminator's weight gradients too: ``4 Fg + 9 Fd``.

    Parameters
    ----------
    nz, ngf, ndf : int
        Latent size and network widths.
    resolution : int
        Image size.
    input_grad_only : bool
        Whether the project's generator step skips the discriminator's weight gradients
        (``GANBatchProcessor.input_grad_only``).

    Returns
    -------
    dict
        ``generator_forward``, ``discriminator_forward``, ``project``, ``reference`` (FLOPs per
        image), ``formula`` and ``layers`` (per-layer multiply-adds of G and D).
    """
    from .model_zoo.dcgan import DCGANDiscriminator, DCGANGenerator
    g_layers = conv_macs(DCGANGenerator(nz, ngf, 3, resolution), 1)
    d_layers = conv_macs(DCGANDiscriminator(ndf, 3, resolution), resolution)
    fg = 2 * sum(m for _, m, _ in g_layers)
    fd = 2 * sum(m for _, m, _ in d_layers)
    d_passes = 8 if input_grad_only else 9
    return {'generator_forward': fg, 'discriminator_forward': fd,
            'project': 3 * fg + d_passes * fd, 'reference': 4 * fg + 9 * fd,
            'formula': {'project': '3 Fg + %d Fd' % d_passes, 'reference': '4 Fg + 9 Fd'},
            'input_grad_only': bool(input_grad_only),
            'layers': {'generator': [[n, m] for n, m, _ in g_layers],
                       'discriminator': [[n, m] for n, m, _ in d_layers]}}


def measure_gemm(repeats, ctx=None, size=2048, dtype='float32'):
    """Achievable rate: GFLOP/s of a ``size`` x ``size`` matrix product in ``dtype``.

    The ceiling the training steps are compared with: unlike a nominal peak from the clock and
    the instruction set, it sees the real clock and memory system. The product is oneDNN's
    (``FullyConnected``, an inner product), the library that runs the convolutions, with this
    process's OpenMP threads: ``mx.nd.dot`` goes to the OpenBLAS 0.3.13 inside MXNet 1.9.1,
    which takes a CPU it does not know (Sapphire Rapids, with AMX) for a Prescott and runs SSE3
    code, so that a convolution step beat its "ceiling" 2.63 times. The best of ``repeats``
    timed products is kept; ``busy`` is the CPU time over the wall time of the best one (the
    cores it kept busy). ``dtype`` 'bfloat16' casts the operands first (untimed).
    """
    import mxnet as mx
    ctx = ctx or mx.cpu()
    a = mx.nd.random.uniform(shape=(size, size), ctx=ctx)
    b = mx.nd.random.uniform(shape=(size, size), ctx=ctx)
    if dtype == 'bfloat16':
        from mxnet.contrib.amp.amp import bfloat16
        a, b = mx.nd.amp_cast(a, dtype=bfloat16), mx.nd.amp_cast(b, dtype=bfloat16)
    # the operator itself, not the float32-output wrapper that --amp installs
    product = getattr(mx.nd.FullyConnected, '__wrapped__', mx.nd.FullyConnected)

    def run():
        product(a, b, num_hidden=size, no_bias=True).wait_to_read()
    run()
    best = busy = None
    for _ in range(max(1, repeats)):
        cpu = _cpu_seconds()
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best:
            best, busy = elapsed, (_cpu_seconds() - cpu) / elapsed if elapsed > 0 else None
    return {'size': size, 'seconds': best, 'dtype': dtype, 'busy': busy,
            'gflops': 2.0 * size ** 3 / best / 1e9}


def _cpu_seconds():
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------
# The project's worker (runs in its own process: python -m gluoncv_gan.benchmark --worker)


def _gate_class():
    from mxnet.gluon.contrib.estimator.event_handler import EpochEnd
    return type('Gate', (_Gate, EpochEnd), {})


class _Gate(object):
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


def _gated_loader_class():
    from .data.loader import CachedBatchLoader

    class GatedLoader(CachedBatchLoader):
        """CachedBatchLoader serving its epochs one after another as one long epoch.

        Batches are the loader's own (:meth:`CachedBatchLoader.batch`); the estimator sees a
        single epoch of ``length`` batches, so per-epoch handlers never fire mid-benchmark.
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

    return GatedLoader


def _project_worker(args):
    stream = ref.protocol_stream()
    import mxnet as mx
    from mxnet.gluon.data import DataLoader
    from .data import LFW, LFWSample
    from .data.loader import CachedBatchLoader
    from .estimator import (CheckpointHandler, GANEstimator, GANLoggingHandler,
                            HistoryHandler, SampleHandler, TensorBoardHandler)
    from .loss import get_objective
    from .model_zoo import get_model
    from .pipeline.build import build_dataset, build_net, build_trainers, contexts, fixed_noise_for
    from .pipeline.training import setup_logging
    from .utils.config import load_config

    total = args.iterations + 1  # never reached: the benchmark says "quit" first
    save_dir = tempfile.mkdtemp(prefix='gluoncv-gan-benchmark-')
    try:
        config = load_config(None, {
            'dataset': args.dataset, 'data_dir': args.data_dir, 'batch_size': args.batch_size,
            'seed': args.seed, 'iterations': total, 'sample_interval': total,
            'checkpoint_interval': total, 'amp': bool(args.worker_amp)})
        logger = setup_logging(os.path.join(save_dir, 'train.log'))
        ctx = contexts(config['gpus'])
        dataset = build_dataset(config)
        net = build_net(config, ctx)
        trainer_g, trainer_d = build_trainers(net, config)
        estimator = GANEstimator(net, get_objective(config['loss']), trainer_g, trainer_d,
                                 context=ctx, seed=config['seed'])
        state = {}

        def gemm(n):
            return measure_gemm(n, ctx[0], size=args.gemm_size)

        def gemm_bf16(n):
            return measure_gemm(n, ctx[0], size=args.gemm_size, dtype='bfloat16')

        def sample(n):
            if 'generator' not in state:
                gen = get_model(config['model'], nz=config['nz'], ngf=config['ngf'],
                                ndf=config['ndf'], ctx=ctx[0]).generator
                gen.hybridize(static_alloc=True, static_shape=True)
                state['generator'] = gen
            gen, size = state['generator'], args.sample_batch_size
            with mx.autograd.predict_mode():
                gen(mx.nd.random.normal(shape=(size, config['nz'], 1, 1), ctx=ctx[0]))
                mx.nd.waitall()
                started = ref.timer_start()
                for _ in range(n):
                    gen(mx.nd.random.normal(shape=(size, config['nz'], 1, 1), ctx=ctx[0]))
                result = ref.timer_stop(started)
            return dict(result, images=n * size)

        def loader(n):
            plain = CachedBatchLoader(dataset, config['batch_size'], seed=config['seed'] + 1)
            done = 0
            started = ref.timer_start()
            while done < n:
                for _ in plain:
                    done += 1
                    if done == n:
                        break
            return dict(ref.timer_stop(started), images=n * config['batch_size'])

        def jpeg(n):
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

        ready = {'status': 'ready', 'threads': ref.thread_report(),
                 'pre_import': {'gluoncv_gan_imported': True,
                                'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS')},
                 'num_images': len(dataset), 'log_interval': config['log_interval'],
                 'input_grad_only': bool(getattr(estimator.batch_processor, 'input_grad_only',
                                                 False)),
                 'sample_interval': config['sample_interval'],
                 'checkpoint_interval': config['checkpoint_interval'],
                 'bfloat16_path': _bfloat16_path() if args.worker_amp else None}
        gate = _gate_class()(stream, {'sample': sample, 'loader': loader, 'jpeg': jpeg,
                                      'gemm': gemm, 'gemm_bf16': gemm_bf16},
                     config['log_interval'], ready)
        data = _gated_loader_class()(dataset, config['batch_size'], config['seed'], total, gate)
        # the handlers of gluoncv_gan.pipeline.training.train, built the same way
        fixed_noise = fixed_noise_for(config)
        history = HistoryHandler(save_dir, config['log_interval'])
        checkpoints = CheckpointHandler(os.path.join(save_dir, 'checkpoints'), fixed_noise,
                                        config, interval=config['checkpoint_interval'],
                                        keep=config['keep_checkpoints'],
                                        stateful={'history': history})
        real = dataset.images[data.epoch_indices(0)[:config['num_samples']]]
        samples = SampleHandler(os.path.join(save_dir, 'samples'), fixed_noise,
                                interval=config['sample_interval'], real_images=real)
        handlers = [GANLoggingHandler(config['log_interval'], total, len(data), logger=logger,
                                      progress_bar=False),
                    samples, history, checkpoints]
        if config['tensorboard']:
            board = TensorBoardHandler(os.path.join(save_dir, 'tensorboard'),
                                       config['log_interval'], sample_handler=samples)
            if board.available:
                handlers.append(board)
        handlers.append(gate)
        estimator.fit(data, total, event_handlers=handlers)
        ref.say_goodbye(stream)
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)


def _bfloat16_path():
    from .utils import amx
    return {'line': amx.describe(amx.STATE), 'path': amx.STATE['path'], 'isa': amx.STATE['isa']}


# ------------------------------------------------------------------------------------------
# The benchmark (the parent process)


def _die_at_once_with_parent():
    die_with_parent(signal.SIGKILL)


class _Worker(object):
    """A worker process: one JSON reply per request line."""

    def __init__(self, key, command, env, cwd, log_path):
        self.key, self.log_path = key, log_path
        self._log = open(log_path, 'w')
        # a worker holds nothing to save: it dies at once with the benchmark, even a SIGKILLed one
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=child_environment(env), cwd=cwd,
                                     universal_newlines=True, bufsize=1,
                                     preexec_fn=_die_at_once_with_parent
                                     if sys.platform.startswith('linux') else None)

    def _tail(self):
        self._log.flush()
        with open(self.log_path) as f:
            return ''.join(f.readlines()[-25:])

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError('benchmark worker %s exited (code %s); its log ends with:\n%s'
                               % (self.key, self.proc.returncode, self._tail()))
        message = json.loads(line)
        if message.get('status') == 'error':
            raise RuntimeError('benchmark worker %s: %s' % (self.key, message.get('message')))
        return message

    def ask(self, request):
        self.proc.stdin.write(request + '\n')
        self.proc.stdin.flush()
        return self.read()

    def close(self):
        """Ask the worker to quit; returns its last report."""
        message = self.ask('quit')
        self.proc.wait(timeout=120)
        self._log.close()
        return message

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._log.closed:
            self._log.close()


def resolve_data(args):
    """(dataset name, data_dir, note) the benchmark trains on."""
    from .utils.paths import default_dataset_root
    if args.dataset == 'lfw_sample':
        return 'lfw_sample', None, None
    if args.dataset == 'lfw' or args.data_dir:
        return 'lfw', args.data_dir, None
    root = default_dataset_root('lfw')
    if os.path.isdir(os.path.join(root, 'lfw-deepfunneled')):
        return 'lfw', root, None
    return 'lfw_sample', None, ('LFW is not prepared at %s, so the bundled lfw_sample faces are '
                                'used (prepare LFW with python -m gluoncv_gan.data.prepare_lfw, '
                                'or pass --data-dir)' % root)


def _check_threads(ready, threads):
    """Stop unless B runs with MXNet's defaults and A and C with ``threads`` OpenMP threads."""
    b = ready['B']
    problems = []
    if b['pre_import']['gluoncv_gan_imported'] or b['threads']['gluoncv_gan_imported']:
        problems.append('gluoncv_gan was imported')
    if b['pre_import']['mxnet_already_imported']:
        problems.append('mxnet was imported before the reference module')
    if b['pre_import']['OMP_NUM_THREADS'] is not None:
        problems.append('OMP_NUM_THREADS was set')
    set_vars = [k for k, v in b['threads']['environment'].items() if v is not None]
    if set_vars:
        problems.append('thread variables were set: %s' % ', '.join(set_vars))
    if problems:
        raise RuntimeError('the default-settings reference worker does not run with MXNet\'s '
                           'defaults: %s' % '; '.join(problems))
    for key in ('A', 'C'):
        report = ready[key]['threads']
        if report['OMP_NUM_THREADS'] != str(threads):
            raise RuntimeError('worker %s runs with OMP_NUM_THREADS=%s, not %d'
                               % (key, report['OMP_NUM_THREADS'], threads))
        if report['omp_get_max_threads'] not in (None, threads):
            raise RuntimeError('worker %s: OpenMP uses %s threads, not %d'
                               % (key, report['omp_get_max_threads'], threads))


def _median_rate(runs, images):
    return images / statistics.median(r['elapsed'] for r in runs)


def run_benchmark(args, progress=None):
    """Run the benchmark described by ``args`` (see :func:`parse_args`); return the results.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags.
    progress : callable or None
        Called with a line of text as the benchmark advances.

    Returns
    -------
    dict
        Everything the JSON file holds.
    """
    progress = progress or (lambda text: None)
    began = time.time()
    from .pipeline.build import build_dataset
    from .utils.config import load_config

    dataset_name, data_dir, note = resolve_data(args)
    notes = [note] if note else []
    config = load_config(None, {'dataset': dataset_name, 'data_dir': data_dir,
                                'batch_size': args.batch_size})
    progress('Data: %s (building its cache if needed, untimed)' % dataset_name)
    dataset = build_dataset(config)
    if len(dataset) < args.batch_size:
        raise ValueError('%s has %d images, fewer than one batch of %d'
                         % (dataset_name, len(dataset), args.batch_size))
    threads = args.threads or int(os.environ.get('OMP_NUM_THREADS') or usable_cores())
    planned = args.warmup + args.repeats * args.iters
    reference_images = min(len(dataset) // args.batch_size, planned) * args.batch_size

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tuned_env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    default_env = {k: v for k, v in os.environ.items() if k not in ref.THREAD_VARIABLES}
    project_cmd = [sys.executable, '-m', 'gluoncv_gan.benchmark', '--worker', 'project',
                   '--dataset', dataset_name, '--batch-size', str(args.batch_size),
                   '--seed', str(args.seed), '--iterations', str(planned),
                   '--sample-batch-size', str(args.sample_batch_size),
                   '--gemm-size', str(args.gemm_size)]
    if data_dir:
        project_cmd += ['--data-dir', os.path.abspath(os.path.expanduser(data_dir))]
    reference_cmd = [sys.executable, '-c', BOOTSTRAP, os.path.abspath(ref.__file__), '--worker',
                     '--cache', dataset.cache_path, '--num-images', str(reference_images),
                     '--batch-size', str(args.batch_size), '--seed', str(args.seed)]
    workdir = tempfile.mkdtemp(prefix='gluoncv-gan-benchmark-')
    specs = {'A': (project_cmd, tuned_env, package_parent),
             'B': (reference_cmd, default_env, workdir),
             'C': (reference_cmd, tuned_env, workdir),
             'D': (project_cmd + ['--worker-amp'], tuned_env, package_parent)}
    timed = WORKERS + ((AMP_WORKER,) if args.amp else ())
    workers, ready, runs, final = {}, {}, {k: [] for k, _, _ in timed}, {}
    extras = {}
    try:
        for key, _, label in timed:
            progress('Starting worker %s (%s)' % (key, label))
            command, env, cwd = specs[key]
            workers[key] = _Worker(key, command, env, cwd, os.path.join(workdir, key + '.log'))
            ready[key] = workers[key].read()
        _check_threads(ready, threads)
        if args.warmup:
            for key, _, _ in timed:
                progress('Warm-up of %s: %d iterations' % (key, args.warmup))
                runs_warm = workers[key].ask('run %d' % args.warmup)
                ready[key]['warmup'] = runs_warm
        for repeat in range(args.repeats):
            for key, _, _ in timed:
                runs[key].append(workers[key].ask('run %d' % args.iters))
            progress('Repeat %d/%d: %s' % (repeat + 1, args.repeats, ', '.join(
                '%s %.2f s' % (k, runs[k][-1]['elapsed']) for k, _, _ in timed)))
        progress('Sampling, cached loader and JPEG decoding (in worker A)')
        extras['sample'] = workers['A'].ask('sample %d' % args.sample_batches)
        extras['loader'] = workers['A'].ask('loader %d' % args.loader_batches)
        extras['jpeg'] = workers['A'].ask('jpeg %d' % args.jpeg_images)
        progress('fp32 GEMM %dx%d (in worker A)' % (args.gemm_size, args.gemm_size))
        extras['gemm'] = workers['A'].ask('gemm 5')
        if args.amp:
            progress('bfloat16 GEMM %dx%d (in worker D)' % (args.gemm_size, args.gemm_size))
            extras['gemm_bf16'] = workers['D'].ask('gemm_bf16 5')
        for key, _, _ in timed:
            final[key] = workers[key].close()
    finally:
        for worker in workers.values():
            worker.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    flops = flops_per_image(config['nz'], config['ngf'], config['ndf'], config['image_size'],
                            input_grad_only=ready['A']['input_grad_only'])
    images = args.batch_size * args.iters
    rates = {key: _median_rate(runs[key], images) for key, _, _ in timed}
    per_image = {'A': flops['project'], 'B': flops['reference'], 'C': flops['reference'],
                 'D': flops['project']}
    gflops = {name: rates[key] * per_image[key] / 1e9 for key, name, _ in timed}
    features = sorted(ready['A']['threads']['mxnet_features'])
    notes.append('A: sample and checkpoint intervals are %d iterations, more than the %d the '
                 'worker runs, and its loader serves them as one epoch, so no sample grid, '
                 'checkpoint or per-epoch write happens in a timed window; logging, history, '
                 'metrics%s run as in training (log_interval %d: %d log lines fell in timed '
                 'runs)' % (ready['A']['sample_interval'], planned,
                            ' and TensorBoard' if _has_mxboard() else '',
                            ready['A']['log_interval'],
                            sum(r['log_lines'] for r in runs['A'])))
    notes.append('B and C hold %d images of the cache in memory as float32 and feed them with '
                 'mx.io.NDArrayIter, as the tutorial does; A reads batches from the uint8 cache'
                 % reference_images)
    result = {
        'train_samples_per_s': rates['A'],
        'reference_samples_per_s': rates['B'],
        'reference_tuned_samples_per_s': rates['C'],
        'ratio': rates['A'] / rates['B'],
        'ratio_tuned': rates['A'] / rates['C'],
        'sample_images_per_s': extras['sample']['images'] / extras['sample']['elapsed'],
        'loader_images_per_s': extras['loader']['images'] / extras['loader']['elapsed'],
        'loader_jpeg_images_per_s': extras['jpeg']['images'] / extras['jpeg']['elapsed'],
        'peak_rss_mb': {name: runs[key][-1]['maxrss_kb'] / 1024.0 for key, name, _ in timed},
        'threads': {
            'cpu_count': os.cpu_count(), 'usable_cores': usable_cores(),
            'workers': {name: {
                'OMP_NUM_THREADS': ready[key]['threads']['OMP_NUM_THREADS'],
                'MXNET_ENGINE_TYPE': ready[key]['threads']['MXNET_ENGINE_TYPE']
                or 'default (ThreadedEnginePerDevice)',
                'omp_get_max_threads': ready[key]['threads']['omp_get_max_threads'],
                'os_threads': runs[key][-1]['os_threads'],
                'cores_busy': statistics.median(r['cpu'] / r['elapsed'] for r in runs[key]),
                'gluoncv_gan_imported': ready[key]['threads']['gluoncv_gan_imported'],
                'pre_import': ready[key]['pre_import']} for key, name, _ in timed}},
        'mxnet_features': features,
        'flops_per_image': flops,
        'gflops': gflops,
        'gemm_gflops': extras['gemm']['gflops'],
        'gemm_fraction': {name: g / extras['gemm']['gflops'] for name, g in gflops.items()},
        'settings': {'batch_size': args.batch_size, 'image_size': config['image_size'],
                     'iters': args.iters, 'repeats': args.repeats, 'warmup': args.warmup,
                     'threads': threads, 'dataset': dataset_name,
                     'data_dir': data_dir, 'num_images': len(dataset),
                     'reference_images': reference_images, 'seed': args.seed,
                     'sample_batch_size': args.sample_batch_size,
                     'sample_batches': args.sample_batches,
                     'loader_batches': args.loader_batches,
                     'jpeg_images': extras['jpeg']['images'],
                     'jpeg_num_workers': extras['jpeg']['num_workers'],
                     'order': 'interleaved ' + ' '.join(k for k, _, _ in timed) + ' per repeat',
                     'workers': [list(w) for w in timed], 'gemm_size': args.gemm_size},
        'times': {name: [r['elapsed'] for r in runs[key]] for key, name, _ in timed},
        'runs': {name: runs[key] for key, name, _ in timed},
        'warmup_times': {name: ready[key].get('warmup', {}).get('elapsed')
                         for key, name, _ in timed},
        'extras': extras,
        'final_maxrss_mb': {name: final[key]['maxrss_kb'] / 1024.0 for key, name, _ in timed},
        'notes': notes,
        'wall_seconds': time.time() - began,
    }
    if args.amp:
        result['amp_samples_per_s'] = rates['D']
        result['ratio_amp'] = rates['D'] / rates['A']
        result['gemm_bf16_gflops'] = extras['gemm_bf16']['gflops']
        result['gemm_fraction']['project_amp'] = gflops['project_amp'] / extras['gemm_bf16'][
            'gflops']
        result['bfloat16_path'] = ready['D'].get('bfloat16_path')
        progress('oneDNN kernels of a bfloat16 step (DNNL_VERBOSE, in a child process)')
        result['onednn'] = probe_kernels(bfloat16=True, env=tuned_env)
    return result


def _has_mxboard():
    try:
        import mxboard  # noqa: F401
    except ImportError:
        return False
    return True


def format_report(result):
    """The results as a text table."""
    s = result['settings']
    lines = ['gluoncv-gan training benchmark: batch %d, %dx%d, %s (%d images); median of %d runs '
             'of %d iterations after %d warm-up iterations, %s'
             % (s['batch_size'], s['image_size'], s['image_size'], s['dataset'],
                s['num_images'], s['repeats'], s['iters'], s['warmup'], s['order']),
             '']
    header = '%-34s %9s %7s %8s %6s %7s %6s %7s %8s  %s' % (
        'step', 'samples/s', 'vs A', 'GFLOP/s', 'OMP', 'omp max', 'OS thr', 'busy', 'RSS MB',
        'times (s)')
    lines += [header, '-' * len(header)]
    rates = {'A': result['train_samples_per_s'], 'B': result['reference_samples_per_s'],
             'C': result['reference_tuned_samples_per_s'], 'D': result.get('amp_samples_per_s')}
    for key, name, label in [tuple(w) for w in s.get('workers', WORKERS)]:
        t = result['threads']['workers'][name]
        lines.append('%-34s %9.2f %7.2f %8.1f %6s %7s %6s %7.2f %8.0f  %s' % (
            '%s %s' % (key, label), rates[key], rates[key] / rates['A'], result['gflops'][name],
            t['OMP_NUM_THREADS'] or 'unset', t['omp_get_max_threads'], t['os_threads'],
            t['cores_busy'], result['peak_rss_mb'][name],
            ' '.join('%.2f' % x for x in result['times'][name])))
    flops = result['flops_per_image']
    lines += ['',
              'ratio A/B (project vs tutorial with MXNet defaults): %.2fx' % result['ratio'],
              'ratio A/C (project vs tutorial with the project\'s threads): %.2fx'
              % result['ratio_tuned'],
              'generator sampling (batch %d, inference, hybridized): %.1f images/s'
              % (s['sample_batch_size'], result['sample_images_per_s']),
              'CachedBatchLoader from the uint8 cache: %.0f images/s'
              % result['loader_images_per_s'],
              'JPEG decoding without a cache (DataLoader, %d thread workers, %d images): '
              '%.0f images/s' % (s['jpeg_num_workers'], s['jpeg_images'],
                                 result['loader_jpeg_images_per_s']),
              'FLOPs per training image: project %.3f GFLOP (%s), tutorial %.3f GFLOP (%s); '
              'Fg %.3f, Fd %.3f GFLOP'
              % (flops['project'] / 1e9, flops['formula']['project'], flops['reference'] / 1e9,
                 flops['formula']['reference'], flops['generator_forward'] / 1e9,
                 flops['discriminator_forward'] / 1e9)]
    if result.get('gemm_gflops'):
        lines.append('measured fp32 GEMM (oneDNN inner product %dx%d, best of 5, %s threads): '
                     '%.0f GFLOP/s; achieved: A %.0f%%, C %.0f%% of it'
                     % (s['gemm_size'], s['gemm_size'], s['threads'], result['gemm_gflops'],
                        100 * result['gemm_fraction']['project'],
                        100 * result['gemm_fraction']['reference_tuned']))
    if result.get('amp_samples_per_s'):
        lines.append('--amp (bfloat16, imperative nets; the kernels below name the operators): '
                     '%.2f samples/s, %.2fx the fp32 project step'
                     % (result['amp_samples_per_s'], result['ratio_amp']))
        lines.append('measured bfloat16 GEMM (same product, bfloat16 operands): %.0f GFLOP/s '
                     '(%.2fx the fp32 one); achieved: D %.0f%% of it (fp32-equivalent FLOPs)'
                     % (result['gemm_bf16_gflops'],
                        result['gemm_bf16_gflops'] / result['gemm_gflops'],
                        100 * result['gemm_fraction']['project_amp']))
        path = result.get('bfloat16_path') or {}
        onednn = result.get('onednn') or {}
        lines.append('%s; oneDNN ISA: %s' % (path.get('line', 'bfloat16 path: unknown'),
                                             onednn.get('isa') or 'unknown (%s)'
                                             % (onednn.get('error') or 'no verbose output')))
        lines.append('oneDNN bfloat16 kernels: %s' % (', '.join(
            '%s %s %s' % (k[0], k[2], k[1]) for k in onednn.get('kernels', []) if k[3] == 'bf16')
            or 'none seen'))
    lines.append('MXNet features: %s' % ', '.join(result['mxnet_features']))
    lines.append('cpu count %d, usable cores %d; MXNET_ENGINE_TYPE %s; "busy" = CPU time / wall '
                 'time of the worker during its timed runs'
                 % (result['threads']['cpu_count'], result['threads']['usable_cores'],
                    result['threads']['workers']['project']['MXNET_ENGINE_TYPE']))
    lines += ['note: %s' % n for n in result['notes']]
    lines.append('benchmark wall time: %.0f s' % result['wall_seconds'])
    return '\n'.join(lines)


@command()
def main(argv=None):
    args = parse_args(argv)
    if args.json:  # refused now, not after the benchmark has run
        check_output_path(args.json, '--json')
    if args.worker == 'project':
        if args.iterations is None:
            sys.exit('error: --worker needs --iterations')
        _project_worker(args)
        return
    if thread_advice():
        print('warning: %s' % thread_advice(), file=sys.stderr, flush=True)
    if args.amp and not cpu_has_bfloat16():  # before any worker starts
        sys.exit('error: --amp needs a CPU with bfloat16 instructions (avx512_bf16 or AMX in the '
                 'flags of %s) and this one has neither: run the benchmark without --amp'
                 % cpu_info_path())
    result = run_benchmark(args, progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(format_report(result))
    if args.json:
        with atomic_path(args.json) as tmp:
            with open(tmp, 'w') as f:
                json.dump(result, f, indent=2, sort_keys=True)
        print('wrote %s' % args.json)


if __name__ == '__main__':
    main()
