"""``gluoncv-gan <command> ...``: every command of the package behind one console script.

Example::

    gluoncv-gan train --config configs/dcgan_lfw.yaml --save-dir runs/dcgan_lfw
    gluoncv-gan sample dcgan_lfw --pretrained --out faces.png
    gluoncv-gan <command> --help

Each command is also ``python -m gluoncv_gan.<module>`` (the module is listed by ``--help``).
"""
import difflib
import importlib
import sys

__all__ = ['COMMANDS', 'main']

# command -> (module, what it does)
COMMANDS = {
    'train': ('gluoncv_gan.train', 'train a GAN of the model zoo from a YAML recipe'),
    'sample': ('gluoncv_gan.sample', 'sample images or latent walks from a generator'),
    'evaluate': ('gluoncv_gan.evaluate', 'SWD, face rate, diversity and memorisation'),
    'export': ('gluoncv_gan.export', 'model-store weights, or a symbol or ONNX generator'),
    'report': ('gluoncv_gan.report', "write a run's report.html"),
    'compare': ('gluoncv_gan.compare', 'train and evaluate recipes on the same budget'),
    'benchmark': ('gluoncv_gan.benchmark', "time the training step against the tutorial's"),
    'launch': ('gluoncv_gan.launch', 'start a parameter-server job on this machine'),
    'prepare-lfw': ('gluoncv_gan.data.prepare_lfw', 'download, verify and extract LFW'),
}


def usage():
    lines = ['usage: gluoncv-gan <command> [options]   (gluoncv-gan <command> --help for more)',
             '', 'commands:']
    for name, (module, text) in COMMANDS.items():
        lines.append('  %-12s %-50s python -m %s' % (name, text, module))
    return '\n'.join(lines)


def main(argv=None):
    """Run ``argv[0]``'s command with the rest of ``argv``; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == '--version':
        from . import __version__
        print('gluoncv-gan %s' % __version__)
        return 0
    command = argv[0]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, list(COMMANDS), n=1)
        print('error: gluoncv-gan has no command %r: %s' % (
            command, 'did you mean %s?' % close[0] if close else
            'use one of %s' % ', '.join(COMMANDS)), file=sys.stderr)
        return 2
    sys.argv[0] = 'gluoncv-gan ' + command  # names the command in its usage lines
    result = importlib.import_module(COMMANDS[command][0]).main(argv[1:])
    # prepare-lfw returns its exit code; the others return what they made, or None
    return result if type(result) is int else 0


if __name__ == '__main__':
    sys.exit(main())
