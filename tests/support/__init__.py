"""Test infrastructure shared by the whole suite (pytest-independent helpers).

- :mod:`tests.support.pg`      -- throwaway PostgreSQL server (``start_postgres``).
- :mod:`tests.support.server`  -- ``streamlit run`` as a subprocess (``start_streamlit``).
- :mod:`tests.support.browser` -- headless Debian Chromium through Playwright.

The modules are imported lazily by their users so that a test needing only one of
them does not pay for (or depend on) the others.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Repository root (the directory holding ``streamlit_app.py``)."""

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on *host* that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on *host*:*port*."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies.

    Keeps servers from outliving a test run that was killed hard (SIGKILL,
    pytest-timeout's ``os._exit``). Linux delivers the signal when the *thread*
    that forked exits, so this is only used from the main thread; elsewhere it
    returns ``None`` and cleanup relies on ``stop()``/atexit.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # parent already gone between fork and prctl
            os._exit(1)

    return _preexec


def tail(text: str, lines: int = 60) -> str:
    """The last *lines* lines of *text* (for error messages)."""
    return "\n".join(text.splitlines()[-lines:])
