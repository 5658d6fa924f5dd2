"""Packaging: the wheel leaves the user's MXNet build alone, and says what to install without one.

The project's wheel is built from a copy of the tracked sources and installed offline
(``--no-index --find-links``) into a fresh virtual environment that already holds a stub
``mxnet-cu112`` distribution (an ``mxnet`` module, as a GPU user has). The folder pip resolves
from also holds a decoy CPU ``mxnet`` 1.9.1 and stubs of every other requirement, so the test
proves that pip's resolver, free to pull the CPU build, does not: without the ``[cpu]`` extra
no requirement names ``mxnet``. The same resolution with ``[cpu]`` does pick the decoy, which
shows the decoy was within pip's reach.
"""
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONSTRAINTS = os.path.join(REPO, '.ci', 'constraints.txt')

pytestmark = pytest.mark.timeout(300)


def _run(args, timeout=240, **kwargs):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PIP_', 'PYTHON'))}
    env['PIP_CONFIG_FILE'] = os.devnull  # no machine-wide index, find-links or constraints
    env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                          **kwargs)


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return [path, 'sha256=' + digest, str(len(data))]


def make_wheel(folder, name, version, files=None):
    """Write a minimal pure-Python wheel of distribution ``name`` holding ``files``."""
    stem = '%s-%s' % (re.sub(r'[-_.]+', '_', name), version)
    info = stem + '.dist-info'
    contents = dict(files or {})
    contents[info + '/METADATA'] = 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' % (
        name, version)
    contents[info + '/WHEEL'] = ('Wheel-Version: 1.0\nGenerator: gluoncv-gan-tests\n'
                                 'Root-Is-Purelib: true\nTag: py3-none-any\n')
    path = os.path.join(folder, stem + '-py3-none-any.whl')
    record = io.StringIO()
    writer = csv.writer(record, lineterminator='\n')
    with zipfile.ZipFile(path, 'w') as archive:
        for member, text in contents.items():
            data = text.encode()
            archive.writestr(member, data)
            writer.writerow(_record_line(member, data))
        writer.writerow([info + '/RECORD', '', ''])
        archive.writestr(info + '/RECORD', record.getvalue())
    return path


def pinned_versions():
    pins = {}
    with open(CONSTRAINTS) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                name, version = line.split('==')
                pins[re.sub(r'[-_.]+', '-', name).lower()] = version
    return pins


def wheel_requirements(wheel):
    """{normalised name: marker or ''} of the wheel's Requires-Dist lines."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
        text = archive.read(meta).decode()
    found = {}
    for line in text.splitlines():
        if line.startswith('Requires-Dist:'):
            spec = line.split(':', 1)[1].strip()
            name = re.match(r'[A-Za-z0-9._-]+', spec).group(0)
            marker = spec.split(';', 1)[1].strip() if ';' in spec else ''
            found.setdefault(re.sub(r'[-_.]+', '-', name).lower(), []).append(marker)
    return found


@pytest.fixture(scope='module')
def project_wheel(tmp_path_factory):
    """The project's wheel, built offline from a copy of its tracked files."""
    pytest.importorskip('wheel', reason='building the wheel offline needs the wheel package '
                                        '(pip install -e ".[test]")')
    listed = _run(['git', '-C', REPO, 'ls-files', '-z'], timeout=60)
    if listed.returncode != 0:
        pytest.skip('not a git checkout: %s' % listed.stderr.strip())
    source = tmp_path_factory.mktemp('source')
    for rel in listed.stdout.split('\0'):
        if rel and os.path.isfile(os.path.join(REPO, rel)):
            os.makedirs(os.path.dirname(os.path.join(source, rel)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), os.path.join(source, rel))
    dist = tmp_path_factory.mktemp('dist')
    built = _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                  '--no-index', '-q', '-w', str(dist), str(source)])
    assert built.returncode == 0, built.stderr
    (wheel,) = [os.path.join(dist, n) for n in os.listdir(dist) if n.endswith('.whl')]
    return wheel


