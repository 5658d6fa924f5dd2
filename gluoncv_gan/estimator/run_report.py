"""A run's ``report.html``: one self-contained page that shows how training is going.

The page shows the real grid next to the newest one, the fixed-noise grids over the epochs (a
strip and ``samples/progress.gif``), the curves, the evaluation table with the best checkpoint
marked, the nearest real image of a few samples (``samples/neighbours.png``), the config, and
commands to resume, sample and export. Images are files of the run folder linked by relative
paths and nothing is fetched from the network, so the page opens offline and keeps working when
the run folder is moved or copied. Written every epoch by :class:`ReportHandler` (below) and on
demand by ``python -m gluoncv_gan.report``.
"""
import glob
import html
import json
import os
import shlex
import time

import numpy as np
from mxnet.gluon.contrib.estimator.event_handler import EpochEnd, TrainEnd

from ..metrics.memorization import nearest_neighbour_distances, thumbnails
from ..utils.config import read_config_file
from ..utils.fileio import atomic_path
from ..utils.image import make_grid, save_image, to_uint8_images

__all__ = ['ReportHandler', 'write_report', 'render_report', 'write_progress_gif',
           'neighbour_picture']

STRIP_FRAMES = 24  # grids shown in the strip, evenly spread over the epochs
GIF_FRAMES = 60

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.pair { display: flex; gap: 1.5em; flex-wrap: wrap; } figure { margin: 0; }
figcaption { font-size: 0.85em; color: #555; } .grid { width: 420px; max-width: 100%; }
.strip { display: flex; gap: 4px; overflow-x: auto; padding-bottom: 4px; }
.strip figure { flex: 0 0 auto; text-align: center; } .strip img { width: 110px; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
tr.best { background: #e3f4e1; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
.note { color: #666; font-size: 0.85em; }
.curves, .neighbours { max-width: 100%; }
"""


def _epoch_grids(run_dir):
    """[(epoch, path relative to run_dir)] of the epoch-end sample grids, in epoch order."""
    found = []
    for path in glob.glob(os.path.join(run_dir, 'samples', 'epoch-*.png')):
        stem = os.path.basename(path)[len('epoch-'):-len('.png')]
        if stem.isdigit():
            found.append((int(stem), os.path.relpath(path, run_dir)))
    return sorted(found)


def _spread(items, count):
    """At most ``count`` items, evenly spread, always with the first and the last."""
    if len(items) <= count:
        return list(items)
    picks = np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))
    return [items[i] for i in picks]


# the GIF's frames by (grid file, its mtime, scale): a run rewrites the GIF every epoch, and
# reducing and quantising every earlier grid again each time cost most of an epoch's report
_FRAMES = {}


def _gif_frame(path, scale):
    from PIL import Image
    key = (os.path.abspath(path), os.stat(path).st_mtime_ns, scale)
    if key not in _FRAMES:
        with Image.open(path) as image:
            size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            small = image.convert('RGB').resize(size, Image.LANCZOS)
        # a fast octree palette per frame: Pillow's default (median cut) takes ~100x longer
        _FRAMES[key] = small.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    return key, _FRAMES[key]


def write_progress_gif(run_dir, scale=0.5, frame_seconds=0.4):
    """Animate the epoch grids into ``samples/progress.gif`` (Pillow); None without grids."""
    grids = _spread(_epoch_grids(run_dir), GIF_FRAMES)
    if not grids:
        return None
    keys, frames = zip(*[_gif_frame(os.path.join(run_dir, rel), scale) for _, rel in grids])
    folder = os.path.abspath(os.path.join(run_dir, 'samples'))
    for key in [k for k in _FRAMES if os.path.dirname(k[0]) == folder and k not in keys]:
        del _FRAMES[key]  # frames this run's GIF no longer shows
    path = os.path.join(run_dir, 'samples', 'progress.gif')
    durations = [int(frame_seconds * 1000)] * (len(frames) - 1) + [2000]  # dwell on the last
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format='GIF', save_all=True, append_images=list(frames[1:]),
                       duration=durations, loop=0)
    return path


def neighbour_picture(samples, real_images, path, real_features=None):
    """Samples (top row) above their nearest real training image (bottom row), saved to ``path``.

    Parameters
    ----------
    samples : numpy.ndarray
        uint8 NHWC generated images.
    real_images : numpy.ndarray
        uint8 NHWC training images searched (32x32 thumbnails, as the memorisation metric).
    real_features : numpy.ndarray, optional
        Their thumbnails (``gluoncv_gan.metrics.memorization.thumbnails``), kept by a caller
        that searches every epoch.

    Returns
    -------
    numpy.ndarray
        RMS thumbnail distance of each sample to its neighbour, in [0, 1].
    """
    distances, index = nearest_neighbour_distances(samples, real_images, return_index=True,
                                                   train_features=real_features)
    neighbours = np.asarray(real_images[index])
    save_image(path, make_grid(np.concatenate([samples, neighbours]), nrow=len(samples)))
    return distances


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _image(rel, alt, css='grid'):
    return '<img class="%s" src="%s" alt="%s">' % (css, html.escape(rel.replace(os.sep, '/')),
                                                  html.escape(alt))


# optional columns of the evaluation table: (row key, heading, format), shown when measured
_OPTIONAL_COLUMNS = (('sharpness', 'sharpness', '%.3f'), ('fid', 'FID', '%.2f'),
                     ('kid', 'KID x1e3', None), ('precision', 'precision', '%.3f'),
                     ('recall', 'recall', '%.3f'))


def _cell(row, key, fmt):
    if key not in row:
        return ''
    return '%.2f' % (1e3 * row[key]) if key == 'kid' else fmt % row[key]


def _evaluation_table(rows, best):
    if not rows:
        return '<p class="note">No evaluation yet (training with --eval-interval N evaluates ' \
               'every N epochs).</p>'
    best_epoch = (best or {}).get('epoch')
    extra = [c for c in _OPTIONAL_COLUMNS if any(c[0] in row for row in rows)]
    lines = ['<table><tr><th>epoch</th><th>iteration</th><th>SWD x1e3</th><th>SWD levels</th>'
             '<th>face rate</th><th>diversity</th>%s<th>seconds</th><th></th></tr>'
             % ''.join('<th>%s</th>' % heading for _, heading, _ in extra)]
    for row in rows:
        is_best = row.get('epoch') == best_epoch
        lines.append('<tr%s><td>%s</td><td>%s</td><td>%.2f</td><td>%s</td><td>%.3f</td>'
                     '<td>%.4f</td>%s<td>%s</td><td>%s</td></tr>' % (
                         ' class="best"' if is_best else '', row.get('epoch'),
                         row.get('iteration'), row['swd'],
                         ' / '.join('%.1f' % v for v in row.get('swd_levels', [])),
                         row['face_rate'], row['diversity'],
                         ''.join('<td>%s</td>' % _cell(row, key, fmt) for key, _, fmt in extra),
                         row.get('seconds', ''), 'best checkpoint' if is_best else ''))
    lines.append('</table>')
    if best:
        lines.append('<p class="note">Best by %s: epoch %s, <code>%s</code> (kept whatever '
                     '--keep-checkpoints says; export takes it).</p>'
                     % (html.escape(best.get('metric', 'swd').upper()), best.get('epoch'),
                        html.escape(os.path.basename(best['checkpoint']))))
    return '\n'.join(lines)


def _commands(run_dir, model):
    run = shlex.quote(run_dir)
    return '\n'.join([
        '# continue training (after a stop, or with more --epochs)',
        'python -m gluoncv_gan.train --resume %s' % run,
        '# sample 64 faces from the newest checkpoint',
        'python -m gluoncv_gan.sample %s --params %s --num 64 --out %s'
        % (model, run, shlex.quote(os.path.join(run_dir, 'faces.png'))),
        '# deployable generator (the best checkpoint, else the newest)',
        'python -m gluoncv_gan.export %s --format symbol --out-dir %s'
        % (run, shlex.quote(os.path.join(run_dir, 'deploy'))),
        'python -m gluoncv_gan.export %s --format onnx --out-dir %s'
        % (run, shlex.quote(os.path.join(run_dir, 'deploy'))),
    ])


def render_report(run_dir, status=None):
    """The report page of ``run_dir`` as an HTML string (see the module docstring)."""
    run_dir = os.path.abspath(run_dir)
    config_text = ''
    config_path = os.path.join(run_dir, 'config.yaml')
    config = {}
    if os.path.isfile(config_path):
        config = read_config_file(config_path)  # an unreadable one is named (ConfigError)
        with open(config_path, encoding='utf-8') as f:
            config_text = f.read()
    model = config.get('model', 'dcgan_lfw')
    evaluation = _read_json(os.path.join(run_dir, 'evaluation.json')) or []
    best = _read_json(os.path.join(run_dir, 'best.json'))
    grids = _epoch_grids(run_dir)
    exists = lambda rel: os.path.isfile(os.path.join(run_dir, rel))  # noqa: E731

    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             '<title>%s: %s</title>' % (html.escape(model), html.escape(os.path.basename(run_dir))),
             '<style>%s</style></head><body>' % _STYLE,
             '<h1>%s &mdash; <code>%s</code></h1>' % (html.escape(model), html.escape(run_dir)),
             '<p>%s Written %s.</p>' % (html.escape(status or ''),
                                        time.strftime('%Y-%m-%d %H:%M:%S'))]

    parts.append('<h2>Samples</h2><div class="pair">')
    for rel, caption in (('samples/real.png', 'real training images'),
                         ('samples/latest.png', 'generated from the fixed noise, newest')):
        if exists(rel):
            parts.append('<figure>%s<figcaption>%s</figcaption></figure>'
                         % (_image(rel, caption), caption))
    parts.append('</div>')

    parts.append('<h2>Progress over epochs</h2>')
    if grids:
        parts.append('<div class="strip">')
        for epoch, rel in _spread(grids, STRIP_FRAMES):
            parts.append('<figure>%s<figcaption>epoch %d</figcaption></figure>'
                         % (_image(rel, 'epoch %d' % epoch, css='thumb'), epoch))
        parts.append('</div>')
        if exists('samples/progress.gif'):
            parts.append('<figure>%s<figcaption>the same grids animated '
                         '(samples/progress.gif)</figcaption></figure>'
                         % _image('samples/progress.gif', 'samples over the epochs', css='anim'))
    else:
        parts.append('<p class="note">No epoch has finished yet.</p>')

    parts.append('<h2>Curves</h2>')
    parts.append(_image('curves.png', 'loss, accuracy and evaluation curves', css='curves')
                 if exists('curves.png') else '<p class="note">No curves yet.</p>')

    parts.append('<h2>Evaluation</h2>')
    parts.append(_evaluation_table(evaluation, best))

    parts.append('<h2>Nearest real images</h2>')
    if exists('samples/neighbours.png'):
        parts.append('<figure>%s<figcaption>top: samples from the fixed noise; bottom: the '
                     'nearest training image of each (32x32 thumbnails, as the memorisation '
                     'metric). A copy would look the same as its neighbour.</figcaption></figure>'
                     % _image('samples/neighbours.png', 'samples and their nearest real images',
                              css='neighbours'))
    else:
        parts.append('<p class="note">Written at the end of each epoch.</p>')

    parts.append('<h2>Commands</h2><pre>%s</pre>' % html.escape(_commands(run_dir, model)))
    parts.append('<h2>Config</h2><pre>%s</pre>' % html.escape(config_text or '(no config.yaml)'))
    parts.append('</body></html>')
    return '\n'.join(parts) + '\n'


def write_report(run_dir, status=None):
    """Write ``run_dir/report.html`` atomically, with ``samples/progress.gif``; return its path."""
    write_progress_gif(run_dir)
    path = os.path.join(run_dir, 'report.html')
    page = render_report(run_dir, status)
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(page)
    return path


class ReportHandler(EpochEnd, TrainEnd):
    """Rewrite ``report.html`` (:func:`write_report`) every epoch and at the end.

    It runs after the sample, history, evaluation and checkpoint handlers of the epoch, so the
    page shows their files. Each epoch it also draws ``samples/neighbours.png``: the first
    ``num_neighbours`` fixed-noise samples above their nearest training images.
    """

    def __init__(self, run_dir, fixed_noise, real_images, total_iterations, batches_per_epoch,
                 num_neighbours=8, priority=800):
        """Create the handler.

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
        num_neighbours : int, default 8
            Samples shown above their nearest training images.
        priority : int, default 800
            Order among the epoch-end handlers: after those whose files the page shows.
        """
        self.run_dir, self.fixed_noise, self.real_images = run_dir, fixed_noise, real_images
        self.total_iterations, self.batches_per_epoch = total_iterations, batches_per_epoch
        self.num_neighbours, self.priority = num_neighbours, priority
        self._real_features = None  # thumbnails of real_images, computed once (seconds on LFW)

    def _neighbours(self, estimator):
        import mxnet as mx
        latent = mx.nd.array(self.fixed_noise[:self.num_neighbours], ctx=estimator.context[0])
        with mx.autograd.predict_mode():
            samples = to_uint8_images(estimator.sampling_generator(latent))
        if self._real_features is None:
            self._real_features = thumbnails(self.real_images)
        neighbour_picture(samples, self.real_images,
                          os.path.join(self.run_dir, 'samples', 'neighbours.png'),
                          self._real_features)

    def _write(self, status):
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
