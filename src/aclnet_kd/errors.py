"""User-facing errors: bad files, params or checkpoints.

The CLI turns an :class:`AclnetError` into a one-paragraph message on stderr and a non-zero exit,
without a traceback. Raise it with a message that names the file or key and says what is wrong.
"""


class AclnetError(Exception):
    """An error caused by the user's input (a file, a params key, a checkpoint), not by a bug."""
