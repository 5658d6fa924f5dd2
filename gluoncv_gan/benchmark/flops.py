"""FLOPs of the training steps, counted analytically, and the measured rate they are compared
with (a large matrix product)."""
import time

__all__ = ['conv_macs', 'flops_per_image', 'measure_gemm']


def _conv_layers(block):
    from mxnet.gluon import nn
    for child in block._children.values():
        if isinstance(child, (nn.Conv2D, nn.Conv2DTranspose)):
            yield child
        else:
            for layer in _conv_layers(child):
                yield layer


def conv_macs(block, size):
    """Multiply-adds per image of every convolution of a sequential block of square images.

    Layers are taken in registration order, which is the order of the forward pass for the
    DCGAN networks (sequences of layers). Only convolutions change the spatial size there.

    Parameters
    ----------
    block : Block
        E.g. a ``DCGANGenerator`` (input size 1) or a ``DCGANDiscriminator``.
    size : int
        Height (= width) of the block's input.

    Returns
    -------
    list of (str, int, int)
        (layer name, multiply-adds per image, output size). A convolution costs
        ``out_h * out_w * C_out * C_in/groups * k * k``; a transposed convolution scatters
        each input pixel, ``in_h * in_w * C_in * C_out/groups * k * k``.
    """
    from mxnet.gluon import nn
    rows = []
    for layer in _conv_layers(block):
        kw = layer._kwargs
        k, s, p, d = kw['kernel'][0], kw['stride'][0], kw['pad'][0], kw['dilate'][0]
        shape = layer.weight.shape
        if isinstance(layer, nn.Conv2DTranspose):
            out = (size - 1) * s - 2 * p + d * (k - 1) + kw['adj'][0] + 1
            macs = size * size * shape[0] * shape[1] * k * k
        else:
            out = (size + 2 * p - d * (k - 1) - 1) // s + 1
            macs = out * out * shape[0] * shape[1] * k * k
        rows.append((layer.name, int(macs), int(out)))
        size = out
    return rows


def flops_per_image(nz=100, ngf=64, ndf=64, resolution=64, input_grad_only=False):
    """Convolution FLOPs per training image of the project's step and of the tutorial's.

    Accounting (2 FLOPs per multiply-add; BatchNorm, activations, losses and the optimiser
    are left out, they are a few percent at most):

    - ``Fg``, ``Fd``: one forward pass of the generator and of the discriminator.
    - A backward pass costs about twice its forward pass: the gradient with respect to the
      input and the gradient with respect to the weights cost about one forward each. The
      input gradient of the discriminator's first layer on real and on detached images is
      not needed but is counted, so the count is high by at most that layer's share (~1 %).
    - Project: the generator runs once (``Fg``); the discriminator runs on the real batch,
      on the detached fake batch and on the fake batch again for the generator step
      (``3 Fd``). The discriminator step backpropagates two passes (``4 Fd``); the generator
      step backpropagates through the discriminator (``2 Fd``, or ``1 Fd`` when the batch
      processor asks for the input gradient only, ``input_grad_only``) and the generator
      (``2 Fg``): ``3 Fg + 9 Fd`` (``3 Fg + 8 Fd``).
    - Tutorial: its generator step runs the generator a second time and computes the
      discriminator's weight gradients too: ``4 Fg + 9 Fd``.

    Parameters
    ----------
    nz, ngf, ndf : int
        Latent size and network widths.
    resolution : int
        Image size.
    input_grad_only : bool
        Whether the project's generator step skips the discriminator's weight gradients
        (``GANBatchProcessor.input_grad_only``).

    Returns
    -------
    dict
        ``generator_forward``, ``discriminator_forward``, ``project``, ``reference`` (FLOPs per
        image), ``formula`` and ``layers`` (per-layer multiply-adds of G and D).
    """
    from ..model_zoo.dcgan import DCGANDiscriminator, DCGANGenerator
    g_layers = conv_macs(DCGANGenerator(nz, ngf, 3, resolution), 1)
    d_layers = conv_macs(DCGANDiscriminator(ndf, 3, resolution), resolution)
    fg = 2 * sum(m for _, m, _ in g_layers)
    fd = 2 * sum(m for _, m, _ in d_layers)
    d_passes = 8 if input_grad_only else 9
    return {'generator_forward': fg, 'discriminator_forward': fd,
            'project': 3 * fg + d_passes * fd, 'reference': 4 * fg + 9 * fd,
            'formula': {'project': '3 Fg + %d Fd' % d_passes, 'reference': '4 Fg + 9 Fd'},
            'input_grad_only': bool(input_grad_only),
            'layers': {'generator': [[n, m] for n, m, _ in g_layers],
                       'discriminator': [[n, m] for n, m, _ in d_layers]}}


def measure_gemm(repeats, ctx=None, size=2048, dtype='float32'):
    """Achievable rate: GFLOP/s of a ``size`` x ``size`` matrix product in ``dtype``.

    The ceiling the training steps are compared with: unlike a nominal peak from the clock and
    the instruction set, it sees the real clock and memory system. The product is oneDNN's
    (``FullyConnected``, an inner product), the library that runs the convolutions, with this
    process's OpenMP threads: ``mx.nd.dot`` goes to the OpenBLAS 0.3.13 inside MXNet 1.9.1,
    which takes a CPU it does not know (Sapphire Rapids, with AMX) for a Prescott and runs SSE3
    code, so that a convolution step beat its "ceiling" 2.63 times. The best of ``repeats``
    timed products is kept; ``busy`` is the CPU time over the wall time of the best one (the
    cores it kept busy). ``dtype`` 'bfloat16' casts the operands first (untimed).
    """
    import mxnet as mx
    ctx = ctx or mx.cpu()
    a = mx.nd.random.uniform(shape=(size, size), ctx=ctx)
    b = mx.nd.random.uniform(shape=(size, size), ctx=ctx)
    if dtype == 'bfloat16':
        from mxnet.contrib.amp.amp import bfloat16
        a, b = mx.nd.amp_cast(a, dtype=bfloat16), mx.nd.amp_cast(b, dtype=bfloat16)
    # the operator itself, not the float32-output wrapper that --amp installs
    product = getattr(mx.nd.FullyConnected, '__wrapped__', mx.nd.FullyConnected)

    def run():
        product(a, b, num_hidden=size, no_bias=True).wait_to_read()
    run()
    best = busy = None
    for _ in range(max(1, repeats)):
        cpu = _cpu_seconds()
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best:
            best, busy = elapsed, (_cpu_seconds() - cpu) / elapsed if elapsed > 0 else None
    return {'size': size, 'seconds': best, 'dtype': dtype, 'busy': busy,
            'gflops': 2.0 * size ** 3 / best / 1e9}


def _cpu_seconds():
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
