"""The MXNet DCGAN tutorial's training step, the baseline of ``python -m gluoncv_gan.benchmark``
and of the equivalence test in ``tests/test_benchmark.py``.

It runs as a tutorial user runs it: imperative ``nn.Sequential`` networks laid out like
:class:`gluoncv_gan.model_zoo.DCGANGenerator` / ``DCGANDiscriminator`` (with ``in_channels``, so
parameters can be copied between the two), sigmoid BCE, the tutorial's per-batch
``CustomMetric``, the generator run twice, Adam (2e-4, beta1 0.5) and a log line every 10
batches. It imports nothing from ``gluoncv_gan`` (whose ``__init__`` sets ``OMP_NUM_THREADS``):
the benchmark runs it as a file with MXNet's default threads, serving timing requests on stdin
with :func:`next_run`, the project worker's request loop too.
"""
import os
import sys

# What the process looked like before this module imported MXNet (the benchmark checks it).
PRE_IMPORT_STATE = {'mxnet_already_imported': 'mxnet' in sys.modules,
                    'gluoncv_gan_imported': 'gluoncv_gan' in sys.modules,
                    'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS')}

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

__all__ = ['build_generator', 'build_discriminator', 'facc', 'copy_parameters',
           'TutorialTrainer', 'run_batches', 'openmp_max_threads', 'os_thread_count',
           'thread_report', 'next_run', 'say_goodbye', 'timer_start', 'timer_stop']

# Environment variables that change how many threads MXNet, OpenMP or BLAS use.
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
                    'MXNET_OMP_MAX_THREADS', 'MXNET_CPU_WORKER_NTHREADS',
                    'MXNET_CPU_PRIORITY_NTHREADS', 'MXNET_ENGINE_TYPE', 'OMP_WAIT_POLICY',
                    'GOMP_SPINCOUNT', 'KMP_AFFINITY', 'OMP_PROC_BIND')


