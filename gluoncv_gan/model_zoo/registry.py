"""The model zoo's registry: each model constructor registers itself where it is defined.

As in timm's model registry, the names live apart from the model modules: the model store and
the config check read them here without importing a model module themselves. The names are here
once :mod:`gluoncv_gan.model_zoo` is imported (``import gluoncv_gan`` does it), not before.

- ``register_model``: decorator adding a model constructor under its function name;
- ``list_models()``: the registered names, sorted;
- ``get_constructor(name)``: the constructor of ``name`` (case-insensitive); a ValueError lists
  the registered names when there is none.
"""
from ..utils.name_registry import MODELS

__all__ = ['register_model', 'list_models', 'get_constructor']

register_model = MODELS.register
list_models = MODELS.names
get_constructor = MODELS.get
