"""Stopping a command on Ctrl-C or SIGTERM, even when the signal lands where an exception would be lost.

The command's signal handler (`request`) records the request and raises KeyboardInterrupt where the signal lands, as
Python's own Ctrl-C does, except inside a garbage-collector callback or a `__del__` (JAX registers such a
callback), where Python would print the exception and drop it. The long loops (training batches, attack batches)
call `check` between steps, which raises it then; so a request is never lost, and waits at most one step.
"""

import contextlib
import gc

requested = False
_deferring = 0  # how many `deferred` blocks are running


def request(signum=None, frame=None):
    """The signal handler: records the request and raises KeyboardInterrupt, unless that would be lost or a
    `deferred` block is running."""
    global requested
    requested = True
    if not _deferring and not _inside_finalizer(frame):
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """Holds back the KeyboardInterrupt of a signal while a few steps run that must not be cut in two (taking a lock
    and noting its holder); it is raised when the block ends."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        check()


@contextlib.contextmanager
def allowed():
    """Inside a `deferred` block, lets a signal stop the command at once again (around a wait)."""
    global _deferring
    saved, _deferring = _deferring, 0
    try:
        check()
        yield
    finally:
        _deferring = saved


def check():
    """Raises KeyboardInterrupt if a stop was requested (call it between the steps of long work)."""
    if requested:
        raise KeyboardInterrupt


def _inside_finalizer(frame):
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False