def test_wheel_is_small_and_holds_the_bundled_faces_and_dcgan_lfw_weights_only(project_wheel):
    assert os.path.getsize(project_wheel) < 40 * 1024 ** 2
    with zipfile.ZipFile(project_wheel) as archive:
        names = archive.namelist()
    faces = [n for n in names if n.startswith('gluoncv_gan/data/lfw_sample/') and n.endswith('.jpg')]
    assert len(faces) == 300  # the bundled sample of the README's main job
    weights = sorted(n for n in names if n.startswith('gluoncv_gan/model_zoo/weights/'))
    assert weights == ['gluoncv_gan/model_zoo/weights/dcgan_lfw-92447550.zip']  # docs/model_zoo.md


def test_wheel_does_not_require_mxnet(project_wheel):
    requirements = wheel_requirements(project_wheel)
    assert requirements['mxnet'] == ['extra == "cpu"']
    assert 'numpy' in requirements and '' in requirements['numpy']


def test_gpu_build_is_kept_and_missing_mxnet_is_named(project_wheel, tmp_path):
    stubs = tmp_path / 'stubs'
    stubs.mkdir()
    make_wheel(str(stubs), 'mxnet-cu112', '1.9.1',
               {'mxnet/__init__.py': "__version__ = '1.9.1'\nBUILD = 'cu112 stub'\n"})
    make_wheel(str(stubs), 'mxnet', '1.9.1',
               {'mxnet/__init__.py': "__version__ = '1.9.1'\nBUILD = 'cpu decoy'\n"})
    pins = pinned_versions()
    needed = [name for name, markers in wheel_requirements(project_wheel).items()
              if '' in markers]
    for name in needed:
        assert name in pins, '%s is required but not pinned in .ci/constraints.txt' % name
        make_wheel(str(stubs), name, pins[name])

    venv = tmp_path / 'venv'
    created = _run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], timeout=120)
    assert created.returncode == 0, created.stderr
    python = str(venv / 'bin' / 'python')

    def pip(*args):
        result = _run([sys.executable, '-m', 'pip', '--python', python] + list(args),
                      cwd=str(tmp_path))
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    offline = ['--no-index', '--find-links', str(stubs)]
    pip('install', '-q', *offline, 'mxnet-cu112')
    # the [cpu] extra would pull the decoy: it is within the resolver's reach
    report = json.loads(pip('install', '--dry-run', '-q', '--report', '-', *offline,
                            project_wheel + '[cpu]'))
    chosen = {item['metadata']['name'].lower(): item['metadata']['version']
              for item in report['install']}
    assert chosen.get('mxnet') == '1.9.1'

    pip('install', '-q', *offline, project_wheel)
    installed = _run([python, '-c', 'import importlib.metadata as m, mxnet; '
                      'print(sorted(d.metadata["Name"].lower() for d in m.distributions())); '
                      'print(mxnet.BUILD)'], cwd=str(tmp_path), timeout=60)
    assert installed.returncode == 0, installed.stderr
    names, build = installed.stdout.strip().splitlines()
    assert 'mxnet-cu112' in names and 'gluoncv-gan' in names
    assert "'mxnet'" not in names  # the CPU distribution was not installed on top
    assert build == 'cu112 stub'

    # without any MXNet build, importing the package names what to install, in one line
    pip('uninstall', '-q', '-y', 'mxnet-cu112')
    failed = _run([python, '-c', 'import gluoncv_gan'], cwd=str(tmp_path), timeout=60)
    assert failed.returncode != 0
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: gluoncv_gan needs MXNet 1.9.1, which is not installed')
    assert 'pip install "gluoncv-gan[cpu]"' in last and 'mxnet-cu112' in last
    # a command says it in one line, without a traceback, and exits with 2
    for command in ([str(venv / 'bin' / 'gluoncv-gan'), 'train', '--help'],
                    [python, '-m', 'gluoncv_gan.train', '--help']):
        failed = _run(command, cwd=str(tmp_path), timeout=60)
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.strip() == 'error: ' + last[len('ImportError: '):]
