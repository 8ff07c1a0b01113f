"""The one exception type for user mistakes: the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """A problem with the user's input (bad name, missing file, no GPU): one line, exit 2."""

    exit_code = 2
