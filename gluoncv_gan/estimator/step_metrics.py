"""Training metrics of a GAN, in ``mx.metric`` style.

The batch processor hands every metric the same ``(labels, preds)`` pair: ``preds`` is a
:class:`GANStepOutput`. Sums stay on the device as NDArrays and are read back only when a value
is asked for, so updating a metric never waits for the computation (no host sync per batch).
"""
import collections

import mxnet as mx

__all__ = ['GANStepOutput', 'GANMetric', 'gan_metrics']

GANStepOutput = collections.namedtuple(
    'GANStepOutput', ['d_loss', 'g_loss', 'real_out', 'fake_out', 'objective'])
GANStepOutput.__doc__ = """One iteration's results, per device: lists of NDArrays (per-sample
losses of D and G, raw D outputs on real and on generated images) and the objective. ``g_loss``
is an empty list on iterations without a generator step (``n_critic`` > 1), so the g_loss
metric averages over generator steps only."""


def _d_loss(out):
    return [(l, l.shape[0]) for l in out.d_loss]


def _g_loss(out):
    return [(l, l.shape[0]) for l in out.g_loss]


def _acc_real(out):
    return [(out.objective.is_real(o), o.shape[0]) for o in out.real_out]


def _acc_fake(out):
    return [(1 - out.objective.is_real(o), o.shape[0]) for o in out.fake_out]


def _acc(out):
    return _acc_real(out) + _acc_fake(out)


def _d_real(out):
    return [(out.objective.prob(o), o.shape[0]) for o in out.real_out]


def _d_fake(out):
    return [(out.objective.prob(o), o.shape[0]) for o in out.fake_out]


class GANMetric(mx.metric.EvalMetric):
    """Running mean of one statistic of a GAN step (see :func:`gan_metrics`).

    Parameters
    ----------
    name : str
        Name shown in logs.
    select : callable
        Maps a :class:`GANStepOutput` to a list of (NDArray of per-sample values, count).
    """

    def __init__(self, name, select):
        self._select = select
        super().__init__(name, has_global_stats=True)

    def reset(self):
        self._sum, self._num = None, 0
        self.num_inst, self.sum_metric = 0, 0.0
        self.global_num_inst, self.global_sum_metric = 0, 0.0
        self._global_sum = None

    def reset_local(self):
        self._sum, self._num = None, 0
        self.num_inst, self.sum_metric = 0, 0.0

    def update(self, labels, preds):
        for values, count in self._select(preds):
            total = values.astype('float32').sum().as_in_context(mx.cpu())
            self._sum = total if self._sum is None else self._sum + total
            self._global_sum = total if self._global_sum is None else self._global_sum + total
            self._num += count
            self.global_num_inst += count

    def _sync(self):
        if self._sum is not None:
            self.sum_metric, self.num_inst = float(self._sum.asscalar()), self._num
        if self._global_sum is not None:
            self.global_sum_metric = float(self._global_sum.asscalar())

    def get(self):
        self._sync()
        return super().get()

    def get_global(self):
        self._sync()
        return super().get_global()

    def get_state(self):
        """Picklable running sums (saved in checkpoints so a resumed epoch reports right)."""
        self._sync()
        return {'sum': self.sum_metric, 'num': self.num_inst,
                'global_sum': self.global_sum_metric, 'global_num': self.global_num_inst}

    def set_state(self, state):
        self.reset()
        self._sum = mx.nd.array([state['sum']]) if state['num'] else None
        self._num = state['num']
        self._global_sum = mx.nd.array([state['global_sum']]) \
            if state['global_num'] else None
        self.global_num_inst = state['global_num']
        self._sync()


def gan_metrics():
    """The metrics the training script logs: losses, D accuracy, mean D(x) and D(G(z))."""
    return [GANMetric('d_loss', _d_loss), GANMetric('g_loss', _g_loss),
            GANMetric('d_acc', _acc), GANMetric('d_acc_real', _acc_real),
            GANMetric('d_acc_fake', _acc_fake),
            GANMetric('D(x)', _d_real), GANMetric('D(G(z))', _d_fake)]
