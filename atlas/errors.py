"""The one exception type a user sees: a message that names the fix."""


class AtlasError(Exception):
    """A problem the user can act on (bad input, missing column, busy port...).

    The CLI prints the message alone, without a traceback, and exits non-zero.
    """
