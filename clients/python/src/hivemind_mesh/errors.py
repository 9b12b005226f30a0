"""The exceptions every client raises.

A service reports a failure as ``{"error": {"code": ..., "message": ...}}`` with
an HTTP status (openapi/common.yaml); :class:`MeshError` carries all three, so
callers branch on ``error.code`` (``not_found``, ``no_group_found``,
``schema_mismatch``...) rather than on message text.
"""
from __future__ import annotations

from typing import Optional


class MeshError(Exception):
    """A service answered with an error, or could not be reached.

    Attributes:
        status: the HTTP status (None when no answer came: timeouts, refused connections).
        code: the service's stable error code, or ``unreachable`` / ``timeout`` /
            ``too_large`` / ``bad_response`` for failures on the client's side.
        message: what was wrong and what was expected, in the service's words.
        url: the URL that was called.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None, url: str = "") -> None:
        super().__init__(f"{code}: {message}" + (f" ({status} from {url})" if status else (f" ({url})" if url else "")))
        self.code = code
        self.message = message
        self.status = status
        self.url = url

    @property
    def retryable(self) -> bool:
        """True when another replica (or a later try) may succeed: no answer, or a 5xx."""
        return self.status is None or self.status >= 500
