"""Benchmark of the result API against nginx serving the identical bytes, on 127.0.0.1 only.

Publishes a synthetic date of --alerts alerts (bodies rendered as the processor does),
starts `aml-miner serve-api` (real gunicorn), nginx (static files, gzip_static) and the
Python floor (bare_file_server.py: a threaded Python server that only sends the files),
checks all serve the same bytes, then drives them with wrk and prints each figure
against the issue's goal:

  each worker's RSS after serving every list endpoint in full, plain and gzip   <= 250 MB
  full-date requests/s, API / nginx          goal >= 1.0 (gzip and identity, same headers)
                       (with, for context, Python floor / nginx and API / Python floor)
  /metadata/{date} p50 at 16 connections     goal <= 5 ms
  first request of 3 dates published while the API runs: no slower than the next ones
                       (median of the firsts <= upper quartile of the others)
  64 connections for --soak-seconds (mixed)  goal 0 errors

With --networks N (N >= 2) it measures instead what serving N networks costs per request
against serving one: the same date under one network's OUTPUT_DIR and under each of N
networks' OUTPUT_DIR/{network}/ (hard links, so the bytes are equal), the N-network API
asked with `?network=` of its last network. Goal: N networks / one >= 0.95 in requests per
CPU-second of the WSGI app in-process (`/metadata` and the full date, best of interleaved
runs); then, for context, interleaved wrk rounds against two gunicorn APIs with the spread
of their per-round ratios (on a shared host wider than the difference, so not judged).

Needs `wrk` and `nginx` (apt-get install -y nginx wrk). Exit status 1 when a goal is missed.
Run: python bench/bench_api.py [--alerts 1000000] [--duration 4] [--rounds 7] [--soak-seconds 30]
     python bench/bench_api.py --networks 2 [--alerts 100000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.api_fixtures import publish_date  # noqa: E402

DATE = "2025-10-26"
FRESH = ("2025-10-27", "2025-10-28", "2025-10-29")  # published while the API runs
LISTS = ("/scores/alerts/", "/rankings/alerts/", "/scores/clusters/")
GOAL_RATIO = 1.0
GOAL_NETWORKS = 0.95
GOAL_RSS_MB = 250
FULL = f"/scores/alerts/{DATE}"
META = f"/metadata/{DATE}"
GZIP = {"Accept-Encoding": "gzip"}
SOAK_PATHS = [FULL, f"/rankings/alerts/{DATE}", f"/scores/clusters/{DATE}", META,
              "/scores/alerts/latest?offset=500&limit=100", "/rankings/alerts/latest?limit=1000",
              "/dates", "/health"]

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
user root;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    {io}
    keepalive_timeout 5s;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        gzip_static on;
    }}
}}
"""

SOAK_LUA = """
local paths = {{{paths}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], {{["Accept-Encoding"] = "gzip"}})
end
"""


