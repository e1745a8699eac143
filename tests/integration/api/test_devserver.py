"""`make run`'s children die with the launcher, even when it is killed with SIGKILL, without code
run between fork and exec in the launcher (api/die_with_parent.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from api.devserver import DIE_WITH_PARENT

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's")

LAUNCHER = """
import subprocess, sys, time
from api.devserver import dying_with_parent
child = subprocess.Popen(dying_with_parent(["sleep", "60"]), process_group=0)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_child_becomes_the_command_itself_and_dies_when_the_launcher_is_killed():
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child: psutil.Process | None = None
    try:
        assert launcher.stdout is not None
        child = psutil.Process(int(launcher.stdout.readline()))
        deadline = time.monotonic() + 10
        while child.cmdline() != ["sleep", "60"]:  # the wrapper replaced itself with the command
            assert time.monotonic() < deadline, child.cmdline()
            time.sleep(0.05)
        assert os.getpgid(child.pid) == child.pid  # still the leader of its own group
        launcher.kill()
        launcher.wait(5)
        child.wait(5)  # raises TimeoutExpired if it outlived the launcher
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        if child is not None:
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_the_command_does_not_start_when_its_parent_died_before_the_death_signal_was_set(tmp_path):
    marker = tmp_path / "started"
    not_the_parent = os.getppid()  # the wrapper's parent is this process, not ours
    result = subprocess.run(
        [sys.executable, "-I", str(DIE_WITH_PARENT), str(not_the_parent), "touch", str(marker)], timeout=30
    )
    assert result.returncode == 128 + signal.SIGTERM
    assert not marker.exists()
