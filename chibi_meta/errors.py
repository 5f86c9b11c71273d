"""The one exception tree of chibi_meta.

Every error a user can cause derives from :class:`ChibiError`. The CLI prints
``error: <message>`` and exits with :attr:`ChibiError.exit_code` (2 for bad input).
The bridge maps each class to a stable protocol error ``code``.

    ChibiError
    ├── UsageError                 bad option / argument value            (bad_request)
    │   ├── AttributeNameError     unknown attribute name                 (unknown_attribute)
    │   ├── AttributeValueError    unknown or ill-typed attribute value   (invalid_value)
    │   └── LimitExceeded          a documented limit was crossed         (too_large)
    ├── DataError                  an empty/corrupt dataset or labels file
    ├── ModelError                 a missing, corrupt or unsafe checkpoint
    ├── MeshError                  an unusable base mesh (untrusted glTF input)
    ├── ExportError                an output location that cannot be written
    ├── MissingDependency          an optional dependency is not installed (says how to fix)
    └── BridgeError                protocol-level failures
        ├── ProtocolError          a malformed message                    (bad_request)
        ├── Unauthorized           missing or wrong token                 (unauthorized)
        └── Busy                   the generation queue is full           (busy)
"""

from __future__ import annotations


class ChibiError(Exception):
    """Base class of every error chibi_meta raises on purpose."""

    exit_code = 2
    code = "internal"


class UsageError(ChibiError):
    """An option or argument has a value that is not allowed."""

    code = "bad_request"


class AttributeNameError(UsageError):
    """An attribute name is not one the model knows."""

    code = "unknown_attribute"


class AttributeValueError(UsageError):
    """An attribute value is unknown for its attribute, or has the wrong type."""

    code = "invalid_value"


class LimitExceeded(UsageError):
    """A documented limit (see chibi_meta.limits) was exceeded."""

    code = "too_large"


class DataError(ChibiError):
    """A dataset or labels file is empty, corrupt or inconsistent."""

    code = "bad_request"


class ModelError(ChibiError):
    """A model file is missing, corrupt, pickled or does not match the code."""

    code = "internal"


class TextureError(UsageError):
    """A texture that cannot become an avatar (its alpha is empty, the wrong shape, ...)."""

    code = "invalid_value"


class MeshError(ChibiError):
    """A base mesh cannot be used (no skin, no bones, no face UVs, external URIs...)."""

    code = "bad_request"


class ExportError(ChibiError):
    """An output location cannot be written."""

    code = "internal"


class MissingDependency(ChibiError):
    """An optional dependency is needed for this feature; the message says how to install it."""

    code = "internal"


class BridgeError(ChibiError):
    """Base class of websocket bridge errors."""


class ProtocolError(BridgeError):
    """A message does not follow protocol v1."""

    code = "bad_request"


class Unauthorized(BridgeError):
    """The token is missing or wrong."""

    code = "unauthorized"


class Busy(BridgeError):
    """The generation queue is full; retry later."""

    code = "busy"
