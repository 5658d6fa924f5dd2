"""gluoncv-gan's model zoo: GAN models by name, as in ``gluoncv.model_zoo``."""
from .dcgan import *  # noqa: F401,F403
from .recipes import *  # noqa: F401,F403
from .resgan import *  # noqa: F401,F403
from .pair import GANPair  # noqa: F401
from .model_store import get_model_file, pretrained_model_list  # noqa: F401
from .model_zoo import get_model, get_model_list, register_with_gluoncv  # noqa: F401
