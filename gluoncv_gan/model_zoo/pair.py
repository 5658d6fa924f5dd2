"""What every model-zoo pair shares: latent sampling and inference-mode generation."""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn

__all__ = ['GANPair']


class GANPair(nn.HybridBlock):
    """Base class of a generator and its discriminator, kept, saved and loaded together.

    Subclasses create ``self.generator`` (latents of shape (N, nz, 1, 1) to images) and
    ``self.discriminator`` (images to one score per image, shape (N,)) in their name scope.
    Calling the block on latent vectors runs the generator.

    Parameters
    ----------
    nz : int
        Size of the latent vector.
    resolution : int
        Image height and width.
    """

    def __init__(self, nz, resolution, **kwargs):
        super().__init__(**kwargs)
        self.nz, self.resolution = nz, resolution

    def hybrid_forward(self, F, z):
        return self.generator(z)

    def sample_latent(self, num, ctx=None, seed=None):
        """Draw ``num`` latent vectors from N(0, 1), shape (num, nz, 1, 1).

        With a ``seed`` the draw comes from its own NumPy generator, so it is the same on any
        device and leaves MXNet's global random state alone.
        """
        ctx = ctx or mx.cpu()
        if seed is None:
            return mx.nd.random.normal(shape=(num, self.nz, 1, 1), ctx=ctx)
        z = np.random.RandomState(seed).standard_normal((num, self.nz, 1, 1))
        return mx.nd.array(z, ctx=ctx, dtype='float32')

    def generate(self, num, ctx=None, seed=None, batch_size=256):
        """Generate ``num`` images with the generator in inference mode.

        Parameters
        ----------
        num : int
            Number of images.
        ctx : Context, default CPU
            Device to run on.
        seed : int or None
            Seed for the latent vectors; None draws from MXNet's random state.
        batch_size : int, default 256
            Images generated per forward pass.

        Returns
        -------
        NDArray
            Shape (num, channels, resolution, resolution), values in [-1, 1].
        """
        ctx = ctx or mx.cpu()
        z = self.sample_latent(num, ctx=ctx, seed=seed)
        with mx.autograd.predict_mode():
            parts = [self.generator(z[i:i + batch_size]) for i in range(0, num, batch_size)]
        return parts[0] if len(parts) == 1 else mx.nd.concat(*parts, dim=0)
