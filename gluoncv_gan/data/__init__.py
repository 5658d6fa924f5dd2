"""Datasets and data preparation for GAN training."""
from .lfw import LFW, LFWSample, FaceFolder, to_gan_array  # noqa: F401
