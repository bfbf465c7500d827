"""The one exception type that the CLI turns into a single clear error line."""


class DpbenchError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


class Unscorable(DpbenchError):
    """A task that cannot be scored with this data (a single class, no validation split): skipped, not fatal."""
