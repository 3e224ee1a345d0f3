"""The one exception type users see.

A ProtegeError carries a message a person can act on. It is raised where the problem is
detected and rendered once: as one line at the CLI edge, as OpenAI-shaped JSON at the HTTP edge.
"""


class ProtegeError(Exception):
    """A problem the user can fix; its message says what and, where possible, how."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"
