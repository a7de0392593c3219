"""The Docker Engine minimum for dev stacks, checked by `plan` when an engine answers (a warning).

Below Docker Engine 28 the host forwards traffic from its LAN to container addresses, so a
port published on 127.0.0.1 does not keep a dev database off the network: the container's
own address is reachable from the next machine on the LAN (moby/moby#45610, fixed in 28.0:
"direct routing" to containers blocked unless the network allows it). No engine answering
(plan is offline by design) is not a warning: nothing to check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Optional

MIN_ENGINE_MAJOR = 28


def engine_version(timeout_s: float = 3.0) -> Optional[str]:
    """The answering engine's version (`docker version`), or None when none answers."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        out = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and version else None


def engine_warning(version: Optional[str]) -> Optional[str]:
    """The warning for `version`, None when it is recent enough (or unknown)."""
    match = re.match(r"^(\d+)\.", version or "")
    if not match or int(match.group(1)) >= MIN_ENGINE_MAJOR:
        return None
    return (f"Docker Engine {version} is below {MIN_ENGINE_MAJOR}: it forwards LAN traffic to container addresses "
            f"(moby/moby#45610), so other machines on your network can reach the dev databases despite the "
            f"127.0.0.1 binding; upgrade Docker to {MIN_ENGINE_MAJOR} or later (docs/dev-stack.md)")
