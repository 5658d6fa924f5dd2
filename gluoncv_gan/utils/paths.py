"""Where gluoncv-gan keeps datasets and models, following MXNet's conventions."""
import os

__all__ = ['mxnet_home', 'default_dataset_root', 'default_model_root']


def mxnet_home():
    """MXNet's data folder: ``$MXNET_HOME`` when set, else ``~/.mxnet``."""
    return os.path.expanduser(os.environ.get('MXNET_HOME', os.path.join('~', '.mxnet')))


def default_dataset_root(name):
    """Default folder of dataset ``name``, e.g. ``~/.mxnet/datasets/lfw``."""
    return os.path.join(mxnet_home(), 'datasets', name)


def default_model_root():
    """Default cache of pretrained weights, ``~/.mxnet/models``."""
    return os.path.join(mxnet_home(), 'models')
