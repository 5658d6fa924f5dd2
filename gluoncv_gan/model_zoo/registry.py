"""The model zoo's registry: each model constructor registers itself where it is defined.

As in timm's model registry, the names live apart from the model modules: the model store and
the config check read them here without importing a model module themselves. The names are here
once :mod:`gluoncv_gan.model_zoo` is imported (``import gluoncv_gan`` does it), not before.
"""
from ..utils.name_registry import MODELS

__all__ = ['register_model', 'list_models', 'get_constructor']


def register_model(constructor):
    """Decorator: add a model constructor to the zoo under its function name."""
    return MODELS.register(constructor)


def list_models():
    """Names of all registered models, sorted."""
    return MODELS.names()


def get_constructor(name):
    """The constructor of model ``name`` (case-insensitive).

    Raises
    ------
    ValueError
        No model of that name; the message lists the registered ones.
    """
    return MODELS.get(name)
