"""Published weights of gluoncv-gan's model zoo.

No weights are published yet: ``pretrained=True`` raises an error that says so.
"""
__all__ = ['get_model_file', 'pretrained_model_list', 'PretrainedNotAvailable']

# name -> sha1 of the published ``{name}-{sha1[:8]}.params``
_model_sha1 = {}


class PretrainedNotAvailable(ValueError):
    """The requested model has no published weights."""


def pretrained_model_list():
    """Names of the models that have published weights."""
    return sorted(_model_sha1)


def get_model_file(name, tag=None, root=None):
    """Path of the verified weights file of ``name`` (downloaded if needed)."""
    if name not in _model_sha1:
        published = ', '.join(pretrained_model_list()) or 'none yet'
        raise PretrainedNotAvailable(
            'No pretrained weights are published for %r (published: %s). Build it with '
            'pretrained=False and train it with `python -m gluoncv_gan.train`, or load your own '
            'weights with net.load_parameters(path).' % (name, published))
    raise NotImplementedError('downloading published weights is not implemented yet')
