"""Network layers that Gluon lacks: spectrally normalised convolution."""
from .spectral_norm import (SNConv2D, power_iterate_hybridized, power_iteration,  # noqa: F401
                            spectral_norm_sigma)
