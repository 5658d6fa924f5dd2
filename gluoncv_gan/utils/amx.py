"""Which bfloat16 path this CPU offers, and the Linux permission that Intel AMX needs.

oneDNN 2.4 (MXNet 1.9.1) runs its AMX kernels only with ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX``, and
then dies with SIGILL unless the process asked Linux for the AMX tile state. :func:`setup_amx`
therefore runs before ``import mxnet`` and :func:`pin_isa` takes the variable out of the
environment after one primitive; why: docs/performance.md#bfloat16---amp. This module imports
nothing of the package, and MXNet only inside :func:`pin_isa`.
"""
import ctypes
import errno
import os

__all__ = ['CPUINFO', 'CPUINFO_VARIABLE', 'AMX_ISA', 'OPT_OUT_VARIABLE', 'STATE',
           'cpu_info_path', 'cpu_flags', 'bfloat16_path', 'request_amx', 'setup_amx',
           'pin_isa', 'describe']

CPUINFO = '/proc/cpuinfo'
CPUINFO_VARIABLE = 'GLUONCV_GAN_CPUINFO'  # another cpuinfo file to read (tests fake CPUs)
AMX_ISA = 'AVX512_CORE_AMX'
OPT_OUT_VARIABLE = 'GLUONCV_GAN_AMX'  # =0: never ask for AMX
SYS_ARCH_PRCTL = 158  # x86-64 syscall number
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18
STATE = None  # what setup_amx did for this process (gluoncv_gan/__init__.py calls it)


def cpu_info_path():
    """``$GLUONCV_GAN_CPUINFO`` when set, else /proc/cpuinfo."""
    return os.environ.get(CPUINFO_VARIABLE) or CPUINFO


def cpu_flags(path=None):
    """The feature flags of the first processor in ``path`` (default :func:`cpu_info_path`),
    empty when it cannot be read."""
    path = path or cpu_info_path()
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.partition(':')[2].split())
    except OSError:
        pass
    return frozenset()


def bfloat16_path(flags):
    """The best bfloat16 hardware of a CPU with these flags: ``'amx'``, ``'avx512_bf16'``
    or None (no native bfloat16: oneDNN would emulate it)."""
    if {'amx_tile', 'amx_bf16'} <= set(flags):
        return 'amx'
    if 'avx512_bf16' in flags:
        return 'avx512_bf16'
    return None


def request_amx():
    """Ask Linux for permission to use the AMX tile data (needed once per process).

    Returns
    -------
    (bool, str)
        Whether it was granted, and why not.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
    except (OSError, AttributeError) as err:
        return False, 'the arch_prctl system call is not available (%s)' % err
    if result != 0:
        code = ctypes.get_errno() or errno.EINVAL
        return False, 'Linux refused the AMX permission request (%s)' % os.strerror(code)
    return True, ''


def _disabled(environ):
    return environ.get(OPT_OUT_VARIABLE, '').strip().lower() in ('0', 'false', 'no', 'off')


def setup_amx(environ=None, flags=None, mxnet_loaded=False, request=request_amx):
    """Prepare AMX for oneDNN when the CPU has it; say which bfloat16 path the process gets.

    On a CPU with ``amx_tile`` and ``amx_bf16``, before MXNet is loaded and unless the user set
    ``DNNL_MAX_CPU_ISA`` or ``GLUONCV_GAN_AMX=0``: ask Linux for the tile state and, when granted,
    set ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX`` in ``environ``. Float32 work is not affected (AMX
    has no float32 instructions).

    Parameters
    ----------
    environ : dict, default ``os.environ``
        The environment to read and to set ``DNNL_MAX_CPU_ISA`` in (with the default, the
        result is also kept in :data:`STATE`).
    flags : set of str, default :func:`cpu_flags`
        The CPU's flags.
    mxnet_loaded : bool
        MXNet is already imported (its oneDNN has read the environment): too late for AMX.
    request : callable
        :func:`request_amx`, or a stand-in for tests.

    Returns
    -------
    dict
        ``path`` (``'amx'``, ``'avx512_bf16'`` or None), ``hardware`` (what the CPU offers),
        ``requested`` (whether the permission request was made and granted), ``isa`` (the
        ``DNNL_MAX_CPU_ISA`` now in effect, or None), ``set_isa`` (this call set it) and
        ``reason`` (why the path is not the hardware's best, or '').
    """
    global STATE
    if environ is None:
        STATE = setup_amx(os.environ, flags, mxnet_loaded, request)
        return STATE
    flags = cpu_flags() if flags is None else flags
    hardware = bfloat16_path(flags)
    state = {'hardware': hardware, 'path': hardware, 'requested': False,
             'isa': environ.get('DNNL_MAX_CPU_ISA'), 'reason': '', 'set_isa': False}
    if hardware != 'amx':
        return state
    fallback = 'avx512_bf16' if 'avx512_bf16' in flags else None
    if _disabled(environ):
        state.update(path=fallback, reason='%s=%s turns AMX off'
                     % (OPT_OUT_VARIABLE, environ[OPT_OUT_VARIABLE]))
        return state
    if mxnet_loaded:
        state.update(path=fallback, reason='mxnet was imported before gluoncv_gan, too late to '
                                           'enable AMX (import gluoncv_gan first)')
        return state
    user_isa = environ.get('DNNL_MAX_CPU_ISA')
    granted, why = request()
    state['requested'] = granted
    if user_isa and user_isa.strip().upper() != AMX_ISA:
        state.update(path=fallback, reason='DNNL_MAX_CPU_ISA=%s was set by the user' % user_isa)
        return state
    if not granted:
        if user_isa:  # oneDNN would die with SIGILL on its first AMX instruction
            del environ['DNNL_MAX_CPU_ISA']
        state.update(path=fallback, isa=None, reason=why)
        return state
    if not user_isa:
        environ['DNNL_MAX_CPU_ISA'] = AMX_ISA
        state['set_isa'] = True
    state['isa'] = AMX_ISA
    return state


def pin_isa(state, environ=None):
    """Make oneDNN read the ISA that :func:`setup_amx` set, then unset it again.

    Runs one small ``FullyConnected`` (a oneDNN primitive: oneDNN reads ``DNNL_MAX_CPU_ISA``
    once, at the first one), then removes the variable from ``environ`` when ``setup_amx`` put
    it there, so that child processes do not inherit it without the permission.
    """
    environ = os.environ if environ is None else environ
    if not state or not state.get('set_isa'):
        return
    import mxnet as mx
    one = mx.nd.ones((1, 1))
    mx.nd.FullyConnected(one, one, num_hidden=1, no_bias=True).wait_to_read()
    if environ.get('DNNL_MAX_CPU_ISA') == AMX_ISA:
        del environ['DNNL_MAX_CPU_ISA']


def describe(state):
    """One line naming the bfloat16 path of a :func:`setup_amx` state."""
    names = {'amx': 'AMX (oneDNN %s)' % AMX_ISA, 'avx512_bf16': 'AVX-512 BF16 (no AMX)',
             None: 'none (no native bfloat16)'}
    line = 'bfloat16 path: %s' % names[state['path']]
    if state['reason']:
        line += '; the CPU has %s but %s' % (names[state['hardware']].split(' (')[0],
                                             state['reason'])
    return line
