"""A run's report: one self-contained HTML page that shows how training is going.

Example::

    python -m gluoncv_gan.report runs/dcgan_lfw      # (re)write runs/dcgan_lfw/report.html

Training keeps ``report.html`` up to date itself (:class:`gluoncv_gan.estimator.ReportHandler`,
every epoch); this command writes it for an older or copied run. The page links only files of
the run folder, so it opens offline; what it shows: docs/training.md#the-run-folder.
"""
import argparse
import os
import sys

from .estimator.run_report import write_report
from .utils.command_line import command, prog

__all__ = ['main']


@command()
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.prog = prog('gluoncv_gan.report')  # the command's real name in usage lines
    parser.add_argument('run', help='a run folder (written by gluoncv_gan.train)')
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.run, 'config.yaml')):
        sys.exit('error: %s is not a run folder (no config.yaml): give the --save-dir of a '
                 'training run' % args.run)
    path = write_report(args.run)
    print(path)
    return path


if __name__ == '__main__':
    main()
