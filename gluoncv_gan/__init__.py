"""gluoncv-gan: generative adversarial networks for GluonCV.

Importing the package registers its models in ``gluoncv.model_zoo``, so that
``gluoncv.model_zoo.get_model('dcgan_lfw')`` works.
"""
import importlib.util
import os
import sys

__version__ = '0.1.0'

MXNET_MISSING = ('gluoncv_gan needs MXNet 1.9.1, which is not installed: install the CPU build '
                 'with pip install "gluoncv-gan[cpu]" (or pip install mxnet==1.9.1), or the build '
                 'for your GPU, e.g. pip install mxnet-cu112==1.9.1')


def _require_mxnet():
    """Fail with one message naming what to install when no MXNet build is importable.

    MXNet is not a requirement of the package, as in GluonCV: the user chooses the build.
    """
    if importlib.util.find_spec('mxnet') is None:
        raise ImportError(MXNET_MISSING)


def _configure_threads():
    """Use every core the process may run on, unless the user chose a thread count.

    MXNet 1.9.1 starts one OpenMP thread on small machines when OMP_NUM_THREADS is unset; it
    reads the variable once, when it is imported, so this only helps when gluoncv_gan is
    imported before mxnet (as ``python -m gluoncv_gan.*`` does).
    """
    if 'mxnet' in sys.modules:
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    os.environ.setdefault('OMP_NUM_THREADS', str(cores))


# what the user chose, before _configure_threads: gluoncv_gan.launch shares cores among workers
# only when this is None
USER_OMP_NUM_THREADS = os.environ.get('OMP_NUM_THREADS')
_require_mxnet()
_configure_threads()

from . import model_zoo  # noqa: E402
from .model_zoo import get_model, get_model_list  # noqa: E402,F401

model_zoo.register_with_gluoncv()
