"""``python -m gluoncv_gan <command>``: the same as the ``gluoncv-gan`` console script."""
import sys

from .cli import main

sys.exit(main())
