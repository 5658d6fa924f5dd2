"""Deployable generators: an MXNet symbol file with its parameters, or an ONNX model.

Both load without gluoncv_gan: the symbol pair with ``mx.gluon.SymbolBlock.imports`` (GluonCV's
``export_block`` format), the ONNX file with onnxruntime or any other ONNX runtime. The input is
a latent batch of shape (N, nz, 1, 1) float32 named ``data`` (N free); the output is (N, 3, H, W)
images in [-1, 1]. BatchNorm uses its running statistics (inference mode).
"""
import os
import shutil
import tempfile

import mxnet as mx
import numpy as np

__all__ = ['export_symbol', 'export_onnx', 'load_symbol', 'ONNX_MISSING']

ONNX_MISSING = ('--format onnx needs the onnx package: pip install "gluoncv-gan[onnx]" '
                '(onnx and onnxruntime)')


def _staging(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    return tempfile.mkdtemp(prefix='.deploy-', dir=out_dir)


def _publish(staging, out_dir, names):
    """Move the files ``names`` of ``staging`` into ``out_dir`` (atomic renames), drop staging."""
    paths = []
    try:
        for name in names:
            paths.append(os.path.join(out_dir, name))
            os.replace(os.path.join(staging, name), paths[-1])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def _export_into(generator, folder, prefix):
    """HybridBlock.export of ``generator`` into ``folder``; (symbol path, params path)."""
    generator.hybridize()
    z = mx.nd.zeros((1, generator.nz, 1, 1), ctx=next(iter(
        generator.collect_params().values())).list_ctx()[0])
    with mx.autograd.predict_mode():  # BatchNorm with running statistics
        generator(z)
    path = os.path.join(folder, prefix)
    generator.export(path, epoch=0)
    return path + '-symbol.json', path + '-0000.params'


def export_symbol(generator, out_dir, prefix='generator'):
    """Write ``{prefix}-symbol.json`` and ``{prefix}-0000.params`` into ``out_dir``.

    Parameters
    ----------
    generator : HybridBlock
        A generator with an ``nz`` attribute (e.g. ``get_model('dcgan_lfw').generator``).
    out_dir : str
        Destination folder (created); each file appears complete or not at all.

    Returns
    -------
    list of str
        The symbol and the parameter file.
    """
    staging = _staging(out_dir)
    try:
        _export_into(generator, staging, prefix)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _publish(staging, out_dir, [prefix + '-symbol.json', prefix + '-0000.params'])


def export_onnx(generator, out_dir, prefix='generator'):
    """Write ``{prefix}.onnx`` into ``out_dir`` through ``mx.onnx.export_model``.

    The batch dimension is dynamic. Parameters are stored as initializers only (not also as
    graph inputs), so runtimes can fold them as constants.

    Raises
    ------
    ImportError
        Without the onnx package (:data:`ONNX_MISSING`).
    """
    try:
        import onnx
    except ImportError:
        raise ImportError(ONNX_MISSING) from None
    staging = _staging(out_dir)
    try:
        work = tempfile.mkdtemp(prefix='symbol-', dir=staging)
        symbol, params = _export_into(generator, work, prefix)
        path = os.path.join(staging, prefix + '.onnx')
        nz = generator.nz
        mx.onnx.export_model(symbol, params, in_shapes=[(1, nz, 1, 1)], in_types=[np.float32],
                             onnx_file_path=path, dynamic=True,
                             dynamic_input_shapes=[(None, nz, 1, 1)])
        shutil.rmtree(work)
        model = onnx.load(path)
        constants = {init.name for init in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in constants]
        del model.graph.input[:]
        model.graph.input.extend(inputs)
        onnx.checker.check_model(model)
        onnx.save(model, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _publish(staging, out_dir, [prefix + '.onnx'])


def load_symbol(symbol_file, params_file, ctx=None):
    """The exported generator as a ``SymbolBlock`` (what a deployment without gluoncv_gan does)."""
    return mx.gluon.SymbolBlock.imports(symbol_file, ['data'], params_file, ctx=ctx or mx.cpu())
