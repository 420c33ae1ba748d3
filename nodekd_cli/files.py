"""Atomic writes: every file nodekd writes goes to a temporary name beside it and is moved into place with
`os.replace`, so a reader (or a command killed mid-write) never sees half a file."""

import contextlib
import errno
import os
import shutil
import sys
import time
from pathlib import Path

# Seconds every atomic write pauses between writing its temporary file and moving it into place: a hook for the
# fault-injection test (tests/test_faults.py), which kills a command inside a write. Unset, writes never pause.
WRITE_PAUSE_ENV = "NODEKD_TEST_WRITE_PAUSE"


def refuse_link(path):
    """A `UserError` naming `path` if it is a symbolic link: nodekd writes nothing through a link, so that a run folder
    made by someone else (shared, downloaded) cannot make a command overwrite a file elsewhere."""
    if Path(path).is_symlink():
        from nodekd_cli.errors import UserError

        raise UserError(f"{path} is a symbolic link, and nodekd writes nothing through a link; remove it.")


FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(OSError):
    """A write that found the disk (or the quota) full; its message names the file and the space left."""

    def __init__(self, path, error):
        try:
            left = shutil.disk_usage(Path(path).parent).free
            free = f"{left / 2**20:,.0f} MiB free" if left >= 10 * 2**20 else f"{left / 2**10:,.0f} KiB free"
        except OSError:
            free = "free space unknown"
        super().__init__(
            error.errno, f"no space left on its device ({free}); the last complete file is kept", str(path)
        )


@contextlib.contextmanager
def replacing(path, suffix=""):
    """Yields a temporary path beside `path` (hidden, ending in `suffix` for writers that insist on one); what the
    caller writes there replaces `path` when the block ends, and is removed if the block fails. A `path` that is a
    symbolic link is refused (`refuse_link`); whatever stands at the temporary path (a link left there) is removed
    first, so the caller's write makes a new file."""
    path = Path(path)
    refuse_link(path)
    temporary = path.with_name(f".{path.name}.partial{suffix}")
    temporary.unlink(missing_ok=True)
    try:
        yield temporary
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno in FULL and not isinstance(error, DiskFull):
            raise DiskFull(path, error) from None
        raise
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
