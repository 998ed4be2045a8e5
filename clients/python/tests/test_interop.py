"""Interoperability with the Node.js side: the beuss CLI and the Node client library, both ways."""

import json
import unittest

import beuss

from .helpers import run_cli, run_node
from .test_client import ServerTestCase

EVERY_BYTE = bytes(range(256)) * 3


class CliInteropTest(ServerTestCase):
    def test_python_puts_the_cli_gets(self):
        c = self.connect()
        q = self.q()
        self.assertEqual(c.put(q, EVERY_BYTE), len(EVERY_BYTE))
        res = run_cli(["GET", q], self.server.port)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, EVERY_BYTE)
        res = run_cli(["GET", q], self.server.port)
        self.assertEqual(res.returncode, 1, "exit code 1 when the queue is empty")

    def test_the_cli_puts_python_gets(self):
        c = self.connect()
        q = self.q()
        res = run_cli(["PUT", q], self.server.port, stdin=EVERY_BYTE)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(c.get(q), EVERY_BYTE)

    def test_python_puts_the_cli_consumes_in_order(self):
        c = self.connect()
        q = self.q()
        c.put_many(q, [b"one", b"two", b"three", b"four"])
        res = run_cli(["ON", q, "--count", "3"], self.server.port)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, b"one\ntwo\nthree\n")
        self.assertEqual(c.get(q), b"four")

    def test_the_cli_reports_what_python_stored(self):
        c = self.connect()
        q = self.q()
        c.put_many(q, [b"a", b"b"])
        res = run_cli(["LEN", q], self.server.port)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.strip(), b"2")


class NodeClientInteropTest(ServerTestCase):
    def test_the_node_client_puts_python_gets(self):
        c = self.connect()
        q = self.q()
        script = f"""
        (async () => {{
          const c = await beuss.connect({{ host: '127.0.0.1', port: PORT }});
          const all = Buffer.from('{EVERY_BYTE.hex()}', 'hex');
          const stored = await c.put({q!r}, all);
          for (let i = 0; i < 1000; i++) c.put({q!r}, 'n' + i);
          await c.put({q!r}, 'end');
          await c.close();
          process.stdout.write(String(stored));
        }})().catch((e) => {{ console.error(e); process.exit(1); }});
        """
        res = run_node(script, self.server.port)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        self.assertEqual(res.stdout, str(len(EVERY_BYTE)).encode())
        self.assertEqual(c.get(q), EVERY_BYTE)
        with c.consume(q, prefetch=32, max=1001) as consumer:
            got = [m.data for m in consumer]
        self.assertEqual(got, [b"n%d" % i for i in range(1000)] + [b"end"])

    def test_python_puts_the_node_client_gets(self):
        c = self.connect()
        q = self.q()
        c.put(q, EVERY_BYTE)
        c.put_many(q, [b"m%d" % i for i in range(500)])
        script = f"""
        (async () => {{
          const c = await beuss.connect({{ host: '127.0.0.1', port: PORT }});
          const first = await c.get({q!r});
          const rest = [];
          for await (const m of c.consume({q!r}, {{ prefetch: 16, max: 500 }})) rest.push(m.text());
          await c.close();
          process.stdout.write(JSON.stringify({{ first: first.toString('hex'), rest }}));
        }})().catch((e) => {{ console.error(e); process.exit(1); }});
        """
        res = run_node(script, self.server.port)
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        out = json.loads(res.stdout)
        self.assertEqual(bytes.fromhex(out["first"]), EVERY_BYTE)
        self.assertEqual(out["rest"], ["m%d" % i for i in range(500)])
        self.assertEqual(c.len(q), 0)


if __name__ == "__main__":
    unittest.main()
