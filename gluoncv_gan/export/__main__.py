"""``python -m gluoncv_gan.export``: see :mod:`gluoncv_gan.export`."""
from . import main

if __name__ == '__main__':
    main()
