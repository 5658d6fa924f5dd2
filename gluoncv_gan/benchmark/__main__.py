"""``python -m gluoncv_gan.benchmark``: see :mod:`gluoncv_gan.benchmark`."""
from . import main

if __name__ == '__main__':
    main()
