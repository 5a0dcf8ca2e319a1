"""The environment Terraform runs in: built from nothing, never inherited.

The agent's own environment holds its token and maybe cloud credentials meant for the agent host; a run executes
arbitrary configuration (providers, ``local-exec``) on behalf of whoever may queue runs in the workspace, so it gets
only the locale, the search path and the agent's own Terraform and network settings, plus its workspace's
variables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

# The agent's settings a run needs to work at all: where programs are, the locale, and how Terraform finds its
# CLI configuration, plugin cache, trusted CAs and proxies. Nothing that authenticates the agent.
PASSED_THROUGH = (
    "PATH",
    "LANG",
    "TZ",
    "TF_CLI_CONFIG_FILE",
    "TF_PLUGIN_CACHE_DIR",
    "CHECKPOINT_DISABLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
# The run's state lives in the default workspace of the local backend the agent configures: selecting another one
# would make Terraform plan against (and write) a different, empty state.
IGNORED_VARIABLES = frozenset({"TF_WORKSPACE"})


def job_environment(own: Mapping[str, str], home: Path, variables: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Terraform's environment: the passed-through settings of ``own``, a private ``HOME``, automation mode, and
    the job's environment ``variables`` (which may override all but the ignored ones)."""
    environment = {name: own[name] for name in PASSED_THROUGH if name in own}
    environment.update({name: value for name, value in own.items() if name.startswith("LC_")})
    environment.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    environment.update({"HOME": str(home), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
    for key, value in variables:
        if key not in IGNORED_VARIABLES:
            environment[key] = value
    return environment
