"""Test helpers: the real beuss-server on a free loopback port, and the Node CLI and library.

Nothing here imitates the server: tests talk to ``node bin/beuss-server.js``
built by ``npm run build`` in the repository root.
"""

import os
import re
import subprocess
import threading
import time
from typing import Dict, List, Optional, Sequence

# clients/python/tests/helpers.py -> repository root
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SERVER_BIN = os.path.join(ROOT, "bin", "beuss-server.js")
CLI_BIN = os.path.join(ROOT, "bin", "beuss.js")
NODE = os.environ.get("NODE", "node")
START_TIMEOUT = 15.0


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Returns os.environ without BHOST/BPORT/BMAXMESSAGESIZE and the like, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not re.fullmatch(r"B[A-Z]+", k)}
    env.update(extra or {})
    return env


class Server:
    """A running ``beuss-server`` on 127.0.0.1 and an OS-chosen port."""

    def __init__(self, args: Sequence[str] = (), env: Optional[Dict[str, str]] = None) -> None:
        if not os.path.exists(os.path.join(ROOT, "dist")):
            raise RuntimeError(f"{ROOT}/dist is missing: run `npm run build` in {ROOT} before these tests")
        self.host = "127.0.0.1"
        self.proc = subprocess.Popen(
            [NODE, SERVER_BIN, "--host", self.host, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(env),
        )
        self._out: List[bytes] = []
        found = threading.Event()
        port: List[int] = []

        def pump() -> None:
            # Reads the server's output for the whole run, so its pipe never fills.
            assert self.proc.stdout is not None
            for line in iter(self.proc.stdout.readline, b""):
                self._out.append(line)
                m = re.search(rb"listening on (\S+):(\d+)", line)
                if m and not port:
                    port.append(int(m.group(2)))
                    found.set()
            found.set()

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        if not found.wait(START_TIMEOUT) or not port:
            self.stop()
            raise RuntimeError(f"beuss-server did not print 'listening on HOST:PORT' within {START_TIMEOUT} s:\n{self.output()}")
        self.port = port[0]

    def output(self) -> str:
        """Returns everything the server printed so far."""
        return b"".join(self._out).decode("utf-8", "replace")

    def stop(self) -> Optional[int]:
        """Stops the server (SIGTERM, then SIGKILL after 10 s) and returns its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self._reader.join(5)
            self.proc.stdout.close()
        return self.proc.returncode


def run_cli(args: Sequence[str], port: int, stdin: bytes = b"", timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs ``node bin/beuss.js ARGS`` against 127.0.0.1:port (through BHOST/BPORT) and returns the finished process."""
    return subprocess.run(
        [NODE, CLI_BIN, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=clean_env({"BHOST": "127.0.0.1", "BPORT": str(port)}),
    )


def run_node(script: str, port: int, stdin: bytes = b"", timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs a Node.js script in which ``beuss`` is the built Node client of this repository and PORT the server's port."""
    prelude = f"const beuss = require({ROOT!r}); const PORT = {port};\n"
    return subprocess.run(
        [NODE, "-e", prelude + script],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=clean_env(),
        cwd=ROOT,
    )


def wait_until(pred, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Returns True once ``pred()`` is true, False if ``timeout`` seconds pass first (a bounded poll for test set-up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())
