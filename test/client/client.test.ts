// The client library against a real beuss-server on a free loopback port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlreadySubscribedError,
  BadQueueNameError,
  type Client,
  ConnectionError,
  connect,
  FullError,
  InvalidArgumentError,
  type Message,
  ProtocolError,
  TooLargeError,
  TooManyConnectionsError,
} from '../../src/index.js';
import * as net from 'node:net';
import { type RunningServer, startServer, useServer } from '../helpers/server.js';
import { eventually } from '../server/util.js';

const srv = useServer();
let n = 0;
const fresh = (base = 'q') => `${base}-${++n}`;
const open = (s: RunningServer = srv) => connect({ host: s.host, port: s.port });

// This file's waits give up after 5 s.
const until = (check: () => boolean | Promise<boolean>, what: string) => eventually(check, what, 5000);

describe('basic operations', () => {
  let c: Client;
  beforeAll(async () => {
    c = await open();
  });
  afterAll(async () => {
    await c.close();
  });

  it('puts Buffers, Uint8Arrays and strings and gets them back byte for byte', async () => {
    const q = fresh();
    const bin = Buffer.from([0, 13, 10, 255, 80, 85, 83, 72, 10]);
    expect(await c.put(q, bin)).toBe(bin.length);
    expect(await c.put(q, new Uint8Array([1, 2, 3]))).toBe(3);
    expect(await c.put(q, 'h\u00e9llo')).toBe(6);
    expect(await c.put(q, '')).toBe(0);
    expect(await c.len(q)).toBe(4);
    expect(await c.peek(q)).toEqual(bin);
    expect(await c.get(q)).toEqual(bin);
    expect(await c.get(q)).toEqual(Buffer.from([1, 2, 3]));
    expect((await c.get(q))!.toString()).toBe('h\u00e9llo');
    expect(await c.get(q)).toEqual(Buffer.alloc(0));
    expect(await c.get(q)).toBeNull();
    expect(await c.peek(q)).toBeNull();
  });

  it('resolves put with the stored size, so truncation is visible', async () => {
    const q = fresh();
    expect(await c.put(q, Buffer.alloc(20_000, 1))).toBe(10_240);
    expect((await c.get(q))!.length).toBe(10_240);
  });

  it('purges, lists queues and reads stats', async () => {
    const q = fresh('listed');
    await Promise.all([c.put(q, 'a'), c.put(q, 'b'), c.put(q, 'c')]);
    expect(await c.queues()).toContainEqual({ name: q, ready: 3, consumers: 0, leased: 0, scheduled: 0, dead: 0 });
    const s = await c.stats();
    expect(s.protocol).toBe(2);
    expect(s.oversize).toBe('truncate');
    expect(s.max_message_size).toBe(10240);
    expect(typeof s.puts).toBe('number');
    expect(await c.purge(q)).toBe(3);
    expect(await c.len(q)).toBe(0);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
  });

  it('waits server-side for a message with get({ wait })', async () => {
    const q = fresh();
    const other = await open();
    try {
      const waiting = c.get(q, { wait: 20_000 });
      await until(async () => (await other.stats()).waiting === 1, 'the GET to wait');
      await other.put(q, 'late');
      expect((await waiting)!.toString()).toBe('late');
      expect(await c.get(q, { wait: 50 })).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('checks arguments before sending anything', async () => {
    const before = c.counters().requests;
    await expect(c.put('a b', 'x')).rejects.toThrow(BadQueueNameError);
    await expect(c.put('a b', 'x')).rejects.toMatchObject({ code: 'BAD_QUEUE_NAME', name: 'BadQueueNameError' });
    await expect(c.get('x'.repeat(256))).rejects.toThrow(/256 bytes/);
    await expect(c.len('')).rejects.toThrow(/empty/);
    await expect(c.put('q', 42 as unknown as string)).rejects.toThrow(InvalidArgumentError);
    await expect(c.get('q', { wait: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => c.consume('q', { prefetch: 0 })).toThrow(/prefetch/);
    expect(c.counters().requests).toBe(before);
  });

  it('takes a UTF-8 queue name', async () => {
    const q = `caf\u00e9-${fresh()}`;
    await c.put(q, 'x');
    expect(await c.queues()).toContainEqual({ name: q, ready: 1, consumers: 0, leased: 0, scheduled: 0, dead: 0 });
    expect((await c.get(q))!.toString()).toBe('x');
  });
});

describe('pipelining', () => {
  it('sends 10,000 puts made without await in far fewer socket writes, and they arrive in order', async () => {
    const c = await open();
    const q = fresh();
    const before = c.counters().socketWrites;
    const puts: Array<Promise<number>> = [];
    for (let i = 0; i < 10_000; i++) puts.push(c.put(q, `m${i}`));
    const stored = await Promise.all(puts);
    expect(stored.every((s, i) => s === `m${i}`.length)).toBe(true);
    const writes = c.counters().socketWrites - before;
    expect(c.counters()).toMatchObject({ pending: 0, bufferedBytes: 0 });
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(100);
    const gets: Array<Promise<Buffer | null>> = [];
    for (let i = 0; i < 10_000; i++) gets.push(c.get(q));
    const got = await Promise.all(gets);
    expect(got.map((b) => b!.toString())).toEqual(Array.from({ length: 10_000 }, (_, i) => `m${i}`));
    expect(await c.get(q)).toBeNull();
    await c.close();
  });

  it('sends requests made in one tick as one write', async () => {
    const c = await open();
    const before = c.counters().socketWrites;
    const calls = [c.ping(), c.len('a'), c.put('a', 'x'), c.get('a')];
    // Not written yet: batched until the end of this tick.
    expect(c.counters()).toMatchObject({ socketWrites: before, pending: 4 });
    expect(c.counters().bufferedBytes).toBe(Buffer.byteLength('PING\r\nLEN a\r\nPUT a 1\r\nx\r\nGET a\r\n'));
    await Promise.all(calls);
    expect(c.counters().socketWrites - before).toBe(1);
    await c.close();
  });
});

describe('pipelining limits', () => {
  it('writes at once, not at the end of the tick, past the flush threshold', async () => {
    const c = await open();
    const q = fresh();
    const before = c.counters().socketWrites;
    const small = c.put(q, 'a');
    expect(c.counters().socketWrites).toBe(before);
    const big = c.put(q, Buffer.alloc(70_000, 2));
    // The small request and the big one went out together, synchronously.
    expect(c.counters().socketWrites).toBe(before + 1);
    expect(c.counters().bufferedBytes).toBeLessThanOrEqual(70_100);
    expect(await small).toBe(1);
    expect(await big).toBe(10_240);
    await c.close();
  });

  it('copies the message at the call, so the caller may reuse its buffer at once', async () => {
    const c = await open();
    const q = fresh();
    const buf = Buffer.from('original');
    const put = c.put(q, buf);
    buf.fill(0x21);
    await put;
    expect((await c.get(q))!.toString()).toBe('original');
    await c.close();
  });
});

describe('consume', () => {
  it('iterates messages in order with for await, and break stops it', async () => {
    const c = await open();
    const q = fresh();
    for (let i = 0; i < 100; i++) void c.put(q, `m${i}`);
    const got: string[] = [];
    for await (const m of c.consume(q, { prefetch: 8 })) {
      got.push(m.text());
      expect(m.queue).toBe(q);
      if (got.length === 30) break;
    }
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
    // At most the prefetch was pushed beyond what was handled (at-most-once).
    const left = await c.len(q);
    expect(left).toBeGreaterThanOrEqual(100 - 30 - 8);
    expect(left).toBeLessThanOrEqual(70);
    expect((await c.queues()).find((x) => x.name === q)?.consumers).toBe(0);
    await c.close();
  });

  it('with max takes exactly that many messages from the queue', async () => {
    const c = await open();
    const q = fresh();
    for (let i = 0; i < 50; i++) void c.put(q, `m${i}`);
    const got: string[] = [];
    for await (const m of c.consume(q, { prefetch: 16, max: 20 })) got.push(m.text());
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(await c.len(q)).toBe(30);
    await c.close();
  });

  it('holds at most prefetch messages ahead of a slow handler', async () => {
    const c = await open();
    const watcher = await open();
    const q = fresh();
    for (let i = 0; i < 1000; i++) void c.put(q, `m${i}`);
    await c.len(q);
    const consumer = c.consume(q, { prefetch: 10 });
    const it = consumer[Symbol.asyncIterator]();
    const first = await it.next();
    expect((first.value as Message).text()).toBe('m0');
    // The handler is stuck on m0: once the server has answered later requests, nothing more is pushed.
    await until(() => consumer.receivedCount === 10, '10 pushes');
    await c.ping();
    await watcher.ping();
    expect(consumer.receivedCount).toBe(10);
    expect(await watcher.len(q)).toBe(990);
    // Handling messages grants credit back, and the stream continues.
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) {
      rest.push(r.value.text());
      if (rest.length === 999) break;
    }
    expect(rest).toEqual(Array.from({ length: 999 }, (_, i) => `m${i + 1}`));
    await consumer.close();
    await Promise.all([c.close(), watcher.close()]);
  });

  it('calls a handler for each message in order, one at a time', async () => {
    const c = await open();
    const q = fresh();
    const got: string[] = [];
    let running = 0;
    let overlap = false;
    let finish!: () => void;
    const all = new Promise<void>((r) => (finish = r));
    const consumer = c.consume(
      q,
      async (m) => {
        running++;
        if (running > 1) overlap = true;
        await new Promise((r) => setImmediate(r));
        got.push(m.text());
        running--;
        if (got.length === 200) finish();
      },
      { prefetch: 4 },
    );
    for (let i = 0; i < 200; i++) void c.put(q, `m${i}`);
    await all;
    expect(overlap).toBe(false);
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
    await consumer.close();
    await consumer.closed;
    await c.close();
  });

  it('drain hands out every message already pushed', async () => {
    const c = await open();
    const q = fresh();
    for (let i = 0; i < 100; i++) void c.put(q, `m${i}`);
    const got: string[] = [];
    const consumer = c.consume(q, (m) => void got.push(m.text()), { prefetch: 32 });
    await until(() => got.length >= 10, 'ten messages');
    await consumer.drain();
    const left = await c.len(q);
    expect(got.length + left).toBe(100);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => `m${i}`));
    await c.close();
  });

  it('ends a for await loop normally when the client is closed', async () => {
    const c = await open();
    const q = fresh();
    await c.put(q, JSON.stringify({ n: 1 }));
    const got: unknown[] = [];
    const loop = (async () => {
      for await (const m of c.consume(q)) got.push(m.json());
    })();
    await until(() => got.length === 1, 'the message');
    await c.close();
    await loop;
    expect(got).toEqual([{ n: 1 }]);
  });

  it('rejects closed when the handler throws', async () => {
    const c = await open();
    const q = fresh();
    await c.put(q, 'boom');
    const consumer = c.consume(q, () => {
      throw new Error('handler failed');
    });
    await expect(consumer.closed).rejects.toThrow('handler failed');
    await c.close();
  });

  it('can be iterated once, and not at all when made with a handler', async () => {
    const c = await open();
    const iterated = c.consume(fresh());
    iterated[Symbol.asyncIterator]();
    expect(() => iterated[Symbol.asyncIterator]()).toThrow(InvalidArgumentError);
    const handled = c.consume(fresh(), () => {});
    expect(() => handled[Symbol.asyncIterator]()).toThrow(/only once, and not when it has a handler/);
    await Promise.all([iterated.close(), handled.close()]);
    await c.close();
  });

  it('hands out the messages pushed before the client was closed, then ends', async () => {
    const c = await open();
    const q = fresh();
    for (let i = 0; i < 5; i++) void c.put(q, `m${i}`);
    const consumer = c.consume(q, { prefetch: 10 });
    await until(() => consumer.receivedCount === 5, 'five pushes');
    await c.close();
    await consumer.closed;
    const got: string[] = [];
    for await (const m of consumer) got.push(m.text());
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('refuses a second consumer of one queue on one client', async () => {
    const c = await open();
    const q = fresh();
    const first = c.consume(q);
    expect(() => c.consume(q)).toThrow(AlreadySubscribedError);
    await first.close();
    const again = c.consume(q, { max: 1 });
    await c.put(q, 'x');
    for await (const m of again) expect(m.text()).toBe('x');
    await c.close();
  });

  it('shares a queue between two clients: disjoint, together complete', async () => {
    const a = await open();
    const b = await open();
    const p = await open();
    const q = fresh();
    const ga: string[] = [];
    const gb: string[] = [];
    const ca = a.consume(q, (m) => void ga.push(m.text()), { prefetch: 4 });
    const cb = b.consume(q, (m) => void gb.push(m.text()), { prefetch: 4 });
    await until(async () => (await p.queues()).find((x) => x.name === q)?.consumers === 2, 'two consumers');
    for (let i = 0; i < 500; i++) void p.put(q, `m${i}`);
    await until(() => ga.length + gb.length === 500, 'all messages');
    expect(ga.length).toBeGreaterThan(0);
    expect(gb.length).toBeGreaterThan(0);
    expect(ga.filter((m) => gb.includes(m))).toEqual([]);
    const num = (m: string) => Number(m.slice(1));
    expect(ga.map(num)).toEqual([...ga.map(num)].sort((x, y) => x - y));
    expect(gb.map(num)).toEqual([...gb.map(num)].sort((x, y) => x - y));
    await Promise.all([ca.close(), cb.close()]);
    await Promise.all([a.close(), b.close(), p.close()]);
  });
});

describe('server errors', () => {
  it('rejects with TooLargeError in reject mode and the connection stays usable', async () => {
    const strict = await startServer(['--oversize', 'reject']);
    const c = await open(strict);
    try {
      const err = await c.put('q', Buffer.alloc(10_241)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TooLargeError);
      expect(err).toMatchObject({ code: 'TOO_LARGE', name: 'TooLargeError' });
      expect(await c.put('q', Buffer.alloc(10_240))).toBe(10_240);
      expect(await c.len('q')).toBe(1);
    } finally {
      await c.close();
      await strict.stop();
    }
  });

  it('rejects with FullError when the server memory cap is reached', async () => {
    const small = await startServer(['--max-queued-bytes', '1000']);
    const c = await open(small);
    try {
      expect(await c.put('q', Buffer.alloc(900))).toBe(900);
      await expect(c.put('q', Buffer.alloc(900))).rejects.toThrow(FullError);
      expect(await c.len('q')).toBe(1);
    } finally {
      await c.close();
      await small.stop();
    }
  });
});

describe('connection errors and closing', () => {
  it('rejects with TooManyConnectionsError when the server is at its connection cap', async () => {
    const capped = await startServer(['--max-connections', '1']);
    const first = await open(capped);
    try {
      await first.ping();
      const second = await open(capped);
      const err = await second.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TooManyConnectionsError);
      expect(err).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
      await expect(second.ping()).rejects.toThrow(ConnectionError);
      await second.close();
      expect(await first.ping()).toBeGreaterThanOrEqual(0);
    } finally {
      await first.close();
      await capped.stop();
    }
  });

  it('rejects with ProtocolError and closes when the peer does not speak the protocol', async () => {
    // Not a beuss server: a peer answering garbage, as a wrong port would.
    const peer = net.createServer((s) => s.on('data', () => s.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    try {
      const c = await connect({ host: '127.0.0.1', port: (peer.address() as net.AddressInfo).port });
      const err = await c.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProtocolError);
      expect(err).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
      expect(c.isClosed).toBe(true);
      await expect(c.len('q')).rejects.toThrow(ProtocolError);
    } finally {
      await new Promise<void>((r) => peer.close(() => r()));
    }
  });

  it('rejects connect with ConnectionError ECONNREFUSED when nothing listens', async () => {
    const gone = await startServer();
    const port = gone.port;
    await gone.stop();
    const err = await connect({ host: '127.0.0.1', port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', host: '127.0.0.1', port });
  });

  it('takes host and port from BHOST/BPORT', async () => {
    const c = await connect({ env: { BHOST: srv.host, BPORT: String(srv.port) } });
    expect(c.options).toMatchObject({ host: srv.host, port: srv.port });
    await c.ping();
    await c.close();
  });

  it('rejects every pending call with ConnectionError when the server is killed', async () => {
    const doomed = await startServer();
    const c = await open(doomed);
    const q = fresh();
    const consumer = c.consume(q, { prefetch: 1 });
    await until(async () => (await c.queues()).some((x) => x.consumers === 1), 'the consumer');
    const nextMessage = consumer[Symbol.asyncIterator]().next();
    const waiting = c.get('other', { wait: 30_000 });
    // Pipelined behind the waiting GET: they cannot be answered before it.
    const behind = [c.len('x'), c.ping(), c.put('x', 'y')];
    // Looked at below, after the server is gone; mark them handled now.
    for (const p of [nextMessage, waiting, ...behind]) (p as Promise<unknown>).catch(() => {});
    await until(async () => {
      const w = await connect({ host: doomed.host, port: doomed.port });
      const s = await w.stats();
      await w.close();
      return s.waiting === 1;
    }, 'the GET to wait');
    await doomed.stop('SIGKILL');
    for (const p of [waiting, ...behind]) {
      const err = await (p as Promise<unknown>).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
    }
    await expect(consumer.closed).rejects.toThrow(ConnectionError);
    await expect(nextMessage).rejects.toThrow(ConnectionError);
    expect(await c.closed()).toBeInstanceOf(ConnectionError);
    await expect(c.ping()).rejects.toThrow(ConnectionError);
    expect(c.isClosed).toBe(true);
    await c.close();
  });

  it('close() waits for the replies of calls already made', async () => {
    const c = await open();
    const q = fresh();
    const puts = Array.from({ length: 100 }, (_, i) => c.put(q, `m${i}`));
    await c.close();
    expect(await Promise.all(puts)).toEqual(puts.map((_, i) => `m${i}`.length));
    await expect(c.put(q, 'late')).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(await c.closed()).toBeNull();
    const check = await open();
    expect(await check.len(q)).toBe(100);
    await check.close();
  });

  it('close({ force: true }) rejects pending calls with CONNECTION_CLOSED', async () => {
    const c = await open();
    const watcher = await open();
    const waiting = c.get(fresh(), { wait: 30_000 });
    waiting.catch(() => {});
    // A PING on the same connection would queue behind the waiting GET: watch from another one.
    await until(async () => (await watcher.stats()).waiting === 1, 'the GET to wait');
    await watcher.close();
    await c.close({ force: true });
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect((err as Error).message).toMatch(/force/);
  });
});
