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


# mxnet 1.9.1 breaks on numpy >= 1.24, and gluoncv 0.10.5.post0 would otherwise pull numpy 2 and
# the opencv / pandas / scipy / matplotlib releases built for it: pin a set known to work together.
INSTALL_REQUIRES = [
    'mxnet==1.9.1',
    'gluoncv==0.10.5.post0',
    'numpy==1.23.5',
    'opencv-python==4.8.1.78',
    'matplotlib==3.8.4',
    'pandas==2.0.3',
    'scipy==1.11.4',
    'tqdm>=4.60',
    'PyYAML>=6.0',
]

setup(
    name='gluoncv-gan',
    version=read_version(),
    description='Generative adversarial networks for GluonCV: DCGAN faces on LFW and more',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.11,<3.12',
    packages=find_packages(include=['gluoncv_gan', 'gluoncv_gan.*']),
    package_data={'gluoncv_gan': ['data/lfw_sample/*/*/*.jpg', 'model_zoo/weights/*.zip']},
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': ['pytest>=7', 'pytest-timeout>=2.1']},
    entry_points={'console_scripts': [
        'gluoncv-gan-train=gluoncv_gan.train:main',
        'gluoncv-gan-sample=gluoncv_gan.sample:main',
        'gluoncv-gan-prepare-lfw=gluoncv_gan.data.prepare_lfw:main',
    ]},
    classifiers=['Programming Language :: Python :: 3.11',
                 'Topic :: Scientific/Engineering :: Artificial Intelligence'],
)
