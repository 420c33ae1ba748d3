"""The one exception a user's mistake raises, and how commands turn it into a message and an exit code."""

import functools


class UserError(Exception):
    """A problem the user can fix (a wrong name, a missing file, missing data); its message says how."""


def friendly_errors(command):
    """Wraps a Typer command: a `UserError` prints its one sentence to stderr and exits with status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import typer

        from nodekd_cli import output

        try:
            return command(*args, **kwargs)
        except UserError as error:
            output.error(str(error))
            raise typer.Exit(1) from None

    return wrapper
