"""What a workspace rule asks of the caller: the guard the access layer hands the repositories.

The access layer (``app.auth.access.Target``) resolves the request once and implements this; the rules that depend
on a permission (a forced write needs delete permission, outputs-only callers see outputs only) ask it here, in the
repository, so no API can forget them.
"""

from __future__ import annotations

from typing import Protocol

from app.models import Workspace


class WorkspaceGuard(Protocol):
    """The caller's permissions on one workspace, answered from memory."""

    @property
    def workspace(self) -> Workspace:
        """The workspace the request resolved to."""
        ...

    @property
    def actor(self) -> str:
        """The subject audit events record."""
        ...

    def allows(self, action: str) -> bool:
        """Whether the caller may do ``action`` on the workspace."""
        ...

    def require(self, action: str) -> None:
        """Raise ``Forbidden`` with the reason when the caller may not do ``action``."""
        ...
