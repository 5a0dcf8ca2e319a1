"""What the run tests share: a guard with chosen permissions and configuration archives as Terraform uploads them."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field

from app.core import policy
from app.core.errors import Forbidden
from app.models import Workspace

MAIN_TF = b'resource "null_resource" "a" {}\n'


@dataclass
class Guard:
    """A caller allowed exactly ``allowed`` on the workspace (read, write and lock by default: every run action)."""

    workspace: Workspace
    actor: str = "alice"
    allowed: set[str] = field(default_factory=lambda: {policy.READ, policy.WRITE, policy.LOCK})

    def allows(self, action: str) -> bool:
        return action in self.allowed

    def require(self, action: str) -> None:
        if action not in self.allowed:
            raise Forbidden(f"{action} refused")


def tarball(files: dict[str, str | bytes] | None = None) -> bytes:
    """A ``.tar.gz`` of a configuration (``main.tf`` with one null resource by default)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (files or {"main.tf": MAIN_TF}).items():
            content = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
