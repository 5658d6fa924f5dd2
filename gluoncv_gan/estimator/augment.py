"""Differentiable augmentation of what the discriminator sees, for training on few images.

With a few hundred faces the discriminator soon memorises the real set, and the generator stops
learning. Augmenting the real images alone would teach the generator the augmentations (shifted
faces, grey squares). DiffAugment (Zhao et al., NeurIPS 2020) instead puts every discriminator
input, real and generated, through the same kind of random transformation, built from
differentiable operations so that the generator's gradient passes through it.

The transformations of an iteration are a function of (seed, iteration, part) alone, drawn for
the global batch, so a resumed run repeats an uninterrupted one, and a job of W workers
computes what one process with W devices computes (each worker and device takes its rows).
"""
import mxnet as mx
import numpy as np

from ..utils.name_registry import AUGMENTATIONS
from ..utils.seeds import AUGMENT_SALT

__all__ = ['DiffAugment', 'POLICIES', 'parse_policy']

# the discriminator's input augmentations, in the order they are applied
POLICIES = ('color', 'translation', 'cutout')
# which batch an augmentation is drawn for (each gets its own transformations)
REAL, FAKE_FOR_D, FAKE_FOR_G = 0, 1, 2


def parse_policy(text):
    """The policies named in a comma-separated string ('' for none), in application order.

    Raises
    ------
    ValueError
        When a name is not one of :data:`POLICIES`.
    """
    names = [name.strip() for name in (text or '').split(',') if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError('unknown augmentation %s: use a comma-separated subset of %s'
                         % (', '.join(map(repr, unknown)), ','.join(POLICIES)))
    return [name for name in POLICIES if name in names]


class DiffAugment:
    """Random colour, translation and cutout, applied the same way to real and generated batches.

    Parameters
    ----------
    policy : str
        Comma-separated subset of :data:`POLICIES`, e.g. ``'color,translation,cutout'``.
    seed : int
        Seed of the random transformations.
    translation : float, default 0.125
        Largest shift, as a fraction of the image side (8 pixels at 64); the uncovered border is
        0 (mid-grey in the [-1, 1] range).
    cutout : float, default 0.5
        Side of the square set to 0, as a fraction of the image side; its centre is anywhere in
        the image, and the part outside is cut off.
    """

    def __init__(self, policy, seed=0, translation=0.125, cutout=0.5):
        self.policy = parse_policy(policy)
        self.seed, self.translation, self.cutout = seed, translation, cutout

    def __bool__(self):
        return bool(self.policy)

    def draw(self, iteration, part, num, size):
        """The random parameters of ``num`` images of side ``size`` (numpy, one row each)."""
        rng = np.random.RandomState([self.seed, iteration, AUGMENT_SALT, part])
        reach = int(size * self.translation + 0.5)
        return {
            'brightness': rng.uniform(-0.5, 0.5, num),
            'saturation': rng.uniform(0.0, 2.0, num),
            'contrast': rng.uniform(0.5, 1.5, num),
            'shift': rng.randint(-reach, reach + 1, (num, 2)),
            'centre': rng.randint(0, size, (num, 2)),
        }

    def __call__(self, chunks, iteration, part, shard=(0, 1)):
        """Augment a worker's batch, given as its per-device chunks (NDArrays, NCHW).

        Parameters
        ----------
        chunks : list of NDArray
            The worker's batch split over its devices, in device order, equal sizes.
        iteration : int
            The training iteration.
        part : int
            REAL, FAKE_FOR_D or FAKE_FOR_G.
        shard : (int, int)
            (rank, workers): the worker's rows of the global batch.
        """
        if not self.policy:
            return chunks
        rank, workers = shard
        per_device, size = chunks[0].shape[0], chunks[0].shape[2]
        per_worker = per_device * len(chunks)
        drawn = self.draw(iteration, part, per_worker * workers, size)
        out = []
        for k, x in enumerate(chunks):
            start = rank * per_worker + k * per_device
            rows = {name: value[start:start + per_device] for name, value in drawn.items()}
            out.append(self.apply(x, rows))
        return out

    def apply(self, x, params):
        """Transform the batch ``x`` with one row of ``params`` per image."""
        for name in self.policy:
            x = getattr(self, '_' + name)(x, params)
        return x

    @staticmethod
    def _column(values, x):
        return mx.nd.array(values, ctx=x.context, dtype=x.dtype).reshape((-1, 1, 1, 1))

    def _color(self, x, params):
        x = x + self._column(params['brightness'], x)
        mean = x.mean(axis=1, keepdims=True)
        x = (x - mean) * self._column(params['saturation'], x) + mean
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        return (x - mean) * self._column(params['contrast'], x) + mean

    def _translation(self, x, params):
        height, width = x.shape[2], x.shape[3]
        reach = int(max(height, width) * self.translation + 0.5)
        if reach == 0:
            return x
        padded = mx.nd.pad(x, mode='constant', constant_value=0,
                           pad_width=(0, 0, 0, 0, reach, reach, reach, reach))
        # explicit slice operators (not indexing, whose views autograd does not record)
        rows = []
        for i, (dy, dx) in enumerate(params['shift']):
            top, left = reach - int(dy), reach - int(dx)
            rows.append(mx.nd.slice(padded, begin=(i, None, top, left),
                                    end=(i + 1, None, top + height, left + width)))
        return mx.nd.concat(*rows, dim=0)

    def _cutout(self, x, params):
        height, width = x.shape[2], x.shape[3]
        side_y, side_x = int(height * self.cutout + 0.5), int(width * self.cutout + 0.5)
        mask = np.ones((x.shape[0], 1, height, width), np.float32)
        for i, (cy, cx) in enumerate(params['centre']):
            top, left = max(cy - side_y // 2, 0), max(cx - side_x // 2, 0)
            mask[i, :, top:cy - side_y // 2 + side_y, left:cx - side_x // 2 + side_x] = 0
        return x * mx.nd.array(mask, ctx=x.context, dtype=x.dtype)


for _name in POLICIES:  # the names the config check allows
    AUGMENTATIONS.register(getattr(DiffAugment, '_' + _name), name=_name)
