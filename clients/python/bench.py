#!/usr/bin/env python3
"""Throughput of the Python client next to the Node.js client, on one beuss-server.

    python3 clients/python/bench.py [--count 200000] [--size 64] [--runs 3] [--prefetch 1024]

Starts its own server (``node bin/beuss-server.js`` on a free loopback port;
run ``npm run build`` first) unless ``--port`` is given. For each client it
measures, with the same message count and size:

- produce: ``put_many`` (Python) / un-awaited ``put`` calls (Node), one connection;
- consume: ``consume`` by server push with credit, one connection, every
  message checked for its sequence number (none missing, duplicated or out of order).

Prints the median of ``--runs`` runs in messages per second, with the CPU
seconds of the server and of the client (the Python process, or the node
process for the Node client) next to the wall time of a run (produce and
consume), so a reader sees who is the bottleneck (Linux only: /proc, resource). A benchmark, not a test:
figures drift between runs and machines.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import beuss  # noqa: E402
import beuss.aio  # noqa: E402


def payloads(count: int, size: int) -> List[bytes]:
    """Returns ``count`` messages of ``size`` bytes, each starting with its sequence number."""
    pad = b"x" * max(0, size - 10)
    return [(b"%010d" % i + pad)[:size] for i in range(count)]


def check_sequence(got: List[bytes], count: int) -> None:
    if len(got) != count:
        raise SystemExit(f"consume got {len(got)} messages, expected {count}")
    for i, m in enumerate(got):
        if int(m[:10]) != i:
            raise SystemExit(f"message {i} out of order: {m[:10]!r}")


def py_sync(host: str, port: int, queue: str, msgs: List[bytes], prefetch: int) -> Tuple[float, float]:
    with beuss.connect(host, port) as c:
        c.purge(queue)
        t0 = time.perf_counter()
        c.put_many(queue, msgs)
        t_put = time.perf_counter() - t0
        got = []
        t0 = time.perf_counter()
        with c.consume(queue, prefetch=prefetch, max=len(msgs)) as consumer:
            for m in consumer:
                got.append(m.data)
        t_get = time.perf_counter() - t0
    check_sequence(got, len(msgs))
    return len(msgs) / t_put, len(msgs) / t_get


def py_get_many(host: str, port: int, queue: str, msgs: List[bytes]) -> float:
    with beuss.connect(host, port) as c:
        c.purge(queue)
        c.put_many(queue, msgs)
        t0 = time.perf_counter()
        got = c.get_many(queue, len(msgs))
        took = time.perf_counter() - t0
    check_sequence(got, len(msgs))
    return len(msgs) / took


def py_round_trips(host: str, port: int, queue: str, msgs: List[bytes]) -> Tuple[float, float]:
    with beuss.connect(host, port) as c:
        c.purge(queue)
        t0 = time.perf_counter()
        for m in msgs:
            c.put(queue, m)
        t_put = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = [c.get(queue) for _ in msgs]
        t_get = time.perf_counter() - t0
    check_sequence([g for g in got if g is not None], len(msgs))
    return len(msgs) / t_put, len(msgs) / t_get


def py_aio(host: str, port: int, queue: str, msgs: List[bytes], prefetch: int) -> Tuple[float, float]:
    async def run() -> Tuple[float, float]:
        async with beuss.aio.connect(host, port) as c:
            await c.purge(queue)
            t0 = time.perf_counter()
            await c.put_many(queue, msgs)
            t_put = time.perf_counter() - t0
            got = []
            t0 = time.perf_counter()
            async with c.consume(queue, prefetch=prefetch, max=len(msgs)) as consumer:
                async for m in consumer:
                    got.append(m.data)
            t_get = time.perf_counter() - t0
        check_sequence(got, len(msgs))
        return len(msgs) / t_put, len(msgs) / t_get

    return asyncio.run(run())


NODE_SCRIPT = r"""
const beuss = require(process.argv[1]);
const [host, port, queue, count, size, prefetch] = process.argv.slice(2);
const N = Number(count), S = Number(size);
(async () => {
  const c = await beuss.connect({ host, port: Number(port) });
  await c.purge(queue);
  const pad = 'x'.repeat(Math.max(0, S - 10));
  const msgs = [];
  for (let i = 0; i < N; i++) msgs.push(Buffer.from((String(i).padStart(10, '0') + pad).slice(0, S)));
  let t0 = process.hrtime.bigint();
  const CHUNK = 10000;
  for (let i = 0; i < N; i += CHUNK) {
    const ps = [];
    for (let j = i; j < Math.min(N, i + CHUNK); j++) ps.push(c.put(queue, msgs[j]));
    await Promise.all(ps);
  }
  const tPut = Number(process.hrtime.bigint() - t0) / 1e9;
  t0 = process.hrtime.bigint();
  let i = 0;
  for await (const m of c.consume(queue, { prefetch: Number(prefetch), max: N })) {
    if (Number(m.data.subarray(0, 10).toString()) !== i) throw new Error('out of order at ' + i);
    i++;
  }
  const tGet = Number(process.hrtime.bigint() - t0) / 1e9;
  if (i !== N) throw new Error('consumed ' + i + ' of ' + N);
  await c.close();
  process.stdout.write(JSON.stringify({ put: N / tPut, consume: N / tGet }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def node_client(host: str, port: int, queue: str, count: int, size: int, prefetch: int) -> Tuple[float, float]:
    res = subprocess.run(
        ["node", "-e", NODE_SCRIPT, ROOT, host, str(port), queue, str(count), str(size), str(prefetch)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if res.returncode != 0:
        raise SystemExit(f"node client bench failed:\n{res.stderr}")
    out = json.loads(res.stdout)
    return out["put"], out["consume"]


def cpu_seconds(pid: int) -> float:
    """Returns the user+system CPU seconds used by process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prefetch", type=int, default=1024)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=None, help="use a running server instead of starting one")
    args = ap.parse_args()

    server: Optional[subprocess.Popen] = None
    port = args.port
    if port is None:
        server = subprocess.Popen(
            ["node", os.path.join(ROOT, "bin", "beuss-server.js"), "--host", args.host, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert server.stdout is not None
        line = server.stdout.readline()
        m = re.search(r"listening on \S+:(\d+)", line)
        if not m:
            server.kill()
            raise SystemExit(f"server did not start: {line}")
        port = int(m.group(1))

    msgs = payloads(args.count, args.size)
    cases: Dict[str, Callable[[], Tuple[float, ...]]] = {
        "python sync": lambda: py_sync(args.host, port, "bench-py", msgs, args.prefetch),
        "python asyncio": lambda: py_aio(args.host, port, "bench-aio", msgs, args.prefetch),
        "node client": lambda: node_client(args.host, port, "bench-node", args.count, args.size, args.prefetch),
    }
    print(
        f"beuss clients, {args.count} messages of {args.size} bytes, prefetch {args.prefetch}, "
        f"median of {args.runs} runs, server on {args.host}:{port}, python {sys.version.split()[0]}"
    )
    print(f"{'client':<16} {'produce msg/s':>14} {'consume msg/s':>14} {'server CPU s':>13} {'client CPU s':>13} {'wall s':>7}")
    for name, fn in cases.items():
        puts, gets, cpus, client_cpus, walls = [], [], [], [], []
        for _ in range(args.runs):
            c0 = cpu_seconds(server.pid) if server else 0.0
            own0, kids0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
            w0 = time.perf_counter()
            p, g = fn()
            walls.append(time.perf_counter() - w0)
            kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            # This process, plus the node child for the Node client.
            client_cpus.append(
                time.process_time() - own0 + (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
            )
            cpus.append((cpu_seconds(server.pid) - c0) if server else float("nan"))
            puts.append(p)
            gets.append(g)
        print(
            f"{name:<16} {statistics.median(puts):>14,.0f} {statistics.median(gets):>14,.0f} {statistics.median(cpus):>13.2f}"
            f" {statistics.median(client_cpus):>13.2f} {statistics.median(walls):>7.2f}"
        )
    gm = statistics.median(py_get_many(args.host, port, "bench-getmany", msgs) for _ in range(args.runs))
    print(f"{'python get_many':<16} {'':>14} {gm:>14,.0f}   (pipelined GETs instead of push)")
    few = msgs[: max(1, args.count // 20)]
    rt_put, rt_get = zip(*(py_round_trips(args.host, port, "bench-rt", few) for _ in range(args.runs)))
    print(
        f"{'python put/get':<16} {statistics.median(rt_put):>14,.0f} {statistics.median(rt_get):>14,.0f}"
        f"   (one round trip per message, {len(few)} messages)"
    )
    if server is not None:
        server.terminate()
        server.wait(15)


if __name__ == "__main__":
    main()
