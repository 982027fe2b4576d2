"""tests/containers/setup.sh's health checks of the helpers it reuses (sourced, not run)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

SETUP = REPO / "tests" / "containers" / "setup.sh"


def _call(function: str, *args: str, state=None) -> int:
    env = {"PATH": "/usr/bin:/bin"} | ({"AML_CONTAINERS_STATE": str(state)} if state else {})
    script = f'source "{SETUP}"; {function} "$@"'
    return subprocess.run(["bash", "-c", script, "setup", *args], env=env,
                          capture_output=True, timeout=30).returncode


@pytest.fixture
def sleeper():
    """Start `sleep` in a given folder; every process started is ended at the end."""
    started = []

    def start(folder):
        proc = subprocess.Popen(["sleep", "300"], cwd=folder)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_helper_whose_folder_was_deleted_is_noticed(tmp_path, sleeper):
    clone = tmp_path / "temporary-clone"
    clone.mkdir()
    proc = sleeper(clone)
    assert _call("cwd_gone", str(proc.pid)) == 1  # its folder is still there
    shutil.rmtree(clone)  # what `make test-containers` from a deleted temporary clone left behind
    assert _call("cwd_gone", str(proc.pid)) == 0


def test_a_recorded_helper_is_alive_only_while_its_process_runs(tmp_path, sleeper):
    proc = sleeper(tmp_path)
    pidfile = tmp_path / "helper.pid"
    assert _call("recorded_alive", str(pidfile)) == 1  # no pid file
    pidfile.write_text(str(proc.pid))
    assert _call("recorded_alive", str(pidfile)) == 0
    proc.kill()
    proc.wait()
    assert _call("recorded_alive", str(pidfile)) == 1


def test_helpers_start_in_the_state_folder_not_the_callers(tmp_path):
    state = tmp_path / "state"
    script = f'source "{SETUP}"; enter_state_dir; pwd'
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "AML_CONTAINERS_STATE": str(state)},
                         timeout=30)
    assert out.stdout.strip() == str(state) and state.is_dir()


def test_sourcing_the_script_sets_nothing_up(tmp_path):
    # main() runs only when the script is executed: sourcing must not install or start anything.
    assert _call("true", state=tmp_path / "state") == 0
    assert not (tmp_path / "state").exists()
