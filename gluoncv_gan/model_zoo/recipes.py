"""Named recipes on the DCGAN networks with other objectives: the tutorial's exercises.

A name stands for an architecture and a training recipe (``configs/<name>.yaml``); the
objective is chosen by the recipe's ``loss`` key, not by the network, so any name trains with
any objective. Formulas and settings: docs/recipes.md.
"""
import mxnet as mx

from .dcgan import get_dcgan
from .registry import register_model

__all__ = ['lsgan_lfw', 'wgan_lfw', 'sngan_lfw']


@register_model
def lsgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """LSGAN for 64x64 LFW faces: the DCGAN generator, and the discriminator of ``sngan_lfw``
    (spectrally normalised convolutions, no BatchNorm), trained with the least-squares objective
    (configs/lsgan_lfw.yaml). With the tutorial's BatchNorm discriminator the least-squares
    objective collapses to one texture within the first epoch (docs/recipes.md).

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
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='lsgan_lfw',
                     d_norm='spectral', **kwargs)


@register_model
def wgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """WGAN for 64x64 LFW faces: the DCGAN networks (BatchNorm kept in the critic, as in the
    WGAN paper), trained as a Wasserstein critic with weight clipping (configs/wgan_lfw.yaml).

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
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='wgan_lfw',
                     **kwargs)


@register_model
def sngan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """SNGAN for 64x64 LFW faces: the DCGAN generator, and a discriminator whose convolutions
    are spectrally normalised and that has no BatchNorm; trained with the hinge objective
    (configs/sngan_lfw.yaml).

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
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, name='sngan_lfw',
                     d_norm='spectral', **kwargs)
