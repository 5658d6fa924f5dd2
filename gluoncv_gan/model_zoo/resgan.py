"""Residual generator (SNGAN / Mimicry layout), with optional skip-layer excitation (FastGAN), and
two discriminators for it, sized for 64x64 faces on a CPU budget.

Generator: a 4x4 map from the latent, one up-sampling residual block per doubling, then
BatchNorm, ReLU, a 3x3 convolution to RGB and tanh. Discriminator: the DCGAN tutorial's
(BatchNorm, the default of ``resgan_lfw``), or spectrally normalised down-sampling residual
blocks without BatchNorm, each convolving once before and once after a 2x2 average pooling (as
StyleGAN2's, 4x fewer multiply-adds than SNGAN's), then ReLU, a sum over positions and a linear
score. Widths, multiply-adds and the recipe: docs/recipes.md#residual-networks-resgan_lfw.
"""
import math

import mxnet as mx
from mxnet.gluon import nn

from ..nn import SNConv2D, power_iterate_hybridized
from .dcgan import DCGANDiscriminator, zoo_constructor
from .model_store import get_model_file
from .pair import GANPair

__all__ = ['UpBlock', 'DownBlock', 'SkipExcitation', 'ResGANGenerator', 'ResGANDiscriminator',
           'ResGAN', 'get_resgan', 'resgan_lfw']


def _num_blocks(resolution):
    """Residual blocks between 4x4 and ``resolution`` (4 for 64x64)."""
    steps = math.log2(resolution) - 2
    if resolution < 16 or steps != int(steps):
        raise ValueError('resolution must be a power of two >= 16, got %r' % (resolution,))
    return int(steps)


def _upsample(F, x):
    return F.UpSampling(x, scale=2, sample_type='nearest', num_args=1)


def _pool(F, x):
    return F.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type='avg')


