"""Opt-in bfloat16 training on CPU through MXNet's automatic mixed precision (AMP).

MXNet 1.9.1's AMP runs the operators of its bfloat16 list (``Convolution`` and
``FullyConnected``) in bfloat16 and everything else, ``Deconvolution`` included, in float32;
weights, gradients and optimiser states stay float32. bfloat16 has float32's exponent range, so
no loss scaling is needed. Two limits of MXNet 1.9.1, measured on this project's DCGAN:

- a hybridized net under bfloat16 AMP crashes the process (segmentation fault), so the nets
  run imperatively;
- AMP patches MXNet's operator namespaces for the whole process and cannot be turned off.
"""
import logging

__all__ = ['enable_bfloat16', 'cpu_has_bfloat16']


def cpu_has_bfloat16():
    """True when /proc/cpuinfo lists ``avx512_bf16`` (native bfloat16 dot products)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return 'avx512_bf16' in line.split()
    except OSError:
        pass
    return False


def enable_bfloat16(logger=None):
    """Turn on bfloat16 AMP for this process (before the nets are built and run).

    Raises
    ------
    RuntimeError
        When this MXNet build has no oneDNN (MKLDNN), which the bfloat16 kernels need.
    """
    import mxnet as mx
    from mxnet.contrib import amp
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        raise RuntimeError('--amp needs an MXNet build with MKLDNN (oneDNN), which provides the '
                           'bfloat16 kernels; this build has none: train without --amp, or '
                           'install the mxnet wheel from PyPI (built with MKLDNN)')
    if not cpu_has_bfloat16():
        (logger or logging.getLogger(__name__)).warning(
            'this CPU does not report avx512_bf16: oneDNN emulates bfloat16 and --amp will '
            'likely be slower than float32')
    amp.init(target_dtype='bfloat16')
