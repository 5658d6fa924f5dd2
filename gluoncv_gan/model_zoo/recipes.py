"""Named recipes on the DCGAN networks with other objectives: the tutorial's exercises.

A name stands for an architecture and a training recipe (``configs/<name>.yaml``); the
objective is chosen by the recipe's ``loss`` key, not by the network, so any name trains with
any objective. Formulas and settings: docs/recipes.md.
"""
import mxnet as mx

from .dcgan import get_dcgan, zoo_constructor

__all__ = ['lsgan_lfw', 'wgan_lfw', 'sngan_lfw']


@zoo_constructor(resolution=64)
def lsgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """LSGAN for 64x64 LFW faces: the DCGAN generator, and the discriminator of ``sngan_lfw``
    (spectrally normalised convolutions, no BatchNorm), trained with the least-squares objective
    (configs/lsgan_lfw.yaml). With the tutorial's BatchNorm discriminator the least-squares
    objective collapses to one texture within the first epoch (docs/recipes.md).
    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='lsgan_lfw',
                     d_norm='spectral', **kwargs)


@zoo_constructor(resolution=64)
def wgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """WGAN for 64x64 LFW faces: the DCGAN networks (BatchNorm kept in the critic, as in the
    WGAN paper), trained as a Wasserstein critic with weight clipping (configs/wgan_lfw.yaml).
    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='wgan_lfw',
                     **kwargs)


@zoo_constructor(resolution=64)
def sngan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """SNGAN for 64x64 LFW faces: the DCGAN generator, and a discriminator whose convolutions
    are spectrally normalised and that has no BatchNorm; trained with the hinge objective
    (configs/sngan_lfw.yaml).
    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='sngan_lfw',
                     d_norm='spectral', **kwargs)
