"""Errors a user can fix: the CLI prints them and exits with their code, never a traceback."""


class UserError(Exception):
    """Bad input (exit 2) or a finding (exit 1), with a message that says what to do."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
