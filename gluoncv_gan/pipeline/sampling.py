"""Images from a generator, a chunk of latent vectors at a time, in inference mode."""
import mxnet as mx
import numpy as np

from ..utils.image import to_uint8_images

__all__ = ['sample_images', 'generate_images']


def sample_images(generator, latents, ctx=None, batch_size=250):
    """uint8 NHWC images of ``latents`` (N, nz, 1, 1), ``batch_size`` of them per forward pass.

    Each chunk is converted to uint8 as soon as it is made, so a large set never sits in memory
    as float32.

    Parameters
    ----------
    generator : HybridBlock
        Maps latent vectors to float images in [-1, 1], NCHW.
    latents : numpy.ndarray or NDArray
        The latent vectors, in the order of the images returned.
    ctx : Context, default CPU
        Device to run on.
    batch_size : int, default 250
        Images per forward pass.
    """
    ctx = ctx or mx.cpu()
    parts = []
    with mx.autograd.predict_mode():
        for start in range(0, len(latents), batch_size):
            chunk = mx.nd.array(latents[start:start + batch_size], ctx=ctx, dtype='float32')
            parts.append(to_uint8_images(generator(chunk)))
    return np.concatenate(parts)


def generate_images(net, num, seed=0, ctx=None, batch_size=250):
    """``num`` uint8 NHWC images of ``net``'s generator, from the latents of
    ``net.generate(num, seed=seed)``."""
    ctx = ctx or mx.cpu()
    return sample_images(net.generator, net.sample_latent(num, ctx=ctx, seed=seed), ctx=ctx,
                         batch_size=batch_size)
