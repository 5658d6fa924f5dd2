"""Registries of named constructors, filled where the constructors are defined.

A module that defines a model or an objective registers it with a decorator, so code that only
needs the names (the config check, the model store) asks a registry instead of importing the
modules that define them. A registry is empty until those modules are imported
(``import gluoncv_gan`` imports them all). This module imports nothing of the package.
"""

__all__ = ['Registry', 'MODELS', 'OBJECTIVES', 'KVSTORES', 'AUGMENTATIONS']


class Registry:
    """Lower-case names mapped to constructors.

    Parameters
    ----------
    kind : str
        What the names stand for, e.g. 'model'; used in error messages.
    closed : bool
        The package's own names are all there is (nobody registers more): a command-line flag
        offers them as its choices.
    """

    def __init__(self, kind, closed=False):
        self.kind, self.closed = kind, closed
        self._constructors = {}

    def register(self, constructor=None, name=None):
        """Add ``constructor`` under ``name`` (default: its ``__name__``); usable as a decorator.

        ``@registry.register`` registers a function under its own name,
        ``@registry.register(name='vanilla')`` under another one.

        Raises
        ------
        ValueError
            The name is taken by another constructor.
        """
        def add(constructor):
            key = (name or constructor.__name__).lower()
            if self._constructors.get(key, constructor) is not constructor:
                raise ValueError('%s name %r is registered twice' % (self.kind, key))
            self._constructors[key] = constructor
            return constructor
        return add if constructor is None else add(constructor)

    def names(self):
        """The registered names, sorted."""
        return sorted(self._constructors)

    def items(self):
        """(name, constructor) pairs, sorted by name."""
        return sorted(self._constructors.items())

    def get(self, name):
        """The constructor registered as ``name`` (case-insensitive).

        Raises
        ------
        ValueError
            No such name; the message lists the registered ones.
        """
        key = str(name).lower()
        if key not in self._constructors:
            raise ValueError('unknown %s %r; choose one of: %s'
                             % (self.kind, name, ', '.join(self.names())))
        return self._constructors[key]

    def __contains__(self, name):
        return str(name).lower() in self._constructors


# the package's registries, filled by gluoncv_gan.model_zoo, gluoncv_gan.loss,
# gluoncv_gan.distributed and gluoncv_gan.estimator.augment
MODELS = Registry('model')
OBJECTIVES = Registry('GAN objective')
KVSTORES = Registry('kvstore', closed=True)
AUGMENTATIONS = Registry('augmentation', closed=True)
