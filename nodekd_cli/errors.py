"""The one exception a user's mistake raises, and the exit statuses the commands give.

Exit statuses: 0 success; 1 a mistake or a fault the user can fix (one sentence on stderr); 2 a usage error that
the command line parser finds (an unknown option, a value of the wrong type: one sentence on stderr, see
`nodekd_cli.app`); 130 interrupted (Ctrl-C or SIGTERM), after saying what was kept. The commands turn errors into
these (`nodekd_cli.commands._common.friendly_errors`); library code only raises.
"""

import errno
from pathlib import Path

A_FILE = "a file stands where a folder belongs; move it, or choose another place"


class UserError(Exception):
    """A problem the user can fix (a wrong name, a missing file, missing data); its message says how."""


class RunConflict(UserError):
    """A run folder that cannot take the run asked for: `fact` says why, `advice` what to do, in the words of the
    commands by default; the study gives its own (`study.execute`)."""

    def __init__(self, folder, fact, advice="pass --out DIR to start a new run elsewhere"):
        self.folder, self.fact, self.advice = Path(folder), fact, advice
        super().__init__(f"{fact}; {advice}.")


def file_error(error, path=None, action="write"):
    """A file-system error (read-only folder, a file where a folder belongs, a full disk) as one sentence about
    `path` (default: the file the error names)."""
    path = error.filename if path is None else path
    if path is None:  # an error that names no file (a library's own): the sentence stays about what failed
        return UserError(f"Cannot {action} a file: {(error.strerror or str(error) or type(error).__name__)}.")
    if isinstance(error, (FileExistsError, NotADirectoryError)) or error.errno in (errno.EEXIST, errno.ENOTDIR):
        return UserError(f"Cannot {action} {path}: {A_FILE}.")
    reason = error.strerror or type(error).__name__
    return UserError(f"Cannot {action} {path}: {reason[0].lower()}{reason[1:]}.")
