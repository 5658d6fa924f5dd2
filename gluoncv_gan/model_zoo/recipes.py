"""Named recipes on the DCGAN networks with other objectives: the tutorial's exercises.

A name stands for an architecture and a training recipe (``configs/<name>.yaml``); the
objective is chosen by the recipe's ``loss`` key, not by the network, so any name trains with
any objective. Formulas and settings: docs/recipes.md.
"""
import mxnet as mx

from .dcgan import get_dcgan

__all__ = ['lsgan_lfw', 'wgan_lfw', 'sngan_lfw']

_COMMON_DOC = """
    Parameters
    ----------
    pretrained : bool or str, default False
        True loads the published weights (none are published for this name yet: that raises
        an error saying so); a string selects a weights version by hash tag.
    ctx : Context, default CPU
        Device of the parameters.
    root : str, default '$MXNET_HOME/models'
        Cache of pretrained weights.
    **kwargs
        Passed to :class:`DCGAN` (nz, ngf, ndf).

    Returns
    -------
    DCGAN
        ``.generator`` (100-d latent to 3x64x64 in [-1, 1]) and ``.discriminator``.
"""


def _documented(constructor):
    """Append the parameters every recipe constructor shares to its docstring."""
    constructor.__doc__ = constructor.__doc__.rstrip() + '\n' + _COMMON_DOC
    return constructor


@_documented
def lsgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """LSGAN for 64x64 LFW faces: the DCGAN generator, and the discriminator of ``sngan_lfw``
    (spectrally normalised convolutions, no BatchNorm), trained with the least-squares objective
    (configs/lsgan_lfw.yaml). With the tutorial's BatchNorm discriminator the least-squares
    objective collapses to one texture within the first epoch (docs/recipes.md).

    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='lsgan_lfw',
                     d_norm='spectral', **kwargs)


@_documented
def wgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """WGAN for 64x64 LFW faces: the DCGAN networks (BatchNorm kept in the critic, as in the
    WGAN paper), trained as a Wasserstein critic with weight clipping (configs/wgan_lfw.yaml).

    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='wgan_lfw',
                     **kwargs)


@_documented
def sngan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """SNGAN for 64x64 LFW faces: the DCGAN generator, and a discriminator whose convolutions
    are spectrally normalised and that has no BatchNorm; trained with the hinge objective
    (configs/sngan_lfw.yaml).

    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='sngan_lfw',
                     d_norm='spectral', **kwargs)
