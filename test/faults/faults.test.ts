// Fault tests of at-least-once delivery, with real processes: a consumer
// process killed while it holds leases, a poison message, a consumer that
// stops reading, and SIGTERM to a server under load. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connect, type LeasedMessage } from '../../src/index';
import { ROOT, startServer, useServer } from '../helpers/server';
import { onWindows } from '../helpers/platform';
import { Wire } from '../helpers/wire';

const server = useServer({ cleanExit: true });

/** Resolves when pred() holds, checking every 10 ms; rejects after timeoutMs. */
async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a Node process running `script` with `beuss` (this package, built) and PORT defined. */
function node(script: string, port = server.port): { proc: ChildProcess; out: () => string } {
  const prelude = `const beuss = require(${JSON.stringify(ROOT)}); const PORT = ${port};\n`;
  const proc = spawn(process.execPath, ['-e', prelude + script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, out: () => out };
}

describe('at-least-once under faults', () => {
  it('a consumer killed with SIGKILL while holding 100 leased messages: all 100 reach another consumer, none lost, in order', async () => {
    const q = 'kill-100';
    const p = await server.connect();
    for (let i = 0; i < 100; i++) void p.put(q, `m${i}`);
    expect(await p.len(q)).toBe(100);
    const child = node(`
      (async () => {
        const c = await beuss.connect({ host: '127.0.0.1', port: PORT });
        let n = 0;
        c.consume(${JSON.stringify(q)}, () => { if (++n === 100) console.log('HELD 100'); return new Promise(() => {}); },
                  { lease: 600000, prefetch: 200 });
      })();
      setInterval(() => {}, 1000);
    `);
    // The handler never resolves, but the other 99 are buffered in the client: all 100 are leased.
    await until(async () => Number((await p.stats(q)).leased) === 100, 'the child to hold 100 leases');
    expect((await p.stats(q)).ready).toBe(0);
    child.proc.kill('SIGKILL');
    await new Promise((r) => child.proc.once('exit', r));
    // The leases come back with the connection, not after their 10-minute lease.
    const c = await server.connect();
    const got: LeasedMessage[] = [];
    const consumer = c.consume(q, { lease: 60_000, prefetch: 16 });
    for await (const m of consumer) {
      got.push(m);
      await m.ack();
      if (got.length === 100) break;
    }
    expect(got.map((m) => m.text())).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(got.every((m) => m.deliveries === 2)).toBe(true);
    const s = await p.stats(q);
    expect([s.ready, s.leased, s.dead]).toEqual([0, 0, 0]);
  });

  it('a poison message is dead-lettered after the maximum and does not block the messages behind it', async () => {
    const q = 'poison';
    const p = await server.connect();
    await p.put(q, 'poison');
    for (let i = 0; i < 9; i++) await p.put(q, `ok${i}`);
    const c = await server.connect();
    const done: string[] = [];
    let tries = 0;
    const errors: unknown[] = [];
    const worker = c.work(
      q,
      (m) => {
        if (m.text() === 'poison') {
          tries++;
          throw new Error('cannot handle this one');
        }
        done.push(m.text());
      },
      { maxDeliver: 3, onError: (err) => errors.push(err) },
    );
    await until(async () => done.length === 9 && (await p.len(`${q}.dead`)) === 1, 'the good messages and the dead letter');
    await worker.close();
    expect(done).toEqual(Array.from({ length: 9 }, (_, i) => `ok${i}`));
    expect(tries).toBe(3);
    expect(errors).toHaveLength(3);
    expect((await p.peek(`${q}.dead`))!.toString()).toBe('poison');
    const s = await p.stats(q);
    expect([s.ready, s.leased, s.dead]).toEqual([0, 0, 1]);
    expect((await p.queues()).find((x) => x.name === q)).toMatchObject({ ready: 0, leased: 0, dead: 1 });
  });

  it('a consumer that stops reading but keeps its connection: its leases expire and the messages go to another consumer', async () => {
    const q = 'stalled';
    const stalled = await Wire.connect(server.port);
    stalled.send(`ON ${q} CREDIT 10 LEASE 300\r\n`);
    expect(await stalled.line()).toBe('OK');
    stalled.socket.pause(); // from now on it reads nothing, and never acknowledges
    const p = await server.connect();
    for (let i = 0; i < 5; i++) await p.put(q, `s${i}`);
    await until(async () => Number((await p.stats(q)).leased) === 5, 'the stalled consumer to hold 5 leases');
    const c = await server.connect();
    const got: LeasedMessage[] = [];
    const worker = c.work(q, (m) => void got.push(m), { lease: 60_000 });
    await until(() => got.length === 5, 'the 5 messages to be redelivered');
    await worker.close();
    // Leases that expire in separate ticks come back separately, each to the head: no order among them.
    expect(got.map((m) => m.text()).sort()).toEqual(['s0', 's1', 's2', 's3', 's4']);
    expect(got.every((m) => m.deliveries === 2)).toBe(true);
    const st = await p.stats();
    expect(Number(st.expired)).toBeGreaterThanOrEqual(5);
    // The stalled consumer was not handed its expired messages again: they all went to the worker.
    await until(async () => Number((await p.stats(q)).leased) === 0, 'the acks');
    stalled.end();
  });

  // On Windows kill() terminates the server without running its SIGTERM handler.
  it.skipIf(onWindows)('SIGTERM to a server under load: it stops accepting, answers or fails every pending request clearly, exits 0', async () => {
    const s = await startServer();
    const producer = await connect({ host: '127.0.0.1', port: s.port });
    const consumer = await connect({ host: '127.0.0.1', port: s.port });
    const q = 'load';
    let acked = 0;
    const worker = consumer.work(q, () => void acked++, { prefetch: 32, lease: 60_000 });
    worker.closed.catch(() => {});
    // Keep many requests in flight while the server stops.
    const outcomes: Array<Promise<'ok' | string>> = [];
    let stop = false;
    const pump = (async () => {
      while (!stop && outcomes.length < 200_000) {
        for (let i = 0; i < 500; i++) {
          outcomes.push(producer.put(q, `x${outcomes.length}`).then(() => 'ok' as const, (e: { code?: string }) => String(e.code)));
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await until(() => acked > 1000, 'the load to start');
    const exit = s.stop('SIGTERM');
    stop = true;
    await pump;
    const results = await Promise.all(outcomes);
    const { code, signal } = await exit;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    // Every request either succeeded or failed with a clear code, never hung.
    const codes = new Set(results.filter((r) => r !== 'ok'));
    for (const c of codes) expect(['SHUTTING_DOWN', 'CONNECTION_CLOSED', 'ECONNRESET', 'EPIPE']).toContain(c);
    expect(results.filter((r) => r === 'ok').length).toBeGreaterThan(1000);
    // Stopped accepting: a new connection is refused.
    await expect(connect({ host: '127.0.0.1', port: s.port, connectTimeout: 2000 })).rejects.toMatchObject({ name: 'ConnectionError' });
    expect(s.output()).toMatch(/stopped on SIGTERM/);
    await producer.close({ force: true });
    await consumer.close({ force: true });
  });
});
