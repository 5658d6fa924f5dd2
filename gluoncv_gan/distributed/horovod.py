"""Horovod for ``--horovod``: its import, with a clear error when it is not installed.

Horovod is not a dependency: it compiles against the installed MXNet. CI builds it
(``.ci/build_horovod``: Gloo, no MPI) and runs ``tests/test_horovod.py``, where 2 ranks started by ``horovodrun`` give
the parameters of the parameter-server job and of one process with the same global batch. The
calls used are ``hvd.init``, ``hvd.rank``/``size``/``local_rank``, ``hvd.DistributedTrainer``,
``hvd.broadcast_parameters`` and ``hvd.allreduce``.
"""
from ..utils.config import ConfigError

__all__ = ['import_horovod']

INSTALL_HINT = ('build Horovod against the installed MXNet (cmake and a C++ compiler; a few '
                'minutes on 2 cores): HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 '
                'HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 '
                'pip install --no-build-isolation horovod==0.28.1, then start the job with '
                'horovodrun -np 2 --gloo python -m gluoncv_gan.train --horovod ...; or use the '
                'parameter servers instead: python -m gluoncv_gan.launch -n 2 -s 1 -- '
                'python -m gluoncv_gan.train --kvstore dist_sync ...')


def import_horovod():
    """``horovod.mxnet``, initialised.

    Raises
    ------
    ConfigError
        When it does not import, saying why and how to install it.
    """
    try:
        import horovod.mxnet as hvd
    except ImportError as err:  # also an installed Horovod built without MXNet
        raise ConfigError('--horovod needs horovod.mxnet, which does not import here (%s): %s'
                          % (err, INSTALL_HINT)) from None
    hvd.init()
    return hvd
