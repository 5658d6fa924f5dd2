"""The library layer the commands share: one way from a config or weights to images and metrics.

- :mod:`~gluoncv_gan.pipeline.build`: devices, dataset, networks and trainers of a config;
- :mod:`~gluoncv_gan.pipeline.assembly`: the estimator and its handlers, built once for training
  and the benchmark;
- :mod:`~gluoncv_gan.pipeline.training`: a resumable training run into a run folder;
- :mod:`~gluoncv_gan.pipeline.generator`: a pair loaded from params, a checkpoint or a run;
- :mod:`~gluoncv_gan.pipeline.sampling`: images from a generator, in chunks;
- :mod:`~gluoncv_gan.pipeline.evaluation`: SWD, face rate, diversity and memorisation of a set
  of images against a seeded real subset, and training's evaluation function.

Imports go one way: commands -> pipeline -> estimator, model_zoo, metrics, data, distributed ->
utils (``tests/test_structure.py``); what the estimator's handlers measure is passed to them.
The submodules are imported on use, not here, so that a command loads only what it needs.
"""
