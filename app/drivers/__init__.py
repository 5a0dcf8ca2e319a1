"""Storage, lock and encryption drivers: one Protocol per kind, one module per driver, one registry per kind."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from config import Config, ConfigError

if TYPE_CHECKING:
    from app.drivers.kms.base import KeyManager
    from app.drivers.locks.base import LockDriver
    from app.drivers.storage.base import StorageDriver


@dataclass(frozen=True)
class lazy:
    """A registry entry for ``"module:Class.factory"`` that imports the module only when the configuration chooses
    it: driver libraries (boto3, redis, hvac, psycopg2) are large, and a server carries only the ones it uses."""

    target: str

    def factory(self) -> Callable[[Config], Any]:
        """The factory ``target`` names, its module imported now."""
        module, _, attribute = self.target.partition(":")
        found: Any = importlib.import_module(module)
        for name in attribute.split("."):
            found = getattr(found, name)
        return found

    def __call__(self, config: Config) -> Any:
        return self.factory()(config)


def build_from_registry(
    kind: str, setting: str, name: str, registry: Mapping[str, Callable[[Config], Any]], config: Config
) -> Any:
    """Build the driver ``name`` of ``kind``; an unknown name fails fast, listing the valid ones."""
    try:
        factory = registry[name]
    except KeyError:
        raise ConfigError(f"{setting}={name!r}: unknown {kind} driver; expected one of {', '.join(registry)}") from None
    return factory(config)


@dataclass(frozen=True)
class Drivers:
    """The drivers one app instance uses, built once from ``Config``."""

    storage: StorageDriver
    locks: LockDriver
    kms: KeyManager

    @classmethod
    def from_config(cls, config: Config) -> Drivers:
        from app.drivers.instrumented import instrument
        from app.drivers.kms import build_key_manager
        from app.drivers.locks import build_lock_driver
        from app.drivers.storage import build_storage

        return cls(
            storage=instrument("storage", build_storage(config)),
            locks=instrument("locks", build_lock_driver(config)),
            kms=instrument("kms", build_key_manager(config)),
        )

    def close(self) -> None:
        """Release connections and pools (worker shutdown, tests)."""
        for driver in (self.storage, self.locks, self.kms):
            close = getattr(driver, "close", None)
            if close:
                close()
