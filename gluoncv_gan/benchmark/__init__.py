"""Benchmark the project's DCGAN training step against the MXNet DCGAN tutorial's step.

Example::

    python -m gluoncv_gan.benchmark                          # under two minutes on 2 cores
    python -m gluoncv_gan.benchmark --iters 10 --repeats 5 --json bench.json
    python -m gluoncv_gan.benchmark --data-dir ~/.mxnet/datasets/lfw --threads 4

Persistent workers take turns timing their steps (A: training's step, built by
:func:`gluoncv_gan.pipeline.assembly.build_estimator`, :mod:`.project_worker`; B and C: the
tutorial's step, :mod:`.reference`, with MXNet's default and with the project's threads; D, with
``--amp``: A in bfloat16); see docs/performance.md#the-training-step-against-the-tutorials.
:mod:`.run` holds the parent's steps, :mod:`.workers` the worker processes, :mod:`.flops` the
FLOP count, :mod:`.table` the report.
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
