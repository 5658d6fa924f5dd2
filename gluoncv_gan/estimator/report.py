"""The event handler that keeps a run's ``report.html`` up to date."""
import os

import numpy as np
from mxnet.gluon.contrib.estimator.event_handler import EpochEnd, TrainEnd

__all__ = ['ReportHandler']


class ReportHandler(EpochEnd, TrainEnd):
    """Rewrite ``report.html`` (:mod:`gluoncv_gan.pipeline.report`) every epoch and at the end.

    It runs after the sample, history, evaluation and checkpoint handlers of the epoch, so the
    page shows their files. Each epoch it also draws ``samples/neighbours.png``: the first
    ``num_neighbours`` fixed-noise samples above their nearest training images.

    Parameters
    ----------
    run_dir : str
        The run folder.
    fixed_noise : numpy.ndarray
        The latent batch of the sample grids (N, nz, 1, 1).
    real_images : numpy.ndarray
        uint8 NHWC training images searched for neighbours.
    total_iterations, batches_per_epoch : int
        For the progress line.
    """

    def __init__(self, run_dir, fixed_noise, real_images, total_iterations, batches_per_epoch,
                 num_neighbours=8, priority=800):
        self.run_dir, self.fixed_noise, self.real_images = run_dir, fixed_noise, real_images
        self.total_iterations, self.batches_per_epoch = total_iterations, batches_per_epoch
        self.num_neighbours, self.priority = num_neighbours, priority
        self._real_features = None  # thumbnails of real_images, computed once (seconds on LFW)

    def _neighbours(self, estimator):
        import mxnet as mx
        from ..pipeline.report import neighbour_picture
        from ..utils.image import to_uint8_images
        latent = mx.nd.array(self.fixed_noise[:self.num_neighbours], ctx=estimator.context[0])
        with mx.autograd.predict_mode():
            samples = to_uint8_images(estimator.sampling_generator(latent))
        if self._real_features is None:
            from ..metrics.memorization import thumbnails
            self._real_features = thumbnails(self.real_images)
        neighbour_picture(samples, self.real_images,
                          os.path.join(self.run_dir, 'samples', 'neighbours.png'),
                          self._real_features)

    def _write(self, status):
        from ..pipeline.report import write_report
        write_report(self.run_dir, status)

    def epoch_end(self, estimator, *args, **kwargs):
        if estimator.epoch_complete:
            self._neighbours(estimator)
            self._write('Training: epoch %d of %d finished, iteration %d of %d.' % (
                estimator.epoch + 1, int(np.ceil(self.total_iterations / self.batches_per_epoch)),
                estimator.iteration, self.total_iterations))
        return False

    def train_end(self, estimator, *args, **kwargs):
        if estimator.iteration >= self.total_iterations:
            status = 'Finished: %d iterations, %d epochs.' % (estimator.iteration,
                                                              estimator.epoch)
        else:
            status = 'Stopped at iteration %d of %d (epoch %d): resume to continue.' % (
                estimator.iteration, self.total_iterations, estimator.epoch + 1)
        self._write(status)
