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
        program = os.path.basename(sys.argv[0]) if sys.argv else ''
        if program == '-m' or program.startswith('gluoncv-gan'):  # a command: one line, no trace
            print('error: %s' % MXNET_MISSING, file=sys.stderr)
            sys.exit(2)
        raise ImportError(MXNET_MISSING)


def _configure_threads():
    """Use every core the process may run on, unless the user chose a thread count.

    MXNet 1.9.1 starts one OpenMP thread on small machines when OMP_NUM_THREADS is unset; it
    reads the variable once, when it is imported, so this only helps when gluoncv_gan is
    imported before mxnet (as ``python -m gluoncv_gan.*`` does). Its ``MXSetNumOMPThreads``
    sets only the calling thread's OpenMP count, not that of the engine threads that run the
    operators (measured: no more threads run). When mxnet came first nothing is said here (a
    notebook doing inference does not care): :func:`thread_advice` is given by the commands
    where speed matters, ``train`` and ``benchmark``.
    """
    from .utils.cores import usable_cores  # imports nothing else: MXNet is not loaded yet
    if 'mxnet' not in sys.modules:
        os.environ.setdefault('OMP_NUM_THREADS', str(usable_cores()))
        return False
    return True


def thread_advice():
    """The advice on OpenMP threads when mxnet was imported before gluoncv_gan with
    OMP_NUM_THREADS unset on a machine of several cores, else None."""
    from .utils.cores import usable_cores
    cores = usable_cores()
    if not MXNET_IMPORTED_FIRST or USER_OMP_NUM_THREADS is not None or cores < 2:
        return None
    return ('mxnet was imported before gluoncv_gan with OMP_NUM_THREADS unset, so MXNet may use '
            'fewer OpenMP threads than the %d cores (training up to 1.7x slower): set '
            'OMP_NUM_THREADS=%d before starting Python, or import gluoncv_gan before mxnet'
            % (cores, cores))


def _import_gluoncv_without_torch():
    """Import GluonCV with torch hidden from it.

    GluonCV 0.10.5 raises on import when torch 2 is importable (it checks for torch < 2.0),
    and the ``[fid]`` extra installs torch 2 for the reference Inception network, which runs in
    a child process. The package uses GluonCV's MXNet half only, so GluonCV is imported once
    with ``import torch`` failing, and torch is importable again afterwards.
    """
    if 'gluoncv' in sys.modules or 'torch' in sys.modules:
        return
    sys.modules['torch'] = None  # makes `import torch` raise ImportError
    try:
        import gluoncv  # noqa: F401
    finally:
        del sys.modules['torch']


def _prepare_amx():
    """Before MXNet loads: ask Linux for the AMX tile state and point oneDNN at its AMX kernels,
    on CPUs that have AMX (see :mod:`gluoncv_gan.utils.amx`; ``--amp`` logs the path taken)."""
    from .utils.amx import setup_amx  # imports nothing else: MXNet is not loaded yet
    return setup_amx(mxnet_loaded='mxnet' in sys.modules)


# what the user chose, before _configure_threads: gluoncv_gan.launch shares cores among workers
# only when this is None
USER_OMP_NUM_THREADS = os.environ.get('OMP_NUM_THREADS')
# a worker, server or scheduler of gluoncv_gan.launch ends when the launcher dies, even by
# SIGKILL; started before MXNet's import, in which a server or the scheduler runs its loop
from .utils.lifeline import watch_parent  # noqa: E402
watch_parent()
_require_mxnet()
AMX_STATE = _prepare_amx()
# True when mxnet was imported first: MXNet then runs with the thread count it chose itself
MXNET_IMPORTED_FIRST = _configure_threads()
_import_gluoncv_without_torch()

from . import model_zoo  # noqa: E402
from .model_zoo import get_model, get_model_list  # noqa: E402,F401
# the subpackages, as attributes after `import gluoncv_gan` (as gluoncv.data, gluoncv.utils...)
from . import data, distributed, estimator, loss, metrics, nn, utils  # noqa: E402,F401
from .utils import amx as _amx  # noqa: E402

model_zoo.register_with_gluoncv()
_amx.pin_isa(AMX_STATE)
