"""``pip install ./clients/python`` into a fresh virtual environment, with no package index, then use it."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from .helpers import Server

PROJECT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kw)


class PipInstallTest(unittest.TestCase):
    def test_pip_install_offline_into_a_venv_and_use_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            venv = os.path.join(tmp, "venv")
            py = os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")
            made = _run([sys.executable, "-m", "venv", venv])
            if made.returncode == 0 and _run([py, "-m", "pip", "--version"]).returncode == 0:
                pip = [py, "-m", "pip"]
            else:
                # No ensurepip (Debian without python3-venv): drive the outer pip at the venv.
                made = _run([sys.executable, "-m", "venv", "--without-pip", venv])
                self.assertEqual(made.returncode, 0, made.stderr)
                if _run([sys.executable, "-m", "pip", "--version"]).returncode != 0:
                    self.skipTest("no pip for this interpreter: cannot test pip install here")
                pip = [sys.executable, "-m", "pip", "--python", py]
            # --no-index: the standard-library build backend needs no download.
            res = _run(pip + ["install", "--no-index", "--no-cache-dir", PROJECT])
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

            server = Server()
            try:
                script = textwrap.dedent(
                    f"""
                    import asyncio, os, sys
                    import beuss, beuss.aio
                    assert os.path.realpath(beuss.__file__).startswith(os.path.realpath({venv!r})), beuss.__file__
                    with beuss.connect("127.0.0.1", {server.port}) as c:
                        assert c.put("installed", b"ok") == 2
                        assert c.get("installed") == b"ok"
                    async def main():
                        async with beuss.aio.connect("127.0.0.1", {server.port}) as c:
                            assert await c.put("installed", "aio") == 3
                            assert await c.get("installed") == b"aio"
                    asyncio.run(main())
                    print(beuss.__version__)
                    """
                )
                # cwd outside the source tree, so only the installed copy can be imported.
                res = _run([py, "-c", script], cwd=tmp, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
            finally:
                server.stop()
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
            self.assertEqual(res.stdout.strip(), "0.1.0")


if __name__ == "__main__":
    unittest.main()