def build_generator(nz=100, ngf=64, nc=3):
    """The tutorial's 64x64 generator: 4 transposed convolutions with BatchNorm and ReLU, tanh.

    Parameters
    ----------
    nz : int, default 100
        Latent size (inputs are (N, nz, 1, 1)).
    ngf : int, default 64
        Width of the last hidden block.
    nc : int, default 3
        Image channels.

    Returns
    -------
    nn.Sequential
        Not initialised, not hybridized.
    """
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Conv2DTranspose(ngf * 8, 4, 1, 0, use_bias=False, in_channels=nz),
                nn.BatchNorm(in_channels=ngf * 8), nn.Activation('relu'))
        for width in (ngf * 8, ngf * 4, ngf * 2):
            net.add(nn.Conv2DTranspose(width // 2, 4, 2, 1, use_bias=False, in_channels=width),
                    nn.BatchNorm(in_channels=width // 2), nn.Activation('relu'))
        net.add(nn.Conv2DTranspose(nc, 4, 2, 1, use_bias=False, in_channels=ngf),
                nn.Activation('tanh'))
    return net


def build_discriminator(ndf=64, nc=3):
    """The tutorial's 64x64 discriminator: 5 convolutions, BatchNorm and LeakyReLU(0.2) between.

    Parameters
    ----------
    ndf : int, default 64
        Width of the first block.
    nc : int, default 3
        Image channels.

    Returns
    -------
    nn.Sequential
        Outputs (N, 1, 1, 1) raw logits; not initialised, not hybridized.
    """
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Conv2D(ndf, 4, 2, 1, use_bias=False, in_channels=nc), nn.LeakyReLU(0.2))
        for width in (ndf, ndf * 2, ndf * 4):
            net.add(nn.Conv2D(width * 2, 4, 2, 1, use_bias=False, in_channels=width),
                    nn.BatchNorm(in_channels=width * 2), nn.LeakyReLU(0.2))
        net.add(nn.Conv2D(1, 4, 1, 0, use_bias=False, in_channels=ndf * 8))
    return net


def facc(label, pred):
    """The tutorial's accuracy: ``pred > 0.5`` (on raw outputs, as the tutorial has it) vs label."""
    pred = pred.ravel()
    label = label.ravel()
    return ((pred > 0.5) == label).mean()


def copy_parameters(src, dst):
    """Copy every parameter of block ``src`` into block ``dst``, pairing them by position.

    Parameters
    ----------
    src, dst : Block
        Initialised blocks with the same parameter shapes in the same order (e.g. a
        ``DCGANGenerator`` and :func:`build_generator`).

    Raises
    ------
    ValueError
        When the counts or a pair of shapes differ.
    """
    src_params = list(src.collect_params().values())
    dst_params = list(dst.collect_params().values())
    if len(src_params) != len(dst_params):
        raise ValueError('%d parameters vs %d' % (len(src_params), len(dst_params)))
    for a, b in zip(src_params, dst_params):
        if a.shape != b.shape:
            raise ValueError('parameter %s has shape %s but %s has %s'
                             % (a.name, a.shape, b.name, b.shape))
        b.set_data(a.data().copy())


class TutorialTrainer(object):
    """The tutorial's training loop body, one batch per :meth:`step`.

    Parameters
    ----------
    nz, ngf, ndf, nc : int
        Latent size, network widths, image channels (the tutorial's 100, 64, 64, 3).
    lr, beta1 : float
        Adam settings of both networks (the tutorial's 2e-4 and 0.5).
    ctx : Context, default CPU
        Device.
    netG, netD : Block or None
        Networks to train instead of new :func:`build_generator` / :func:`build_discriminator`
        ones (given ones must be initialised).
    log_interval : int, default 10
        Batches between log lines (the tutorial logs when ``iter % 10 == 0``).
    logger : logging.Logger or None
        Where log lines go (default: the root logger, as in the tutorial).

    Attributes
    ----------
    iter : int
        Batches done in the current epoch (the tutorial's ``iter``).
    epoch : int
        Epochs finished.
    """

    def __init__(self, nz=100, ngf=64, ndf=64, nc=3, lr=2e-4, beta1=0.5, ctx=None, netG=None,
                 netD=None, log_interval=10, logger=None):
        self.ctx = ctx or mx.cpu()
        self.nz, self.log_interval = nz, log_interval
        self.logger = logger or logging.getLogger()
        if netG is None:
            netG = build_generator(nz, ngf, nc)
            netG.initialize(mx.init.Normal(0.02), ctx=self.ctx)
        if netD is None:
            netD = build_discriminator(ndf, nc)
            netD.initialize(mx.init.Normal(0.02), ctx=self.ctx)
        self.netG, self.netD = netG, netD
        self.loss = gluon.loss.SigmoidBinaryCrossEntropyLoss()
        self.trainerG = gluon.Trainer(netG.collect_params(), 'adam',
                                      {'learning_rate': lr, 'beta1': beta1})
        self.trainerD = gluon.Trainer(netD.collect_params(), 'adam',
                                      {'learning_rate': lr, 'beta1': beta1})
        self.metric = mx.metric.CustomMetric(facc)
        self._labels = {}
        self.iter = self.epoch = 0
        self._tic = self._btic = time.time()

    def labels(self, batch_size):
        """The tutorial's ``real_label`` (ones) and ``fake_label`` (zeros) of a batch size."""
        if batch_size not in self._labels:
            self._labels[batch_size] = (mx.nd.ones((batch_size,), ctx=self.ctx),
                                        mx.nd.zeros((batch_size,), ctx=self.ctx))
        return self._labels[batch_size]

    def step(self, data, latent_z=None):
        """One tutorial iteration: discriminator step, then generator step (G runs twice).

        Parameters
        ----------
        data : NDArray
            Real images (N, nc, 64, 64) in [-1, 1].
        latent_z : NDArray, numpy.ndarray or None
            Latent batch (N, nz, 1, 1); None draws it as the tutorial does,
            ``mx.nd.random_normal(0, 1, ...)``.

        Returns
        -------
        (NDArray, NDArray)
            ``errD`` and ``errG``, per-sample losses of shape (N,).
        """
        data = data.as_in_context(self.ctx)
        batch_size = data.shape[0]
        real_label, fake_label = self.labels(batch_size)
        if latent_z is None:
            latent_z = mx.nd.random_normal(0, 1, shape=(batch_size, self.nz, 1, 1), ctx=self.ctx)
        else:
            latent_z = mx.nd.array(latent_z, ctx=self.ctx, dtype='float32')
        netG, netD, loss, metric = self.netG, self.netD, self.loss, self.metric

        with autograd.record():
            output = netD(data).reshape((-1, 1))
            errD_real = loss(output, real_label)
            metric.update([real_label], [output])
            fake = netG(latent_z)
            output = netD(fake.detach()).reshape((-1, 1))
            errD_fake = loss(output, fake_label)
            errD = errD_real + errD_fake
            errD.backward()
            metric.update([fake_label], [output])
        self.trainerD.step(batch_size)

        with autograd.record():
            fake = netG(latent_z)
            output = netD(fake).reshape((-1, 1))
            errG = loss(output, real_label)
            errG.backward()
        self.trainerG.step(batch_size)

        if self.iter % self.log_interval == 0:
            name, acc = metric.get()
            self.logger.info('speed: %s samples/s', batch_size / (time.time() - self._btic))
            self.logger.info('discriminator loss = %f, generator loss = %f, binary training acc = '
                             '%f at iter %d epoch %d', mx.nd.mean(errD).asscalar(),
                             mx.nd.mean(errG).asscalar(), acc, self.iter, self.epoch)
        self.iter += 1
        self._btic = time.time()
        return errD, errG

    def end_epoch(self):
        """The tutorial's end of epoch: log the epoch's accuracy and time, reset the metric."""
        name, acc = self.metric.get()
        self.metric.reset()
        self.logger.info('binary training acc at epoch %d: %s=%f', self.epoch, name, acc)
        self.logger.info('time: %f', time.time() - self._tic)
        self.epoch += 1
        self.iter = 0
        self._tic = time.time()


def run_batches(trainer, data_iter, num_batches):
    """Run ``num_batches`` tutorial iterations over an ``mx.io.NDArrayIter``, epoch after epoch.

    When the iterator runs out, the epoch ends (:meth:`TutorialTrainer.end_epoch`) and the
    iterator is reset, as in the tutorial's epoch loop.
    """
    done = 0
    while done < num_batches:
        try:
            batch = data_iter.next()
        except StopIteration:
            trainer.end_epoch()
            data_iter.reset()
            continue
        trainer.step(batch.data[0])
        done += 1


def openmp_max_threads():
    """``omp_get_max_threads()`` of the OpenMP runtime loaded in this process, with its path.

    Returns
    -------
    (int or None, str or None)
        None when no OpenMP runtime is loaded or it cannot be asked (e.g. not Linux).
    """
    try:
        with open('/proc/self/maps') as f:
            paths = sorted({line.split()[-1] for line in f if line.split()[-1].startswith('/')})
    except OSError:
        return None, None
    for path in paths:
        name = os.path.basename(path)
        if name.startswith(('libgomp', 'libiomp', 'libomp')):
            try:
                return int(ctypes.CDLL(path).omp_get_max_threads()), path
            except (OSError, AttributeError):
                continue
    return None, None


def os_thread_count():
    """Threads of this process (from /proc; None where there is no /proc)."""
    try:
        return len(os.listdir('/proc/self/task'))
    except OSError:
        return None


def thread_report():
    """What decides this process's threads: environment, OpenMP, OS threads, imported packages."""
    omp_threads, omp_library = openmp_max_threads()
    os_threads = os_thread_count()
    return {'pid': os.getpid(),
            'environment': {k: os.environ.get(k) for k in THREAD_VARIABLES},
            'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS'),
            'MXNET_ENGINE_TYPE': os.environ.get('MXNET_ENGINE_TYPE'),
            'omp_get_max_threads': omp_threads,
            'openmp_library': omp_library,
            'os_threads': os_threads,
            'gluoncv_gan_imported': 'gluoncv_gan' in sys.modules,
            'mxnet_features': sorted(k for k, v in mx.runtime.Features().items() if v.enabled)}


def reply(stream, **values):
    """Write one JSON line to the benchmark's pipe."""
    stream.write(json.dumps(values) + '\n')
    stream.flush()


def protocol_stream():
    """The pipe to the benchmark (this process's stdout); stdout itself then goes to stderr.

    Anything else that prints (MXNet warnings, logging) cannot corrupt the replies.
    """
    stream = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def next_run(commands, stream, stdin=None):
    """The request loop of every benchmark worker: wait for the next ``run N``.

    Each other request line, ``<command> [n]``, is answered at once with
    ``commands[command](n)`` (n defaults to 1) as one JSON line on ``stream``.

    Returns
    -------
    int or None
        N of the ``run N`` request, or None on ``quit`` or the end of the input.
    """
    stdin = stdin or sys.stdin
    while True:
        words = stdin.readline().split()
        if not words or words[0] == 'quit':
            return None
        count = int(words[1]) if len(words) > 1 else 1
        if words[0] == 'run' and count >= 1:
            return count
        if words[0] == 'run':
            reply(stream, status='error', message='run needs N >= 1')
        elif words[0] in commands:
            reply(stream, status='ok', **commands[words[0]](count))
        else:
            reply(stream, status='error', message='unknown command %r' % words[0])


def say_goodbye(stream):
    """The worker's last reply: its peak resident memory."""
    reply(stream, status='bye', maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def timer_start():
    """Start a measurement (see :func:`timer_stop`)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, time.perf_counter()


def timer_stop(started):
    """Wait for MXNet to finish, then report wall time, CPU time and peak memory so far.

    ``cpu / elapsed`` is how many cores the process kept busy on average.
    """
    mx.nd.waitall()
    elapsed = time.perf_counter() - started[1]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {'elapsed': elapsed, 'cpu': usage.ru_utime + usage.ru_stime - started[0],
            'maxrss_kb': usage.ru_maxrss, 'os_threads': os_thread_count()}


def timed(fn, n):
    """Run ``fn(n)`` and measure it with :func:`timer_start` / :func:`timer_stop`."""
    started = timer_start()
    fn(n)
    return timer_stop(started)


def _worker_main(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark worker running the tutorial step.')
    parser.add_argument('--worker', action='store_true', help='serve "run N" requests on stdin')
    parser.add_argument('--cache', required=True, help='uint8 image cache (.npy, N x H x W x 3)')
    parser.add_argument('--num-images', type=int, required=True,
                        help='images of the cache to hold in memory as float32')
    parser.add_argument('--batch-size', type=int, default=64, help='images per batch')
    parser.add_argument('--seed', type=int, default=0, help='MXNet random seed')
    args = parser.parse_args(argv)
    stream = protocol_stream()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    mx.random.seed(args.seed)
    # the tutorial's data: every image as a float32 NDArray in [-1, 1], fed by NDArrayIter
    images = np.load(args.cache, mmap_mode='r')[:args.num_images]
    data = mx.nd.array(np.moveaxis(np.asarray(images), -1, 1).astype(np.float32) / 127.5 - 1)
    data_iter = mx.io.NDArrayIter(data, batch_size=args.batch_size)
    trainer = TutorialTrainer()
    reply(stream, status='ready', pre_import=PRE_IMPORT_STATE, threads=thread_report(),
          num_images=int(data.shape[0]))
    while True:
        count = next_run({}, stream)
        if count is None:
            break
        reply(stream, status='ok', **timed(lambda n: run_batches(trainer, data_iter, n), count))
    say_goodbye(stream)


if __name__ == '__main__':
    _worker_main()
