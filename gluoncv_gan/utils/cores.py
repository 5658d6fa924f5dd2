"""How many CPU cores this process may use (imports nothing, so it can run before MXNet)."""
import os

__all__ = ['usable_cores']


def usable_cores():
    """CPUs this process may run on: its affinity mask where the OS has one, else all CPUs."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1
