"""Multiply-adds of a HybridBlock's forward pass, counted on its symbolic graph.

:func:`gluoncv_gan.benchmark.conv_macs` walks a sequence of layers; this counts any hybridizable
network (residual blocks, gates) from the operators of its graph and their inferred shapes.
Only the convolutions, transposed convolutions and fully connected layers are counted; the rest
(BatchNorm, activations, pooling, up-sampling, sums, spectral-norm estimates, which depend on
the weights and not on the batch) are a few percent at most.
"""
import json

import mxnet as mx

__all__ = ['count_macs']


def _shape_of(entry, nodes, shapes):
    """Inferred shape of a node's input ``entry`` ([node id, output index, version])."""
    node = nodes[entry[0]]
    if node['op'] == 'null':
        return shapes[node['name']]
    return shapes['%s_output' % node['name']] if entry[1] == 0 else \
        shapes['%s_output%d' % (node['name'], entry[1])]


def count_macs(block, input_shape):
    """Multiply-adds per image of ``block``'s forward pass, by operator.

    Parameters
    ----------
    block : HybridBlock
        The network (initialised or not; only shapes are needed).
    input_shape : tuple of int
        Shape of one input batch, e.g. (1, 100, 1, 1) for a generator.

    Returns
    -------
    list of (str, str, int)
        (operator name, operator type, multiply-adds per image) in graph order. A convolution
        costs ``out_h * out_w * C_out * C_in/groups * kh * kw``; a transposed convolution
        ``in_h * in_w * C_in * C_out/groups * kh * kw``; a fully connected layer
        ``in_features * out_features``.
    """
    data = mx.sym.var('data')
    with mx.autograd.predict_mode():
        out = block(data)
    internals = out.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape_partial(data=tuple(input_shape))
    shapes = dict(zip(internals.list_outputs(), out_shapes))
    shapes.update(zip(internals.list_arguments(), arg_shapes))
    nodes = json.loads(out.tojson())['nodes']
    rows = []
    for node in nodes:
        op = node['op']
        if op not in ('Convolution', 'Deconvolution', 'FullyConnected'):
            continue
        weight = _shape_of(node['inputs'][1], nodes, shapes)
        if op == 'Convolution':
            output = shapes['%s_output' % node['name']]
            macs = _prod(output[1:]) * _prod(weight[1:])
        elif op == 'Deconvolution':
            source = _shape_of(node['inputs'][0], nodes, shapes)
            macs = _prod(source[1:]) * _prod(weight[1:])
        else:
            macs = _prod(weight)
        rows.append((node['name'], op, int(macs)))
    return rows


def _prod(values):
    result = 1
    for value in values:
        result *= int(value)
    return result
