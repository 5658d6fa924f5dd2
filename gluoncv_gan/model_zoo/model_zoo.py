"""Models by name, and their registration in GluonCV's model zoo."""
import logging

from . import dcgan, recipes, resgan  # noqa: F401  (their constructors register themselves)
from .registry import get_constructor, list_models

__all__ = ['get_model', 'get_model_list', 'register_with_gluoncv']


def get_model(name, **kwargs):
    """Return a gluoncv-gan model by name.

    Parameters
    ----------
    name : str
        Model name, e.g. 'dcgan_lfw' (see :func:`get_model_list`).
    pretrained : bool or str
        True loads the published weights; a string selects a version by hash tag.
    ctx : Context, default CPU
        Device of the parameters.
    root : str, default '$MXNET_HOME/models'
        Cache of pretrained weights.

    Returns
    -------
    HybridBlock
        The model.
    """
    if name.lower() not in list_models():
        raise ValueError('"%s" is not among the following model list:\n\t%s'
                         % (name, '\n\t'.join(list_models())))
    return get_constructor(name)(**kwargs)


def get_model_list():
    """Names of all gluoncv-gan models."""
    return list_models()


def register_with_gluoncv():
    """Add this plugin's names to ``gluoncv.model_zoo`` without replacing any existing name.

    Returns
    -------
    list of str
        The names that were added (a name GluonCV already has is skipped with a warning).
    """
    from gluoncv.model_zoo import model_zoo as gcv_zoo
    added = []
    for name in list_models():
        constructor = get_constructor(name)
        existing = gcv_zoo._models.get(name)
        if existing is None:
            gcv_zoo._models[name] = constructor
            added.append(name)
        elif existing is not constructor:
            logging.getLogger(__name__).warning(
                'gluoncv already has a model named %r; gluoncv-gan leaves it in place '
                '(use gluoncv_gan.model_zoo.get_model(%r) for ours)', name, name)
    return added
