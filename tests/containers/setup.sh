#!/usr/bin/env bash
# Idempotent set-up of a Podman engine that the real Docker Compose v2 binary can drive
# (no Docker engine runs on these machines; see docs/testing.md).
# Prints `export DOCKER_HOST=...` on success. Needs root.
set -euo pipefail

STATE=${AML_CONTAINERS_STATE:-/var/tmp/aml-miner-containers}
SOCK="$STATE/podman.sock"
BASE_TAG=python:3.11-slim-bookworm
REDIS_TAG=redis:7.2-bookworm
log() { echo "[containers] $*" >&2; }

# The long-lived helpers (the API service and the healthcheck loop) keep the working folder
# they start in, and conmon, started by the service for every container, needs it: a service
# started from a clone that is deleted later fails every container start after that
# ("write child: broken pipe"; conmon: "Failed to get working directory"). So they start here.
enter_state_dir() {
  mkdir -p "$STATE"
  cd "$STATE"
}

# True when process $1 runs in a folder that has been deleted since it started.
cwd_gone() {
  local cwd
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
  [[ "$cwd" == *" (deleted)" || ! -d "$cwd" ]]
}

# True when the process recorded in pid file $1 is alive.
recorded_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
  command -v podman >/dev/null && command -v debootstrap >/dev/null && command -v runc >/dev/null && return
  log "installing podman, runc, debootstrap (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman uidmap slirp4netns fuse-overlayfs runc debootstrap >/dev/null
}

configure_engine() {
  # crun refuses this kernel's mixed cgroup layout; hard limits cannot be raised by the engine.
  local nofile nproc
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nproc" = unlimited ] && nproc=32768
  [ "$nproc" -gt 32768 ] && nproc=32768
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
CONF
}

# A reused service must do what the tests need from it: answer, and start a container.
service_healthy() {
  curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 || return 1
  if recorded_alive "$STATE/podman-service.pid" && cwd_gone "$(cat "$STATE/podman-service.pid")"; then
    log "the podman API service runs in a deleted folder"; return 1
  fi
  podman --remote --url "unix://$SOCK" run --rm --network none "$BASE_TAG" true \
    >"$STATE/probe.log" 2>&1 || { log "the podman API service cannot start a container: $(tail -1 "$STATE/probe.log")"; return 1; }
}

stop_recorded() {  # $1: pid file of a helper this script started earlier
  recorded_alive "$1" || return 0
  local pid; pid=$(cat "$1")
  log "stopping the helper this script started earlier (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

start_socket() {
  if service_healthy; then return; fi
  stop_recorded "$STATE/podman-service.pid"
  if curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
    log "an unhealthy podman API service that this script did not start answers at $SOCK; stop it, then run again"
    exit 1
  fi
  log "starting the podman API socket at $SOCK (working folder $STATE)"
  rm -f "$SOCK"
  nohup podman system service --time=0 "unix://$SOCK" >"$STATE/podman-service.log" 2>&1 &
  echo $! > "$STATE/podman-service.pid"
  for _ in $(seq 100); do
    curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  service_healthy || { log "the new podman API service is not healthy (see $STATE/podman-service.log)"; exit 1; }
}

build_base() {
  podman image exists "$BASE_TAG" && return
  local rootfs="$STATE/rootfs" mirror
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  log "building a local $BASE_TAG stand-in with debootstrap from $mirror (about a minute)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,curl \
    bookworm "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1
  # The machine's extra CA certificates: pip and apt reach their registries through them.
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
  cp -r /etc/apt/sources.list.d/. "$rootfs/etc/apt/sources.list.d/"
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"
  tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$BASE_TAG" >/dev/null
  podman tag "$BASE_TAG" "docker.io/library/$BASE_TAG"
  rm -rf "$rootfs"
}

build_redis() {
  podman image exists "$REDIS_TAG" && return
  log "building a local $REDIS_TAG stand-in from Debian's redis-server"
  local ctx="$STATE/redis-ctx"
  mkdir -p "$ctx"
  cat > "$ctx/Containerfile" <<'CF'
FROM python:3.11-slim-bookworm
# redis-server and redis-cli: the stand-in for the official redis image, which cannot be pulled here
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
CF
  podman build --format docker -t "$REDIS_TAG" "$ctx" >"$STATE/redis-build.log" 2>&1
  podman tag "$REDIS_TAG" "docker.io/library/$REDIS_TAG"
}

start_healthcheck_loop() {
  # Podman runs healthchecks from systemd timers; there is no systemd here, so run them ourselves.
  local pidfile="$STATE/healthloop.pid"
  if recorded_alive "$pidfile" && ! cwd_gone "$(cat "$pidfile")"; then return; fi
  stop_recorded "$pidfile"
  nohup bash -c 'while true; do
      for id in $(podman ps -q --filter health=starting --filter health=healthy --filter health=unhealthy 2>/dev/null); do
        podman healthcheck run "$id" >/dev/null 2>&1 || true
      done; sleep 2; done' >/dev/null 2>&1 &
  echo $! > "$pidfile"
}

main() {
  enter_state_dir
  install_packages
  configure_engine
  build_base
  build_redis
  start_socket
  start_healthcheck_loop
  echo "export DOCKER_HOST=unix://$SOCK DOCKER_BUILDKIT=0"
}

# Sourced by the tests for its functions; run as a script, it sets the engine up.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main
fi
