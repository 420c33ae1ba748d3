"""Locks on run folders: one writer at a time, a holder named, a killed holder's lock taken over at once, and the
folders a command makes removed again if it leaves them empty."""

import contextlib
import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

from nodekd_cli import files
from nodekd_cli.errors import A_FILE, RunConflict, UserError, file_error

LOCK = ".lock"


class RunLocked(RunConflict):
    """Another process holds the lock on a folder; `owner` says who (pid, host, command, since)."""

    def __init__(self, folder, owner):
        self.owner = owner
        who = f"process {owner.get('pid', '?')} on {owner.get('host', '?')}"
        since = f" since {owner['since']}" if owner.get("since") else ""
        command = f" ({owner['command']})" if owner.get("command") else ""
        fact = f"{folder} is being written by {who}{since}{command}"
        super().__init__(folder, fact, "wait for it to end, or pass --wait")


def _read_owner(path):
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def make_folders(folder):
    """Creates `folder` and its missing parents; returns those it created, outermost first. A `UserError` in one
    sentence if it cannot (a read-only parent, a file in the way)."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    for path in missing:
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise UserError(f"Cannot write {path}: {A_FILE}.") from None
        except OSError as error:
            raise file_error(error, path) from None
    if not folder.is_dir():
        raise UserError(f"Cannot write {folder}: {A_FILE}.")
    return missing


def writable_folder(folder):
    """Makes sure files can be written into `folder` (made if missing) before work whose output would be lost."""
    make_folders(folder)
    probe = Path(folder) / f".nodekd-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        probe.unlink()
    except OSError as error:
        raise file_error(error, folder) from None


def _command_line():
    """This process's command line as a user would type it: `nodekd ...` however it was started."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join(["nodekd" if program in ("__main__.py", "nodekd") else program, *sys.argv[1:]])


@contextlib.contextmanager
def lock(folder, *, name=LOCK, wait=None):
    """Holds an exclusive lock on `folder` (made if missing) while the caller writes it.

    The lock is `flock` on the file `folder/name`, which names its holder. Another holder makes this a `RunLocked`
    error, or, when `wait` is a function, a wait (`wait(owner)` is called first, to say so). The kernel drops a lock
    whose process has died, so a killed command's stale lock is taken over at once. On leaving, the lock file goes,
    and so do the folders made here if they are empty (a command that failed leaves nothing behind).
    """
    import fcntl

    from nodekd_cli import interrupts

    folder = Path(folder)
    path = folder / name
    created, descriptor, held, retries = [], None, False, 10
    try:
        # Ctrl-C or SIGTERM while the lock is taken and its holder noted is raised once that is done, so that the
        # lock file is ours and goes; only a wait for another holder stops at once.
        with interrupts.deferred():
            while True:
                created += make_folders(folder)  # again after a wait: the holder may have removed the folder it made
                if name != LOCK:  # a result's lock, in a run folder's attacks/: a link there leads out of it
                    files.refuse_link(folder)
                files.refuse_link(path)
                try:
                    # O_NOFOLLOW: a link put in place since the check is not followed either (ELOOP, below).
                    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
                except OSError as error:
                    if error.errno == errno.ENOENT and not folder.exists() and retries:
                        # The holder we waited for removed the folder it had made, after it was found here and
                        # before the lock file was opened in it: make it again.
                        retries -= 1
                        continue
                    if error.errno == errno.ELOOP:
                        files.refuse_link(path)
                        raise UserError(
                            f"{path} is a symbolic link, and nodekd writes nothing through a link."
                        ) from None
                    raise file_error(error, folder) from None
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = _read_owner(path)
                    if wait is None:
                        raise RunLocked(folder, owner) from None
                    with interrupts.allowed():
                        wait(owner)
                        fcntl.flock(descriptor, fcntl.LOCK_EX)
                # The holder removes the file before it unlocks: keep this lock only if it is on the file there now.
                try:
                    held = os.path.samestat(os.fstat(descriptor), os.stat(path))
                except FileNotFoundError:
                    pass
                if held:
                    break
                os.close(descriptor)
                descriptor = None
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": _command_line(),
            }
            os.ftruncate(descriptor, 0)
            os.write(descriptor, (json.dumps(owner) + "\n").encode())
        yield
    finally:
        if held:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if descriptor is not None:
            os.close(descriptor)
        for made in reversed(created):
            try:
                made.rmdir()
            except OSError:
                break
