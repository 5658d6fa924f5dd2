"""A run's samples beside a published model's on the same latents: what a short run gives next
to what the full recipe gives."""
import logging

import cv2
import mxnet as mx
import numpy as np

from ..model_zoo import get_model
from ..utils.download import DownloadError
from ..utils.image import make_grid, save_image
from .sampling import sample_images

__all__ = ['write_side_by_side']


def _titled(grid, title):
    """``grid`` under a white strip holding ``title``."""
    strip = np.full((28, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, title, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, grid])


def write_side_by_side(path, generator, latents, name, title, ctx=None, logger=None, nrow=None):
    """Write ``generator``'s images of ``latents`` beside those of the published model ``name``.

    The published generator gets the same latents when its latent size is the same (otherwise
    its own, drawn with seed 0); its images are resized to the run's when the sizes differ.

    Parameters
    ----------
    path : str
        The .png to write (atomically).
    generator : HybridBlock
        The run's generator.
    latents : numpy.ndarray
        (N, nz, 1, 1) latent vectors, e.g. the run's fixed noise.
    name : str
        A model-zoo name with published weights.
    title : str
        The caption of the run's half.
    ctx : Context, default CPU
    logger : logging.Logger, optional
    nrow : int, optional
        Images per row of each half (default: square grids).

    Returns
    -------
    str or None
        ``path``, or None when the published weights could not be had (a warning says why; the
        run itself is not affected).
    """
    ctx = ctx or mx.cpu()
    logger = logger or logging.getLogger(__name__)
    try:
        published = get_model(name, pretrained=True, ctx=ctx)
    except (ValueError, OSError, DownloadError) as err:
        logger.warning('no %s: the published %s is not available (%s)', path, name, err)
        return None
    ours = sample_images(generator, latents, ctx=ctx)
    theirs_latents = latents if latents.shape[1] == published.generator.nz else \
        published.sample_latent(len(latents), ctx=ctx, seed=0).asnumpy()
    theirs = sample_images(published.generator, theirs_latents, ctx=ctx)
    size = ours.shape[1]
    if theirs.shape[1] != size:
        theirs = np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
                           for img in theirs])
    left = _titled(make_grid(ours, nrow=nrow), title)
    right = _titled(make_grid(theirs, nrow=nrow), '%s (published, get_model pretrained=True)' % name)
    gap = np.full((left.shape[0], 12, 3), 255, np.uint8)
    save_image(path, np.concatenate([left, gap, right], axis=1))
    logger.info('Wrote %s: this run beside the published %s, same latents', path, name)
    return path