class UpBlock(nn.HybridBlock):
    """Pre-activation residual block that doubles the resolution (the SNGAN generator block).

    ``x -> BN, ReLU, up-sample x2, conv3x3 -> BN, ReLU, conv3x3``, plus the shortcut
    ``up-sample x2 (conv1x1 x)``.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    channels : int
        Channels of the output.
    """

    def __init__(self, in_channels, channels, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn1 = nn.BatchNorm(in_channels=in_channels)
            self.conv1 = nn.Conv2D(channels, 3, 1, 1, use_bias=False, in_channels=in_channels)
            self.bn2 = nn.BatchNorm(in_channels=channels)
            self.conv2 = nn.Conv2D(channels, 3, 1, 1, in_channels=channels)
            self.shortcut = nn.Conv2D(channels, 1, in_channels=in_channels)

    def hybrid_forward(self, F, x):
        h = self.conv1(_upsample(F, F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        # a 1x1 convolution commutes with nearest up-sampling: run it on 4x fewer pixels
        return h + _upsample(F, self.shortcut(x))


class DownBlock(nn.HybridBlock):
    """Residual block that halves the resolution, spectrally normalised, without BatchNorm.

    ``x -> [ReLU], conv3x3 -> ReLU, 2x2 average pool, conv3x3``, plus the shortcut
    ``conv1x1 (pool x)``.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    channels : int
        Channels of the output.
    first : bool, default False
        The block that reads the image: no ReLU before its first convolution, which maps the
        image straight to ``channels`` (the other blocks keep ``in_channels`` until the second).
    """

    def __init__(self, in_channels, channels, first=False, **kwargs):
        super().__init__(**kwargs)
        self.first = first
        mid = channels if first else in_channels
        with self.name_scope():
            self.conv1 = SNConv2D(mid, 3, 1, 1, in_channels=in_channels)
            self.conv2 = SNConv2D(channels, 3, 1, 1, in_channels=mid)
            self.shortcut = SNConv2D(channels, 1, in_channels=in_channels)

    def hybrid_forward(self, F, x):
        h = x if self.first else F.relu(x)
        h = self.conv2(_pool(F, F.relu(self.conv1(h))))
        return h + self.shortcut(_pool(F, x))


class SkipExcitation(nn.HybridBlock):
    """FastGAN's skip-layer excitation: per-channel gates for a high-resolution feature map,
    computed from a low-resolution one.

    ``gate = sigmoid(conv1x1(LeakyReLU(conv4x4(pool_to_4x4(low)), 0.1)))``, one value per
    image and channel; the output is ``high * gate``.

    Parameters
    ----------
    in_channels : int
        Channels of the low-resolution map.
    channels : int
        Channels of the high-resolution map.
    low_resolution : int
        Side of the low-resolution map (a multiple of 4).
    """

    def __init__(self, in_channels, channels, low_resolution, **kwargs):
        super().__init__(**kwargs)
        self.pool = low_resolution // 4
        with self.name_scope():
            self.conv1 = nn.Conv2D(channels, 4, in_channels=in_channels)
            self.conv2 = nn.Conv2D(channels, 1, in_channels=channels)

    def hybrid_forward(self, F, low, high):
        if self.pool > 1:
            low = F.Pooling(low, kernel=(self.pool, self.pool), stride=(self.pool, self.pool),
                            pool_type='avg')
        gate = F.sigmoid(self.conv2(F.LeakyReLU(self.conv1(low), slope=0.1)))
        return F.broadcast_mul(high, gate)


def generator_widths(ngf, resolution):
    """Channels of the generator's maps at 4x4, 8x8, ..., ``resolution``: ``ngf * 32 / side``
    (8 ngf at 4x4, ngf at 32x32, ngf / 2 at 64x64), at least 1."""
    return [max(ngf * 32 // (4 << i), 1) for i in range(_num_blocks(resolution) + 1)]


def discriminator_widths(ndf, resolution):
    """Output channels of the discriminator's blocks, first to last: ``ndf * 32 / side`` at
    each output side (ndf at 32x32, 8 ndf at 4x4), at least 1."""
    sides = [resolution >> (i + 1) for i in range(_num_blocks(resolution))]
    return [max(ndf * 32 // side, 1) for side in sides]


class ResGANGenerator(nn.HybridBlock):
    """Residual generator: latent vector to image.

    Parameters
    ----------
    nz : int, default 100
        Size of the latent vector; inputs have shape (N, nz, 1, 1).
    ngf : int, default 64
        Width: ``ngf * 32 / side`` channels at each side (see :func:`generator_widths`).
    channels : int, default 3
        Channels of the output image.
    resolution : int, default 64
        Output height and width (a power of two >= 16).
    skip_excitation : bool, default False
        Gate the channels of every map of side 32 or more with a :class:`SkipExcitation` from
        the map of 1/8 its side (64x64: 4x4 gates 32x32, 8x8 gates 64x64).

    Outputs have shape (N, channels, resolution, resolution) with values in [-1, 1].
    """

    def __init__(self, nz=100, ngf=64, channels=3, resolution=64, skip_excitation=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.nz, self.ngf, self.channels, self.resolution = nz, ngf, channels, resolution
        self.skip_excitation = bool(skip_excitation)
        widths = generator_widths(ngf, resolution)
        # (index of the gated map, index of the gating map) in [4x4 map, block outputs...]
        self._gates = [(i, i - 3) for i in range(3, len(widths))] if skip_excitation else []
        with self.name_scope():
            self.stem = nn.Conv2DTranspose(widths[0], 4, 1, 0, use_bias=False, in_channels=nz)
            self.blocks = nn.HybridSequential(prefix='')
            for cin, cout in zip(widths[:-1], widths[1:]):
                self.blocks.add(UpBlock(cin, cout))
            self.excitations = nn.HybridSequential(prefix='')
            for target, source in self._gates:
                self.excitations.add(SkipExcitation(widths[source], widths[target],
                                                    4 << source))
            self.output = nn.HybridSequential(prefix='')
            # a stride-1 transposed convolution is a 3x3 convolution (with its kernel flipped
            # and transposed); MXNet 1.9.1's oneDNN computes the backward pass of a convolution
            # to 3 channels over 10x slower than this (docs/recipes.md)
            self.output.add(nn.BatchNorm(in_channels=widths[-1]), nn.Activation('relu'),
                            nn.Conv2DTranspose(channels, 3, 1, 1, in_channels=widths[-1]),
                            nn.Activation('tanh'))

    def hybrid_forward(self, F, z):
        maps = [self.stem(z)]
        gates = dict((target, (source, excite))
                     for (target, source), excite in zip(self._gates, self.excitations))
        for block in self.blocks:
            h = block(maps[-1])
            if len(maps) in gates:
                source, excite = gates[len(maps)]
                h = excite(maps[source], h)
            maps.append(h)
        return self.output(maps[-1])


class ResGANDiscriminator(nn.HybridBlock):
    """Residual discriminator with spectral normalisation: image to one score.

    Parameters
    ----------
    ndf : int, default 64
        Width: the block ending at side ``s`` has ``ndf * 32 / s`` channels (see
        :func:`discriminator_widths`).
    channels : int, default 3
        Channels of the input image.
    resolution : int, default 64
        Input height and width (a power of two >= 16).

    Inputs have shape (N, channels, resolution, resolution); outputs have shape (N,), one raw
    score per image (for the hinge objective; no sigmoid).
    """

    def __init__(self, ndf=64, channels=3, resolution=64, **kwargs):
        super().__init__(**kwargs)
        self.ndf, self.channels, self.resolution = ndf, channels, resolution
        widths = discriminator_widths(ndf, resolution)
        with self.name_scope():
            self.blocks = nn.HybridSequential(prefix='')
            for i, (cin, cout) in enumerate(zip([channels] + widths[:-1], widths)):
                self.blocks.add(DownBlock(cin, cout, first=i == 0))
            self.output = SNConv2D(1, 1, in_channels=widths[-1])

    def forward(self, x, *args):
        power_iterate_hybridized(self, x)
        return super().forward(x, *args)

    def hybrid_forward(self, F, x):
        h = F.sum(F.relu(self.blocks(x)), axis=(2, 3), keepdims=True)
        return F.reshape(self.output(h), shape=(-1,))


DISCRIMINATORS = ('dcgan', 'residual')


class ResGAN(GANPair):
    """A residual generator and a discriminator, kept, saved and loaded together.

    Calling the block on latent vectors runs the generator. The parameters are
    :class:`~gluoncv_gan.model_zoo.dcgan.DCGAN`'s (``nz``, ``ngf``, ``ndf``, ``channels``,
    ``resolution``), with, in place of ``d_norm``:

    skip_excitation : bool, default False
        Skip-layer excitation in the generator (see :class:`ResGANGenerator`).
    discriminator : {'dcgan', 'residual'}, default 'dcgan'
        'dcgan': the tutorial's discriminator (strided convolutions with BatchNorm, see
        :class:`~gluoncv_gan.model_zoo.dcgan.DCGANDiscriminator`); 'residual': the spectrally
        normalised residual one (:class:`ResGANDiscriminator`).
    """

    def __init__(self, nz=100, ngf=64, ndf=64, channels=3, resolution=64,
                 skip_excitation=False, discriminator='dcgan', **kwargs):
        super().__init__(nz, resolution, **kwargs)
        if discriminator not in DISCRIMINATORS:
            raise ValueError('discriminator must be one of %s, got %r'
                             % (', '.join(DISCRIMINATORS), discriminator))
        self.discriminator_kind = discriminator
        with self.name_scope():
            self.generator = ResGANGenerator(nz, ngf, channels, resolution, skip_excitation,
                                             prefix='generator_')
            if discriminator == 'dcgan':
                self.discriminator = DCGANDiscriminator(ndf, channels, resolution, norm='batch',
                                                        prefix='discriminator_')
            else:
                self.discriminator = ResGANDiscriminator(ndf, channels, resolution,
                                                         prefix='discriminator_')


def init_resgan(net, ctx=None):
    """Initialise: residual networks' convolution weights Glorot-uniform, biases 0, BatchNorm
    gamma 1 and beta 0 (residual networks train from Glorot initialisation, as in SNGAN and
    Mimicry; the DCGAN tutorial's N(0, 0.02) makes their 3x3 convolutions start far below unit
    gain); the tutorial's discriminator as the tutorial initialises it, N(0, 0.02)."""
    ctx = ctx or mx.cpu()
    net.initialize(mx.init.Xavier(rnd_type='uniform', factor_type='avg', magnitude=3), ctx=ctx)
    if isinstance(net.discriminator, DCGANDiscriminator):
        net.discriminator.initialize(mx.init.Normal(0.02), ctx=ctx, force_reinit=True)
    return net


def get_resgan(name, resolution=64, pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """Build a :class:`ResGAN` pair, initialised or with the published weights of ``name``.

    Parameters
    ----------
    name : str
        Model-zoo name whose weights ``pretrained`` loads.
    resolution : int, default 64
        Image size.
    pretrained : bool or str, default False
        True loads the published weights; a string selects a weights version by hash tag.
    ctx : Context, default CPU
        Device of the parameters.
    root : str, default '$MXNET_HOME/models'
        Cache of pretrained weights.
    **kwargs
        Passed to :class:`ResGAN` (nz, ngf, ndf, channels, skip_excitation,
        discriminator).
    """
    net = ResGAN(resolution=resolution, **kwargs)
    if pretrained:
        net.load_parameters(get_model_file(name, tag=pretrained, root=root), ctx=ctx,
                            cast_dtype=True, dtype_source='current')
    else:
        init_resgan(net, ctx)
    return net


@zoo_constructor(resolution=64, pair='ResGAN', options=('skip_excitation', 'discriminator'))
def resgan_lfw(pretrained=False, ctx=mx.cpu(), root=None, **kwargs):
    """Residual GAN for 64x64 LFW faces: SNGAN-style residual generator (BatchNorm) with the
    DCGAN tutorial's discriminator, its objective and optimiser, and a moving average of the
    generator (configs/resgan_lfw.yaml). ngf 64 and ndf 64: a training iteration costs 1.95x the
    multiply-adds of ``dcgan_lfw``'s (docs/recipes.md). ``discriminator='residual'`` gives the
    spectrally normalised residual discriminator instead (use ndf 32 for the same cost).
    """
    kwargs.setdefault('ngf', 64)
    kwargs.setdefault('ndf', 64)
    return get_resgan('resgan_lfw', 64, pretrained=pretrained, ctx=ctx, root=root, **kwargs)
