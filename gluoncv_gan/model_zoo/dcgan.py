"""DCGAN (Radford et al. 2015) generator and discriminator, as in the MXNet DCGAN tutorial.

The 64x64 networks match the tutorial layer for layer; each doubling of the resolution adds
one up-sampling block to the generator and one down-sampling block to the discriminator.
"""
import math

import mxnet as mx
from mxnet.gluon import nn

from ..nn import SNConv2D, power_iterate_hybridized
from .model_store import get_model_file
from .pair import GANPair
from .registry import register_model

__all__ = ['DCGANGenerator', 'DCGANDiscriminator', 'DCGAN', 'get_dcgan',
           'dcgan_lfw', 'dcgan_lfw_128']


def _num_scale_blocks(resolution):
    """Number of hidden stride-2 blocks (3 for 64x64: 4->8->16->32, then the output block)."""
    steps = math.log2(resolution) - 3
    if resolution < 16 or steps != int(steps):
        raise ValueError('resolution must be a power of two >= 16 (64 is the tutorial), got %r'
                         % (resolution,))
    return int(steps)


class DCGANGenerator(nn.HybridBlock):
    """DCGAN generator: latent vector to image.

    Parameters
    ----------
    nz : int, default 100
        Size of the latent vector; inputs have shape (N, nz, 1, 1).
    ngf : int, default 64
        Width: the last hidden block has ``ngf`` channels, each block before it twice as many.
    channels : int, default 3
        Channels of the output image.
    resolution : int, default 64
        Output height and width (a power of two >= 16).

    Outputs have shape (N, channels, resolution, resolution) with values in [-1, 1].
    """

    def __init__(self, nz=100, ngf=64, channels=3, resolution=64, **kwargs):
        super().__init__(**kwargs)
        self.nz, self.ngf, self.channels, self.resolution = nz, ngf, channels, resolution
        num_blocks = _num_scale_blocks(resolution)
        width = ngf * 2 ** num_blocks
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            # 1x1 -> 4x4
            self.features.add(nn.Conv2DTranspose(width, 4, 1, 0, use_bias=False, in_channels=nz),
                              nn.BatchNorm(in_channels=width), nn.Activation('relu'))
            for _ in range(num_blocks):
                self.features.add(nn.Conv2DTranspose(width // 2, 4, 2, 1, use_bias=False,
                                                     in_channels=width),
                                  nn.BatchNorm(in_channels=width // 2), nn.Activation('relu'))
                width //= 2
            self.output = nn.HybridSequential(prefix='')
            self.output.add(nn.Conv2DTranspose(channels, 4, 2, 1, use_bias=False, in_channels=width),
                            nn.Activation('tanh'))

    def hybrid_forward(self, F, z):
        return self.output(self.features(z))


class DCGANDiscriminator(nn.HybridBlock):
    """DCGAN discriminator: image to one real-vs-fake logit.

    Parameters
    ----------
    ndf : int, default 64
        Width of the first block; each following block doubles it.
    channels : int, default 3
        Channels of the input image.
    resolution : int, default 64
        Input height and width (a power of two >= 16).
    norm : {'batch', 'spectral'}, default 'batch'
        'batch': the tutorial's network (BatchNorm after each hidden conv, no conv biases).
        'spectral': every conv spectrally normalised (:class:`gluoncv_gan.nn.SNConv2D`, with
        biases) and no BatchNorm, as in SNGAN (Miyato et al. 2018).

    Inputs have shape (N, channels, resolution, resolution); outputs have shape (N,), one logit
    per image (no sigmoid: the loss applies it).
    """

    def __init__(self, ndf=64, channels=3, resolution=64, norm='batch', **kwargs):
        super().__init__(**kwargs)
        if norm not in ('batch', 'spectral'):
            raise ValueError("norm must be 'batch' or 'spectral', got %r" % (norm,))
        self.ndf, self.channels, self.resolution, self.norm = ndf, channels, resolution, norm
        num_blocks = _num_scale_blocks(resolution)
        spectral = norm == 'spectral'

        def conv(width, kernel, stride, pad, in_width):
            if spectral:
                return SNConv2D(width, kernel, stride, pad, in_channels=in_width)
            return nn.Conv2D(width, kernel, stride, pad, use_bias=False, in_channels=in_width)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(conv(ndf, 4, 2, 1, channels), nn.LeakyReLU(0.2))
            width = ndf
            for _ in range(num_blocks):
                self.features.add(conv(width * 2, 4, 2, 1, width))
                if not spectral:
                    self.features.add(nn.BatchNorm(in_channels=width * 2))
                self.features.add(nn.LeakyReLU(0.2))
                width *= 2
            self.output = conv(1, 4, 1, 0, width)

    def forward(self, x, *args):
        if self.norm == 'spectral':
            power_iterate_hybridized(self, x)
        return super().forward(x, *args)

    def hybrid_forward(self, F, x):
        return F.reshape(self.output(self.features(x)), shape=(-1,))


class DCGAN(GANPair):
    """A generator and its discriminator, kept, saved and loaded together.

    Calling the block on latent vectors runs the generator.

    Parameters
    ----------
    nz : int, default 100
        Size of the latent vector.
    ngf, ndf : int, default 64
        Widths of the generator and the discriminator.
    channels : int, default 3
        Image channels.
    resolution : int, default 64
        Image height and width.
    d_norm : {'batch', 'spectral'}, default 'batch'
        Normalisation of the discriminator (see :class:`DCGANDiscriminator`).
    """

    def __init__(self, nz=100, ngf=64, ndf=64, channels=3, resolution=64, d_norm='batch',
                 **kwargs):
        super().__init__(nz, resolution, **kwargs)
        with self.name_scope():
            self.generator = DCGANGenerator(nz, ngf, channels, resolution, prefix='generator_')
            self.discriminator = DCGANDiscriminator(ndf, channels, resolution, norm=d_norm,
                                                    prefix='discriminator_')


def init_dcgan(net, ctx=None):
    """Initialise like the tutorial: weights ~ N(0, 0.02); BatchNorm gamma 1, beta 0."""
    net.initialize(mx.init.Normal(0.02), ctx=ctx or mx.cpu())
    return net


def get_dcgan(dataset, resolution=64, pretrained=False, ctx=mx.cpu(), root=None, name=None,
              **kwargs):
    """Build a DCGAN pair, initialised or with pretrained weights.

    Parameters
    ----------
    dataset : str
        Dataset the recipe is trained on (part of the model name, e.g. 'lfw').
    resolution : int, default 64
        Image size.
    pretrained : bool or str, default False
        True loads the published weights; a string selects a weights version by hash tag.
    ctx : Context, default CPU
        Device of the parameters.
    root : str, default '$MXNET_HOME/models'
        Cache of pretrained weights.
    name : str or None
        Model-zoo name whose weights ``pretrained`` loads; default 'dcgan_{dataset}' (with
        '_{resolution}' unless 64).
    **kwargs
        Passed to :class:`DCGAN` (nz, ngf, ndf, channels, d_norm).
    """
    net = DCGAN(resolution=resolution, **kwargs)
    name = name or 'dcgan_%s' % dataset + ('' if resolution == 64 else '_%d' % resolution)
    if pretrained:
        # published weights may be stored in float16: cast them to the blocks' float32
        net.load_parameters(get_model_file(name, tag=pretrained, root=root), ctx=ctx,
                            cast_dtype=True, dtype_source='current')
    else:
        init_dcgan(net, ctx)
    return net


# the sections every model-zoo constructor shares; zoo_constructor appends them
_CONSTRUCTOR_SECTIONS = """
    Parameters
    ----------
    pretrained : bool or str, default False
        True loads the published weights (where none are at hand, the error names the file,
        its sha1 and how to point the model store at a copy); a string selects a weights
        version by hash tag.
    ctx : Context, default CPU
        Device of the parameters.
    root : str, default '$MXNET_HOME/models'
        Cache of pretrained weights.
    **kwargs
        Passed to :class:`%(pair)s` (%(options)s).

    Returns
    -------
    %(pair)s
        ``.generator`` (100-d latent to 3x%(size)dx%(size)d in [-1, 1]) and ``.discriminator``.
"""


def zoo_constructor(resolution, pair='DCGAN', options=()):
    """Register a model-zoo constructor, completing its docstring with the shared sections.

    Parameters
    ----------
    resolution : int
        Height and width of the images the constructor's model makes.
    pair : str, default 'DCGAN'
        Name of the class the constructor returns.
    options : tuple of str
        Architecture options the constructor takes besides nz, ngf and ndf (config keys of the
        same names, e.g. 'skip_excitation'); kept as the constructor's ``options`` attribute,
        which the config check reads.
    """
    def register(constructor):
        constructor.__doc__ = (constructor.__doc__.rstrip() + '\n' + _CONSTRUCTOR_SECTIONS % {
            'size': resolution, 'pair': pair, 'options': ', '.join(('nz', 'ngf', 'ndf')
                                                                   + tuple(options))})
        constructor.options = tuple(options)
        return register_model(constructor)
    return register


@zoo_constructor(resolution=64)
def dcgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """DCGAN for 64x64 LFW faces: the MXNet tutorial's networks and recipe
    (configs/dcgan_lfw.yaml).
    """
    return get_dcgan('lfw', 64, pretrained=pretrained, ctx=ctx, root=root, **kwargs)


@zoo_constructor(resolution=128)
def dcgan_lfw_128(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """DCGAN for 128x128 LFW faces: the tutorial's networks with one more block each, a
    32-channel block at 128x128, so that every other resolution keeps the tutorial's widths
    (ngf and ndf 32; configs/dcgan_lfw_128.yaml).
    """
    kwargs.setdefault('ngf', 32)
    kwargs.setdefault('ndf', 32)
    return get_dcgan('lfw', 128, pretrained=pretrained, ctx=ctx, root=root, **kwargs)
