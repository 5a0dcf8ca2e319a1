"""Read-only access to the storage of the servers Statesman replaces, for ``flask import-from``."""
