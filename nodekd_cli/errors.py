"""The one exception a user's mistake raises, and how commands turn it into a message and an exit code.

Exit statuses: 0 success; 1 a mistake or a fault the user can fix (one sentence on stderr); 2 a usage error that
the command line parser finds (an unknown option, a value of the wrong type: one sentence on stderr, see
`nodekd_cli.app`); 130 interrupted (Ctrl-C or SIGTERM), after saying what was kept.
"""

import functools


class UserError(Exception):
    """A problem the user can fix (a wrong name, a missing file, missing data); its message says how."""


def friendly_errors(command):
    """Wraps a Typer command: a `UserError` or a file-system error prints one sentence to stderr and exits with
    status 1; an interruption says so and exits with 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import typer

        from nodekd_cli import output

        try:
            return command(*args, **kwargs)
        except UserError as error:
            output.error(str(error))
            raise typer.Exit(1) from None
        except OSError as error:  # a file system the user can fix: read-only, full, a file where a folder belongs
            from nodekd_cli.runs import file_error

            output.error(str(file_error(error, action="use")))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            output.error("Interrupted; every finished result is saved.")
            raise typer.Exit(130) from None

    return wrapper
