"""Run a command that gets SIGTERM when the process that started it dies, even of SIGKILL (Linux):

    python -I api/die_with_parent.py <parent pid> <command> [<argument> ...]

`make run`'s launcher (api/devserver.py) starts its children through this instead of setting the
death signal in a `preexec_fn`: code run between fork and exec in a process that has threads (the
launcher may: the Redis outbox's retrier, threads of libraries) can deadlock on a lock another
thread held at the fork, and Python documents `preexec_fn` as unsafe there. This runs as a fresh,
single-threaded interpreter (`-I`: no PYTHON* variables, no user site-packages, nothing imported
from the checkout), sets the death signal, which survives `exec`, and replaces itself with the
command, which keeps this pid and process group. Elsewhere than Linux the command just runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[1].isdigit():
        print(f"usage: {argv[0]} <parent pid> <command> [<argument> ...]", file=sys.stderr)
        return 2
    parent, command = int(argv[1]), argv[2:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            print(f"die_with_parent: prctl failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    if os.getppid() != parent:
        # The parent died before the death signal was set: do what the signal would have done.
        return 128 + signal.SIGTERM
    os.execvp(command[0], command)
    return 127  # not reached: execvp raises when it fails


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
