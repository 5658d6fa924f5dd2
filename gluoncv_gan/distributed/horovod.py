"""Horovod for ``--horovod``: its import, with a clear error when it is not installed.

This path cannot be run where Horovod is not installable (this project's CI); it is kept to the
documented Horovod-MXNet calls: ``hvd.init``, ``hvd.rank``/``size``/``local_rank``,
``hvd.DistributedTrainer`` and ``hvd.broadcast_parameters``.
"""
from ..utils.config import ConfigError

__all__ = ['import_horovod']

INSTALL_HINT = ('install Horovod with MXNet support (HOROVOD_WITH_MXNET=1 pip install '
                "'horovod[mxnet]>=0.21'; it compiles against the installed MXNet and needs "
                'MPI or Gloo, cmake and a C++ compiler), then start the job with horovodrun, '
                'e.g. horovodrun -np 2 python -m gluoncv_gan.train --horovod ...; or use the '
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
