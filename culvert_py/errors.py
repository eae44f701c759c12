"""The one exception hierarchy every culvert_py failure belongs to.

Every error a user can cause is a :class:`CulvertError` subclass whose message says
what failed and where, on one line, so the CLI can print it without a traceback.
"""


class CulvertError(Exception):
    """Base class of every error raised by culvert_py."""


class ArgumentError(CulvertError, ValueError):
    """A public function or CLI command was called with a malformed argument.

    The one type every entry point raises for a bad argument (wrong type, shape or range,
    forged cursor, oversized key), checked at the door before anything is read or written.
    It is also a :class:`ValueError`, so callers that caught that keep working.
    """


class SchemaError(CulvertError):
    """A schema file or definition is invalid, or a change to an applied schema is refused."""


class EncodingError(CulvertError):
    """A value cannot be encoded for its column, or stored bytes cannot be decoded."""


class QueryError(CulvertError):
    """A query is malformed, names an unknown column, or compares incompatible types."""


class StoreError(CulvertError):
    """The store is unreachable, refused an operation, or lacks a needed capability."""


class TransientStoreError(StoreError):
    """A store failure that is worth retrying (connection reset, region moving, timeout)."""


class CapabilityError(StoreError):
    """The store cannot do an operation at all (e.g. no Thrift2 gateway for check-and-mutate)."""


class ConsistencyError(CulvertError):
    """An index and its primary table disagree in a way the library cannot repair by itself."""


class LoadError(CulvertError):
    """A batch load cannot proceed (unreadable input, unknown table)."""


class MissingDependencyError(CulvertError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
