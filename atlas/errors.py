"""The one exception type a user sees: a message that names the fix."""


class AtlasError(Exception):
    """A problem the user can act on (bad input, missing column, busy port...).

    The CLI prints the message alone, without a traceback, and exits non-zero.
    """


class MapChanged(AtlasError):
    """The map directory was rebuilt after a reader (a server, a curation) loaded it: its
    tables in memory no longer match the files on disk. The server answers 409."""
