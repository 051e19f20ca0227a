"""Run ``streamlit run <script>`` as a subprocess for end-to-end tests.

Usage::

    with start_streamlit(env={"CRM_DATABASE_URL": url}) as srv:   # or: srv = start_streamlit(); ...; srv.stop()
        httpx.get(srv.base_url + "/_stcore/health")                 # -> "ok"
        page.goto(srv.base_url)

The server binds 127.0.0.1 on a free port, runs in its own process group with
stdout/stderr in a log file, and ``start_streamlit`` returns only once
``/_stcore/health`` answers ``ok`` (else it raises with the tail of the log).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.support import REPO_ROOT, die_with_parent_preexec, free_port, tail

HOST = "127.0.0.1"
HEALTH_PATH = "/_stcore/health"


def streamlit_command(script: str | os.PathLike[str], port: int) -> list[str]:
    """The exact command line used to run *script* on *port*."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        HOST,
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
    ]


class RunningServer:
    """A ``streamlit run`` subprocess (see :func:`start_streamlit`).

    Attributes: ``port``, ``base_url`` (``http://127.0.0.1:PORT``), ``pid`` (also the
    process-group id), ``script``, ``cwd``, ``env`` (full environment given to the
    child), ``log_path``, ``proc`` (the ``subprocess.Popen``).
    """

    def __init__(
        self,
        script: str | os.PathLike[str],
        cwd: Path,
        env: dict[str, str],
        log_dir: Path,
        own_log_dir: bool,
    ) -> None:
        self.script = str(script)
        self.cwd = cwd
        self.env = env
        self.log_path = log_dir / "streamlit.log"
        self._log_dir = log_dir
        self._own_log_dir = own_log_dir
        self._final_log: str | None = None
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopped = False

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of *path* on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit code once the process has ended, else ``None``."""
        return None if self.proc is None else self.proc.poll()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        """Everything the server printed so far (kept after ``stop()``)."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def health(self, timeout: float = 2.0) -> str | None:
        """Body of ``/_stcore/health`` (``"ok"`` when healthy), or ``None`` if unreachable."""
        try:
            with urllib.request.urlopen(self.url(HEALTH_PATH), timeout=timeout) as resp:
                return resp.read().decode(errors="replace").strip()
        except (urllib.error.URLError, OSError):
            return None

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Poll the health endpoint until it says ``ok``; raise with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise _EarlyExit(self.returncode)
            if self.health(timeout=1.0) == "ok":
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"streamlit ({self.script}) not healthy on {self.base_url} after {timeout:.0f}s; "
            f"log tail:\n{tail(self.log_text())}"
        )

    def _launch(self, port: int) -> None:
        self.port = port
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                streamlit_command(self.script, port),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: kill() reaches every child
                preexec_fn=die_with_parent_preexec(),
            )

    def start(self, timeout: float = 60.0) -> RunningServer:
        for attempt in range(3):
            self._launch(free_port(HOST))
            try:
                self.wait_healthy(timeout)
                break
            except _EarlyExit as exc:
                log = self.log_text()
                if attempt < 2 and ("already in use" in log or "Errno 98" in log):
                    continue  # lost the race for the port: try another one
                raise RuntimeError(
                    f"streamlit ({self.script}) exited with code {exc.code} before becoming healthy; "
                    f"log tail:\n{tail(log)}"
                ) from None
        atexit.register(self.stop)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send *sig* to the server's whole process group (no waiting, no cleanup)."""
        if self.proc is not None:
            _killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after *timeout*, then drop the temp log dir."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            _killpg(proc.pid, signal.SIGKILL)  # the process or anything it left behind
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._final_log = self.log_text() if self._final_log is None else self._final_log
        if self._own_log_dir:
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningServer {self.script} {self.base_url} running={self.is_running()}>"


class _EarlyExit(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_streamlit(
    script: str | os.PathLike[str] = "streamlit_app.py",
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike[str] = REPO_ROOT,
    *,
    timeout: float = 60.0,
    log_dir: str | os.PathLike[str] | None = None,
) -> RunningServer:
    """Start ``streamlit run script`` on a free 127.0.0.1 port; return once healthy.

    *env* is merged over ``os.environ`` (a ``None`` value removes a variable).
    *script* is relative to *cwd* (the repo root by default) unless absolute.
    *log_dir*: where ``streamlit.log`` goes; by default a fresh temp dir that
    ``stop()`` removes (``log_text()`` keeps working after stop).

    The result is also a context manager whose exit calls ``stop()``.
    """
    child_env = dict(os.environ)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    if log_dir is None:
        logs = Path(tempfile.mkdtemp(prefix="crm-st-"))
        own = True
    else:
        logs = Path(log_dir)
        logs.mkdir(parents=True, exist_ok=True)
        own = False
    server = RunningServer(script, Path(cwd), child_env, logs, own)
    try:
        return server.start(timeout=timeout)
    except BaseException:
        server.stop()
        raise
