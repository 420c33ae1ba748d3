"""Stopping a command on Ctrl-C or SIGTERM, even when the signal lands where an exception would be lost.

The command's signal handler (`request`) records the request and raises KeyboardInterrupt where the signal lands, as
Python's own Ctrl-C does, except inside a garbage-collector callback or a `__del__` (JAX registers such a
callback), where Python would print the exception and drop it. The long loops (training batches, attack batches)
call `check` between steps, which raises it then; so a request is never lost, and waits at most one step.
"""

import gc

requested = False


def request(signum=None, frame=None):
    """The signal handler: records the request and raises KeyboardInterrupt, unless that would be lost."""
    global requested
    requested = True
    if not _inside_finalizer(frame):
        raise KeyboardInterrupt


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
