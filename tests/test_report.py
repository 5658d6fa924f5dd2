"""The run report: written every epoch, complete, offline, and rendered by headless Chromium."""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from gluoncv_gan import report, train
from gluoncv_gan.estimator import run_report

EPOCHS = 2


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """A small run with evaluations, and the status lines of every report written during it."""
    folder = str(tmp_path_factory.mktemp('report_run') / 'run')
    home = tmp_path_factory.mktemp('report_home')
    statuses = []
    original = run_report.write_report

    def recording(run_dir, status=None):
        statuses.append(status)
        return original(run_dir, status)

    patch = pytest.MonkeyPatch()
    patch.setenv('MXNET_HOME', str(home))
    patch.setattr(run_report, 'write_report', recording)
    try:
        train.main(['--dataset', 'lfw_sample', '--batch-size', '32', '--ngf', '8', '--ndf', '8',
                    '--nz', '16', '--epochs', str(EPOCHS), '--eval-interval', '1',
                    '--eval-samples', '64', '--save-dir', folder])
    finally:
        patch.undo()
    return folder, statuses


def test_report_is_rewritten_every_epoch(run):
    folder, statuses = run
    per_epoch = 300 // 32
    assert statuses == ['Training: epoch %d of %d finished, iteration %d of %d.'
                        % (e, EPOCHS, e * per_epoch, EPOCHS * per_epoch)
                        for e in range(1, EPOCHS + 1)] + \
        ['Finished: %d iterations, %d epochs.' % (EPOCHS * per_epoch, EPOCHS)]
    assert not [n for n in os.listdir(folder) if n.startswith('.report.html')]  # no leftovers


def test_report_holds_every_part_with_local_images(run):
    folder, _ = run
    with open(os.path.join(folder, 'report.html'), encoding='utf-8') as f:
        page = f.read()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    for expected in ('samples/real.png', 'samples/latest.png', 'samples/epoch-0001.png',
                     'samples/epoch-0002.png', 'samples/progress.gif', 'curves.png',
                     'samples/neighbours.png'):
        assert expected in sources
    for src in sources:  # relative files of the run folder: the page opens offline
        assert os.path.isfile(os.path.join(folder, html.unescape(src))), src
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert '<link' not in page and '<script' not in page
    with open(os.path.join(folder, 'best.json')) as f:
        best = json.load(f)
    marked = re.findall(r'<tr class="best"><td>(\d+)</td>', page)
    assert marked == [str(best['epoch'])]
    assert page.count('<tr') == 1 + EPOCHS  # header and one row per evaluation
    assert 'python -m gluoncv_gan.train --resume %s' % folder in page
    assert 'python -m gluoncv_gan.sample dcgan_lfw --params %s' % folder in page
    assert 'python -m gluoncv_gan.export %s --format onnx' % folder in page
    with open(os.path.join(folder, 'config.yaml')) as f:
        assert html.escape(f.read()) in page


def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name):
            return shutil.which(name)
    return None


CHECK = ('<script>window.addEventListener("load", function () {'
         ' var found = [];'
         ' for (const img of document.images) found.push({src: img.getAttribute("src"),'
         ' complete: img.complete, width: img.naturalWidth, height: img.naturalHeight});'
         ' var out = document.createElement("pre"); out.id = "image-check";'
         ' out.textContent = JSON.stringify(found); document.body.appendChild(out); });'
         '</script>')


@pytest.mark.timeout(180)
def test_report_renders_in_headless_chromium(run, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip('Chromium is not installed (apt-get install chromium; CI installs it)')
    folder, _ = run
    with open(os.path.join(folder, 'report.html'), encoding='utf-8') as f:
        page = f.read()
    # the page as it is, plus a script that reports each image's decoded size into the DOM
    probe = os.path.join(folder, 'report-check.html')
    with open(probe, 'w', encoding='utf-8') as f:
        f.write(page.replace('</body>', CHECK + '</body>'))
    profile = tempfile.mkdtemp(dir=str(tmp_path))
    try:
        result = subprocess.run(
            [browser, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--user-data-dir=' + profile, '--virtual-time-budget=10000', '--dump-dom',
             'file://' + probe], capture_output=True, text=True, timeout=120)
    finally:
        os.remove(probe)
    found = re.search(r'<pre id="image-check">(.*?)</pre>', result.stdout, re.S)
    assert found, 'no image report in the dumped page: %s' % result.stderr[-2000:]
    images = json.loads(html.unescape(found.group(1)))
    assert len(images) == len(re.findall(r'<img ', page)) >= 7
    for image in images:
        assert image['complete'] and image['width'] > 0 and image['height'] > 0, image


def test_report_command(run, tmp_path, capsys):
    folder, _ = run
    copy = str(tmp_path / 'copied')
    shutil.copytree(folder, copy)
    os.remove(os.path.join(copy, 'report.html'))
    assert report.main([copy]) == os.path.join(copy, 'report.html')
    with open(os.path.join(copy, 'report.html'), encoding='utf-8') as f:
        assert 'python -m gluoncv_gan.train --resume %s' % copy in f.read()
    with pytest.raises(SystemExit) as stop:
        report.main([str(tmp_path)])
    assert stop.value.code == 2
    assert 'is not a run folder' in capsys.readouterr().err