@dataclass
class WrkResult:
    """The figures of one wrk run."""

    requests_per_s: float
    p50_ms: float
    requests: int
    socket_errors: int
    bad_status: int

    @property
    def errors(self) -> int:
        return self.socket_errors + self.bad_status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_until_up(port: int, path: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: server on port {port} exited with {proc.returncode}")
        try:
            if fetch(port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench: server on port {port} did not answer {path} within {deadline_s} s")


def start_api(output: Path, tmp: Path, workers: int, threads: int,
              networks: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    """`serve-api` over output: this environment's network(s), or NETWORKS=networks when given."""
    port = free_port()
    env = {**os.environ, "OUTPUT_DIR": str(output), "API_WORKERS": str(workers),
           "API_THREADS": str(threads), "LOG_LEVEL": "WARNING"}
    if networks:
        env.pop("NETWORK", None)
        env["NETWORKS"] = ",".join(networks)
    log = open(tmp / f"api-{len(networks) or 1}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve-api", "--host",
                             "127.0.0.1", "--port", str(port)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    wait_until_up(port, "/health", proc)
    return proc, port


# Two ways nginx sends a static file; which is faster depends on the machine (on this
# loopback, buffered reads often beat sendfile), so the API is compared with the faster.
NGINX_IO = {"sendfile": "sendfile on; tcp_nopush on;", "buffered": "sendfile off; output_buffers 2 1m;"}


def write_static(api_port: int, root: Path) -> None:
    """The exact bytes the API sends (plain and .gz), at the same URLs."""
    for path in (FULL, META):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fetch(api_port, path)[2])
        target.with_name(target.name + ".gz").write_bytes(fetch(api_port, path, GZIP)[2])


def start_nginx(tmp: Path, root: Path, workers: int, name: str) -> tuple[subprocess.Popen, int]:
    """nginx with gzip_static over root, sending files the `name` way of NGINX_IO."""
    port = free_port()
    home = tmp / f"nginx-{name}"
    home.mkdir()
    conf = home / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, tmp=home, port=port, root=root,
                                      io=NGINX_IO[name]))
    proc = subprocess.Popen(["nginx", "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_until_up(port, FULL, proc)
    return proc, port


def start_floor(root: Path, processes: int) -> tuple[subprocess.Popen, int]:
    """bare_file_server.py over root (its own process group: it forks)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "bare_file_server.py"), str(port),
                             str(root), "--processes", str(processes)], start_new_session=True)
    wait_until_up(port, FULL, proc)
    return proc, port


def check_same_bytes(api_port: int, other_port: int) -> None:
    """Both servers send the identical bytes and encoding for each path and header set."""
    for path in (FULL, META):
        for headers in ({}, GZIP):
            a, b = fetch(api_port, path, headers), fetch(other_port, path, headers)
            if a[2] != b[2] or a[1].get("Content-Encoding") != b[1].get("Content-Encoding"):
                sys.exit(f"bench: the API and the server on port {other_port} differ on {path} {headers}")


def wrk(port: int, path: str, connections: int, seconds: float, headers: dict | None = None,
        script: Path | None = None) -> WrkResult:
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s", "--latency",
            "--timeout", "10s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p50.group(2)]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(rps, float(p50.group(1)) * scale, total,
                     sum(int(g) for g in sock.groups()) if sock else 0, int(bad.group(1)) if bad else 0)


@dataclass
class Ratio:
    """Per-round ratios of two servers' requests/s: median and spread."""

    rounds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    def __str__(self) -> str:
        return f"{self.median:.2f} (rounds {min(self.rounds):.2f}-{max(self.rounds):.2f})"


def interleaved(args, ports: dict[str, int], path: str, headers: dict) -> dict[str, list[float]]:
    """Each server's requests/s per round, every round running all servers back to back
    (interleaved because this machine's speed drifts over seconds)."""
    rps = {name: [] for name in ports}
    for _ in range(args.rounds):
        for name, port in ports.items():
            run = wrk(port, path, args.connections, args.duration, headers)
            if run.errors:
                sys.exit(f"bench: errors during {name}'s {path} run")
            rps[name].append(run.requests_per_s)
    return rps


def ratio(rps: dict[str, list[float]], top: str, bottom: str) -> Ratio:
    return Ratio([a / b for a, b in zip(rps[top], rps[bottom])])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(args) -> int:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is not installed (apt-get install -y nginx wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="aml-bench-api-"))
    started = time.perf_counter()
    publish_date(tmp / "output", DATE, alerts=args.alerts, clusters=args.alerts // 10, seed=1)
    print(f"published {args.alerts} alerts in {time.perf_counter() - started:.1f} s")
    api, api_port = start_api(tmp / "output", tmp, args.workers, args.threads)
    procs = [api]
    try:
        ok = serve_every_list(api, api_port, args.workers)
        write_static(api_port, tmp / "static")
        nginx_ports = {}
        for name in NGINX_IO:
            proc, nginx_ports[name] = start_nginx(tmp, tmp / "static", args.workers, name)
            procs.append(proc)
            check_same_bytes(api_port, nginx_ports[name])
        floor, floor_port = start_floor(tmp / "static", args.workers)
        procs.append(floor)
        check_same_bytes(api_port, floor_port)
        ok &= measure(args, tmp, api_port, nginx_ports, floor_port)
        ok &= first_request(args, tmp / "output", api_port)
        ok &= worker_rss(api, "at the end") <= GOAL_RSS_MB
        return 0 if ok else 1
    finally:
        stop(api, procs)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def stop(api: subprocess.Popen, procs: list[subprocess.Popen]) -> None:
    """SIGTERM to the API, SIGQUIT to nginx, and the Python floor's whole process group."""
    for proc in procs:
        if proc.poll() is None:
            if proc is api:
                proc.send_signal(signal.SIGTERM)
            elif os.getpgid(proc.pid) == proc.pid:  # the floor leads its own group
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGQUIT)
            proc.wait(timeout=30)


def worker_rss(api: subprocess.Popen, when: str) -> float:
    """The largest RSS (MB) among the gunicorn workers, printed with each one's."""
    workers = psutil.Process(api.pid).children()
    rss = [w.memory_info().rss / 1e6 for w in workers]
    print(f"worker RSS {when}: {', '.join(f'{r:.0f}' for r in rss)} MB "
          f"(goal <= {GOAL_RSS_MB}) {verdict(max(rss) <= GOAL_RSS_MB)}")
    return max(rss)


def serve_every_list(api: subprocess.Popen, port: int, workers: int) -> bool:
    """Every list endpoint in full, plain and gzip, enough times for each worker to serve it."""
    for _ in range(4 * workers):
        for path in LISTS:
            for headers in ({}, GZIP):
                if fetch(port, path + DATE, headers)[0] != 200:
                    sys.exit(f"bench: {path}{DATE} did not answer 200")
    return worker_rss(api, "after serving every list endpoint in full") <= GOAL_RSS_MB


def first_request(args, output: Path, port: int, later: int = 5) -> bool:
    """The first full request of each of FRESH dates published while the API runs, against
    the next `later` requests of the same date.

    Each date's first request follows one request of the date already served: the first
    request after the idle spell of publishing is slower for any date (cold caches and
    sleeping threads), which is the host's cost, not a new date's. One transfer's time
    spreads as much as any remaining difference (two medians are a coin toss), so "no
    slower" is judged at the resolution the others give: the median of the firsts is at
    most the upper quartile of the others. Rendering a date on its first request would cost
    hundreds of ms, far beyond it.
    """
    path, firsts, others = "", [], []
    for seed, date in enumerate(FRESH, start=2):
        publish_date(output, date, alerts=args.alerts, clusters=args.alerts // 10, seed=seed)
        path = f"/rankings/alerts/{date}"
        fetch(port, f"/rankings/alerts/{DATE}", GZIP)  # wakes the server after the idle publish
        for i in range(1 + later):
            started = time.perf_counter()
            status, _, body = fetch(port, path, GZIP)
            (others if i else firsts).append(time.perf_counter() - started)
            if status != 200:
                sys.exit(f"bench: {path} answered {status}")
    first = statistics.median(firsts)
    low, middle, high = statistics.quantiles(others, n=4)
    ok = first <= high
    print(f"first request of {len(FRESH)} freshly published dates (/rankings/alerts/, gzip, "
          f"{len(body) / 1e6:.1f} MB): median {first * 1e3:.0f} ms "
          f"({', '.join(f'{t * 1e3:.0f}' for t in firsts)}); the next {later} of each: median "
          f"{middle * 1e3:.0f} ms, quartiles {low * 1e3:.0f}-{high * 1e3:.0f} ms -> {verdict(ok)} "
          f"(no slower: median of the firsts <= upper quartile of the others)")
    return ok


def throughput(args, label: str, headers: dict, api_port: int, nginx_ports: dict,
               floor_port: int) -> bool:
    """Full-date requests/s of the API against the faster nginx mode (by median: the
    per-round maximum would be inflated by noise alone), and the Python floor's for context."""
    ports = {"API": api_port, **{f"nginx {name}": port for name, port in nginx_ports.items()},
             "Python floor": floor_port}
    rps = interleaved(args, ports, FULL, headers)
    nginx = max((name for name in ports if name.startswith("nginx")),
                key=lambda name: statistics.median(rps[name]))
    api = ratio(rps, "API", nginx)
    ok = api.median >= GOAL_RATIO
    medians = ", ".join(f"{name} {statistics.median(v):.1f}" for name, v in rps.items())
    print(f"full date ({label}), {args.connections} conns, medians of {args.rounds} rounds: {medians} "
          f"req/s -> API / {nginx} {api}; goal >= {GOAL_RATIO:.2f} {verdict(ok)}")
    print(f"  context: Python floor / {nginx} {ratio(rps, 'Python floor', nginx)}, "
          f"API / Python floor {ratio(rps, 'API', 'Python floor')}")
    return ok


def measure(args, tmp: Path, api_port: int, nginx_ports: dict, floor_port: int) -> bool:
    size = len(fetch(api_port, FULL)[2])
    size_gz = len(fetch(api_port, FULL, GZIP)[2])
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"full date: {size / 1e6:.1f} MB JSON, {size_gz / 1e6:.1f} MB gzip; {args.workers} gunicorn "
          f"workers x {args.threads} threads vs {args.workers} nginx workers vs {args.workers} "
          f"Python floor processes; wrk 2 threads")
    ok = all([throughput(args, label, headers, api_port, nginx_ports, floor_port)
              for label, headers in (("gzip", GZIP), ("identity", {}))])
    runs = [(wrk(api_port, META, 16, args.duration, GZIP),
             wrk(nginx_ports["sendfile"], META, 16, args.duration, GZIP)) for _ in range(args.rounds)]
    p50 = statistics.median(a.p50_ms for a, _ in runs)
    rps = statistics.median(a.requests_per_s for a, _ in runs)
    nginx_p50 = statistics.median(n.p50_ms for _, n in runs)
    ok &= p50 <= 5.0 and not any(a.errors for a, _ in runs)
    print(f"/metadata p50, 16 conns, median of {args.rounds} runs: API {p50:.2f} ms ({rps:.0f} req/s), "
          f"nginx {nginx_p50:.2f} ms -> {p50 / 5.0:.2f} of the 5 ms limit {verdict(p50 <= 5.0)}")
    script = tmp / "soak.lua"
    script.write_text(SOAK_LUA.format(paths=", ".join(f'"{p}"' for p in SOAK_PATHS)))
    s = wrk(api_port, "/", 64, args.soak_seconds, script=script)
    ok &= s.errors == 0 and s.requests > 0
    print(f"soak, 64 conns, {args.soak_seconds:g} s, {len(SOAK_PATHS)} endpoints: {s.requests} requests, "
          f"{s.socket_errors} socket errors, {s.bad_status} non-2xx/3xx -> {verdict(s.errors == 0)}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return ok


def run_networks(args) -> int:
    """One network against args.networks networks serving the same bytes; ratios per request."""
    tmp = Path(tempfile.mkdtemp(prefix="aml-bench-networks-"))
    names = ("bitcoin", *(f"net{i}" for i in range(2, args.networks + 1)))
    publish_date(tmp / "one", DATE, alerts=args.alerts, clusters=args.alerts // 10, seed=1)
    for name in names:  # the same version folder, hard-linked into each network's root
        shutil.copytree(tmp / "one", tmp / "several" / name, symlinks=True, copy_function=os.link)
    one, one_port = start_api(tmp / "one", tmp, args.workers, args.threads)
    several, several_port = start_api(tmp / "several", tmp, args.workers, args.threads, names)
    asked = f"?network={names[-1]}"
    try:
        for path in (FULL, META):
            if fetch(one_port, path, GZIP)[2] != fetch(several_port, path + asked, GZIP)[2]:
                sys.exit(f"bench: the two APIs differ on {path}")
        ok = in_process(tmp, names, asked)
        compare_networks(args, one_port, several_port, asked)
        return 0 if ok else 1
    finally:
        for proc in (one, several):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def wsgi_environ(app, path: str) -> dict:
    """The environ of a gzip GET of path, checked to answer 200 in-process."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, headers=GZIP).get_environ()
    seen = []
    app(dict(environ), lambda status, headers, exc_info=None: seen.append(status)).close()
    if not seen[0].startswith("200"):
        sys.exit(f"bench: {path} answered {seen[0]} in-process")
    return environ


def wsgi_us(cases: dict, repeats: int = 9, calls: int = 1000) -> dict[str, float]:
    """Best-of-repeats microseconds per WSGI call of each (app, path) case, run interleaved
    (each answer's file is opened and closed, not sent)."""
    environs = {label: (app, wsgi_environ(app, path)) for label, (app, path) in cases.items()}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for label, (app, environ) in environs.items():
            started = time.perf_counter()
            for _ in range(calls):
                app(dict(environ), lambda status, headers, exc_info=None: None).close()
            best[label] = min(best[label], (time.perf_counter() - started) / calls * 1e6)
    return best


def in_process(tmp: Path, names: tuple[str, ...], asked: str) -> bool:
    """The API's own cost per request without gunicorn or the network: best of several runs,
    which load on the host moves far less than wrk's throughput."""
    from services.api.app import create_app
    from shared.settings import Settings

    one = create_app(Settings.from_env({}).replace(OUTPUT_DIR=tmp / "one"))
    several = create_app(Settings.from_env({"NETWORKS": ",".join(names)}).replace(
        OUTPUT_DIR=tmp / "several"))
    ok = True
    for label, path in (("/metadata", META), ("full date", FULL)):
        us = wsgi_us({"one": (one, path), "one ?network=": (one, path + "?network=bitcoin"),
                      "several": (several, path + asked)})
        ratio = us["one"] / us["several"]
        ok &= ratio >= GOAL_NETWORKS
        print(f"in-process {label} (gzip, best of 9 x 1000 calls): "
              f"{', '.join(f'{k} {v:.1f} us' for k, v in us.items())} -> {len(names)} networks / "
              f"one: requests per CPU-second {ratio:.2f} (goal >= {GOAL_NETWORKS}) "
              f"{verdict(ratio >= GOAL_NETWORKS)}")
    return ok


def compare_networks(args, one_port: int, several_port: int, asked: str) -> None:
    """Interleaved wrk rounds: one network (no query, and `?network=` of it) against several.

    Printed for context, not judged: on a shared host a round's ratio moves by more than
    the difference measured (the spread is printed with it); in_process() is the verdict.
    """
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{args.workers} gunicorn workers x {args.threads} threads each; {args.alerts} alerts")
    runs = {"one": (one_port, ""), "one ?network=": (one_port, "?network=bitcoin"),
            "several": (several_port, asked)}
    figures = {label: {"meta": [], "full": []} for label in runs}
    for round_no in range(args.rounds):
        order = list(runs) if round_no % 2 == 0 else list(reversed(runs))  # drift hits both
        for label in order:
            port, query = runs[label]
            meta = wrk(port, META + query, 16, args.duration, GZIP)
            full = wrk(port, FULL + query, args.connections, args.duration, GZIP)
            if meta.errors or full.errors:
                sys.exit(f"bench: errors during the {label} run")
            figures[label]["meta"].append(meta)
            figures[label]["full"].append(full)
    for kind, what in (("meta", "/metadata, 16 conns"),
                       ("full", f"full date gzip, {args.connections} conns")):
        one, several = figures["one"][kind], figures["several"][kind]
        ratios = sorted(s.requests_per_s / o.requests_per_s for s, o in zip(several, one))
        p50 = statistics.median(s.p50_ms / o.p50_ms for s, o in zip(several, one))
        by_label = ", ".join(f"{label} {statistics.median(r.requests_per_s for r in f[kind]):.0f} req/s "
                             f"p50 {statistics.median(r.p50_ms for r in f[kind]):.2f} ms"
                             for label, f in figures.items())
        print(f"gunicorn {what}, medians of {args.rounds} rounds: {by_label} -> {args.networks} "
              f"networks / one: req/s {statistics.median(ratios):.2f} (rounds {ratios[0]:.2f}-"
              f"{ratios[-1]:.2f}), p50 {p50:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=4, help="seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved API/nginx rounds")
    parser.add_argument("--soak-seconds", type=float, default=30, help="the 64-connection run")
    parser.add_argument("--connections", type=int, default=8, help="for the full-date runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--networks", type=int, default=1,
                        help="N >= 2: compare serving N networks with serving one instead")
    args = parser.parse_args(argv)
    if args.networks >= 2:
        return run_networks(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
