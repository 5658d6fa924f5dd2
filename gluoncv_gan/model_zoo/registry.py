"""The model zoo's registry: each model constructor registers itself where it is defined.

As in timm's model registry, the names live apart from the model modules, so the model store
and the config check can list them without importing a model.
"""
from ..utils.registry import MODELS

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
