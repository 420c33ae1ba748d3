"""Atomic writes: every file nodekd writes goes to a temporary name beside it and is moved into place with
`os.replace`, so a reader (or a command killed mid-write) never sees half a file."""

import contextlib
import os
import sys
import time
from pathlib import Path

# Seconds every atomic write pauses between writing its temporary file and moving it into place: a hook for the
# fault-injection test (tests/test_faults.py), which kills a command inside a write. Unset, writes never pause.
WRITE_PAUSE_ENV = "NODEKD_TEST_WRITE_PAUSE"


@contextlib.contextmanager
def replacing(path, suffix=""):
    """Yields a temporary path beside `path` (hidden, ending in `suffix` for writers that insist on one); what the
    caller writes there replaces `path` when the block ends, and is removed if the block fails."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial{suffix}")
    try:
        yield temporary
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    pause_in_write(path)
    os.replace(temporary, path)


def write_bytes(path, data):
    """Writes `data` to `path` atomically, flushed to disk first."""
    with replacing(path) as temporary, open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def pause_in_write(path):
    """The fault-injection hook (see WRITE_PAUSE_ENV): announces the write on stderr, then sleeps."""
    pause = os.environ.get(WRITE_PAUSE_ENV)
    if pause:
        print(f"nodekd-test: writing {Path(path).name}", file=sys.stderr, flush=True)
        time.sleep(float(pause))
