"""The one exception a user's mistake raises, and the exit statuses the commands give.

Exit statuses: 0 success; 1 a mistake or a fault the user can fix (one sentence on stderr); 2 a usage error that
the command line parser finds (an unknown option, a value of the wrong type: one sentence on stderr, see
`nodekd_cli.app`); 130 interrupted (Ctrl-C or SIGTERM), after saying what was kept. The commands turn errors into
these (`nodekd_cli.commands._common.friendly_errors`); library code only raises.
"""


class UserError(Exception):
    """A problem the user can fix (a wrong name, a missing file, missing data); its message says how."""
