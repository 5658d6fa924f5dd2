"""Command names for usage lines: ``gluoncv-gan train`` or ``python -m gluoncv_gan.train``."""
import os
import sys

__all__ = ['prog']


def prog(module):
    """The name of the running command, for ``argparse.ArgumentParser(prog=...)``.

    The console scripts (``gluoncv-gan <command>``, ``gluoncv-gan-train``...) are named by
    ``sys.argv[0]``; anything else, e.g. ``python -m gluoncv_gan.train``, is named by how the
    module ``module`` is run.
    """
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ''
    return name if name.startswith('gluoncv-gan') else 'python -m ' + module
