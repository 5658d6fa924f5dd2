"""A batch loader over a uint8 image cache, with a reproducible, resumable order."""
import mxnet as mx
import numpy as np
from mxnet.gluon.data import DataLoader

from ..utils.seeds import FLIP_SALT
from .lfw import to_gan_array

__all__ = ['CachedBatchLoader', 'epoch_permutation', 'epoch_flips']


def epoch_permutation(num, seed, epoch):
    """The shuffled order of epoch ``epoch``: a function of (seed, epoch) alone."""
    return np.random.RandomState([seed, epoch]).permutation(num)


def epoch_flips(num, seed, epoch):
    """Which of the ``num`` images epoch ``epoch`` mirrors (a boolean per image index): a
    function of (seed, epoch) alone, like the order, so a resumed run mirrors the same ones."""
    return np.random.RandomState([seed, epoch, FLIP_SALT]).rand(num) < 0.5


class CachedBatchLoader(DataLoader):
    """Serve shuffled batches straight from a dataset's uint8 cache.

    A Gluon ``DataLoader`` (so GluonCV's estimator accepts it) that slices whole batches out of
    ``dataset.images`` instead of converting item by item. The order of each epoch depends
    only on ``seed`` and the epoch number, and :meth:`set_position` starts iteration at any
    batch of any epoch, which is what makes a resumed run see exactly the batches an
    uninterrupted run would have seen. Incomplete last batches are dropped (fixed shapes).

    Parameters
    ----------
    dataset : FaceFolder
        A dataset with a uint8 ``images`` cache (N, H, W, 3).
    batch_size : int
        Images per batch.
    seed : int, default 0
        Seed of the shuffling.
    shuffle : bool, default True
        Shuffle each epoch; False keeps the dataset's order.
    flip : bool, default False
        Mirror a random half of the images left-right each epoch (:func:`epoch_flips`).
    num_shards, shard : int, default 1, 0
        Serve only part ``shard`` of ``num_shards`` disjoint parts of each epoch (one per
        distributed worker): slice ``shard`` of each global batch of ``num_shards x
        batch_size`` images, so that batch i of the shards, put side by side in shard order,
        is exactly batch i of an unsharded loader with the global batch size (and the same
        seed). Images past the last whole global batch are left out of every shard.

    Yields
    ------
    (data, label)
        ``data`` float32 NDArray (batch_size, 3, H, W) in [-1, 1]; ``label`` int32 NDArray of
        identity indices.
    """

    def __init__(self, dataset, batch_size, seed=0, shuffle=True, num_shards=1, shard=0,
                 flip=False):
        self._worker_pool = None  # DataLoader.__del__ reads it, even when __init__ raised
        if getattr(dataset, 'images', None) is None:
            raise ValueError('CachedBatchLoader needs a dataset built with use_cache=True')
        if not 0 <= shard < num_shards:
            raise ValueError('shard %d does not exist: shards are numbered 0 to %d'
                             % (shard, num_shards - 1))
        per_shard = len(dataset) // num_shards
        if per_shard < batch_size:
            raise ValueError('the dataset has %d images%s, fewer than one batch of %d: use a '
                             'smaller batch size or more images'
                             % (per_shard, ' per shard' if num_shards > 1 else '', batch_size))
        super().__init__(dataset, batch_size=batch_size, last_batch='discard')
        self._images, self._labels = dataset.images, np.asarray(dataset.labels)
        self.batch_size = self._batch = batch_size
        self._seed, self._shuffle, self._flip = seed, shuffle, flip
        self._num_shards, self._shard = num_shards, shard
        self.epoch, self.start_batch = 0, 0

    def __len__(self):
        return len(self._images) // (self._num_shards * self._batch)

    def set_position(self, epoch, batch):
        """Make the next iteration serve epoch ``epoch`` from its batch number ``batch``."""
        if not 0 <= batch <= len(self):
            raise ValueError('batch %d is outside an epoch of %d batches' % (batch, len(self)))
        self.epoch, self.start_batch = epoch, batch

    def epoch_indices(self, epoch):
        """Indices of this shard's images in epoch ``epoch``, in serving order."""
        num = len(self._images)
        order = epoch_permutation(num, self._seed, epoch) if self._shuffle else np.arange(num)
        if self._num_shards == 1:
            return order
        whole = len(self) * self._batch * self._num_shards
        return order[:whole].reshape(-1, self._num_shards, self._batch)[:, self._shard].ravel()

    def batch(self, epoch, index):
        """Batch number ``index`` of epoch ``epoch`` as (data, label) NDArrays."""
        idx = self.epoch_indices(epoch)[index * self._batch:(index + 1) * self._batch]
        # sorted reads are kinder to a memory-mapped file; the batch keeps the shuffled order
        order = np.argsort(idx)
        images = np.empty((len(idx),) + self._images.shape[1:], np.uint8)
        images[order] = self._images[idx[order]]
        if self._flip:
            mirrored = epoch_flips(len(self._images), self._seed, epoch)[idx]
            images[mirrored] = images[mirrored, :, ::-1]
        return (mx.nd.array(to_gan_array(images), dtype='float32'),
                mx.nd.array(self._labels[idx], dtype='int32'))

    def __iter__(self):
        epoch, start = self.epoch, self.start_batch
        self.epoch, self.start_batch = epoch + 1, 0
        for index in range(start, len(self)):
            yield self.batch(epoch, index)
