"""The library layer the commands share: one way from a config or weights to images and metrics.

- :mod:`~gluoncv_gan.pipeline.build`: devices, dataset, networks and trainers of a config;
- :mod:`~gluoncv_gan.pipeline.training`: a resumable training run into a run folder;
- :mod:`~gluoncv_gan.pipeline.generator`: a pair loaded from params, a checkpoint or a run;
- :mod:`~gluoncv_gan.pipeline.sampling`: images from a generator, in chunks;
- :mod:`~gluoncv_gan.pipeline.evaluation`: SWD, face rate, diversity and memorisation of a set
  of images against a seeded real subset;
- :mod:`~gluoncv_gan.pipeline.report`: a run's ``report.html``.

The commands (``gluoncv_gan.train``, ``evaluate``, ``sample``...) parse flags and call these
modules; none of them imports another command, and nothing here imports a command
(``tests/test_structure.py``). The submodules are imported on use, not here, because the
estimator's event handlers use :mod:`~gluoncv_gan.pipeline.evaluation` while
:mod:`~gluoncv_gan.pipeline.training` uses the handlers.
"""
