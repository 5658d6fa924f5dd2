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
   defaults, and the estimator with every handler training attaches, built by the same function
   (:func:`gluoncv_gan.pipeline.assembly.build_estimator`: logging and its clock, history,
   metrics, samples, checkpoints, the report, TensorBoard when mxboard is installed), fed by a
   :class:`~gluoncv_gan.data.loader.CachedBatchLoader`. The sample and checkpoint handlers get
   an interval longer than the worker's whole run and the loader serves every iteration as one
   epoch, so no grid, checkpoint or report is written inside a timed window. Threads:
   ``OMP_NUM_THREADS`` as the package sets it (or ``--threads``).
B. ``reference (MXNet defaults)``: :mod:`gluoncv_gan.benchmark.reference`, the tutorial's step, run as
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
workers start the installed package's own modules. Its modules: :mod:`.run` (the parent's steps),
:mod:`.workers` (the worker processes), :mod:`.project_worker`, :mod:`.reference`, :mod:`.flops`
and :mod:`.table` (the text report).
"""
import argparse
import json
import sys

from .. import thread_advice
from ..utils.amp import cpu_has_bfloat16
from ..utils.amx import cpu_info_path
from ..utils.command_line import check_output_path, command, prog, seed_argument
from ..utils.fileio import atomic_path
from .flops import conv_macs, flops_per_image, measure_gemm
from .run import run_benchmark
from .table import format_report

__all__ = ['parse_args', 'conv_macs', 'flops_per_image', 'measure_gemm', 'run_benchmark',
           'format_report', 'main']


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


@command()
def main(argv=None):
    args = parse_args(argv)
    if args.json:  # refused now, not after the benchmark has run
        check_output_path(args.json, '--json')
    if args.worker == 'project':
        if args.iterations is None:
            sys.exit('error: --worker needs --iterations')
        from .project_worker import run_project_worker  # imports the training pipeline
        run_project_worker(args)
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
