"""gluoncv-gan: generative adversarial networks for GluonCV.

Importing the package registers its models in ``gluoncv.model_zoo``, so that
``gluoncv.model_zoo.get_model('dcgan_lfw')`` works.
"""
__version__ = '0.1.0'

from . import model_zoo  # noqa: E402
from .model_zoo import get_model, get_model_list  # noqa: E402,F401

model_zoo.register_with_gluoncv()
