// Connection handling of the real server: many idle connections, the
// connection cap, clients that vanish mid-frame or send garbage, while
// another client is served throughout.
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startServer, useServer } from '../helpers/server';
import { expectCleanExit } from '../helpers/platform';
import { Wire } from '../helpers/wire';
import { Client, eventually, numberedPuts, put, rng, useWitness } from './util';

const server = useServer({ cleanExit: true });
const witness = useWitness(server);

/** Checks that the witness connection, open throughout, is still served correctly. */
async function witnessStillServed(tag: string): Promise<void> {
  expect((await witness().request(put(`w-${tag}`, tag))).line).toBe(`OK ${tag.length}`);
  const f = await witness().request(`GET w-${tag}\r\n`);
  expect(f.line).toBe(`MSG ${tag.length}`);
  expect(f.payload!.toString()).toBe(tag);
}

async function connections(): Promise<number> {
  return Number((await witness().stats()).connections);
}

function openRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('connections', () => {
  it('holds 1,000 idle connections while another client works', async () => {
    const base = await connections();
    const idle: net.Socket[] = [];
    try {
      for (let i = 0; i < 1000; i += 100) {
        idle.push(...(await Promise.all(Array.from({ length: 100 }, () => openRaw(server.port)))));
      }
      await eventually(async () => (await connections()) === base + 1000, 'the server to count 1,000 more connections');
      await witnessStillServed('busy');
      const c = await Client.connect(server.port);
      const batch = Buffer.concat(Array.from({ length: 1000 }, (_, i) => put('amid-idle', String(i))));
      await c.send(batch);
      for (let i = 0; i < 1000; i++) expect(await c.line()).toBe(`OK ${String(i).length}`);
      expect((await c.request('LEN amid-idle\r\n')).line).toBe('OK 1000');
      c.destroy();
      // The idle ones are still alive and served.
      const probe = idle[500]!;
      const pong = new Promise<string>((resolve) => probe.once('data', (d) => resolve(d.toString())));
      probe.write('PING\r\n');
      expect(await pong).toBe('PONG\r\n');
    } finally {
      for (const s of idle) s.destroy();
    }
    await eventually(async () => (await connections()) === base, 'the server to forget the idle connections');
  });

  it('a client that disconnects mid-frame stores nothing and disturbs no one', async () => {
    const w = await Wire.connect(server.port);
    w.send('PUT midframe 100\r\nonly thirty bytes of a hundred');
    const c = await Client.connect(server.port);
    expect((await c.request('PING\r\n')).line).toBe('PONG');
    const base = await connections();
    w.end();
    await eventually(async () => (await connections()) < base, 'the server to see the disconnect');
    expect((await witness().request('LEN midframe\r\n')).line).toBe('OK 0');
    // Disconnecting mid-header too.
    const w2 = await Wire.connect(server.port);
    w2.send('PU');
    w2.end();
    c.destroy();
    await witnessStillServed('after-midframe');
  });

  it('random garbage gets errors or a clean close, never a crash, and others are still served', async () => {
    const next = rng(0xbe055);
    for (let round = 0; round < 8; round++) {
      const w = await Wire.connect(server.port);
      const g = Buffer.alloc(16 * 1024);
      for (let i = 0; i < g.length; i++) {
        const r = next();
        // Mostly printable with spaces and line ends, so that lines parse and fail in many ways.
        g[i] = r % 10 === 0 ? 10 : r % 10 === 1 ? 32 : r % 10 === 2 ? r >>> 24 : 33 + ((r >>> 8) % 94);
      }
      w.send(g);
      w.send('\r\nPING\r\n');
      // The server either answers (ERR lines, maybe a PONG) or closes; it must do one of them.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 300);
        w.socket.once('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
      for (const line of w.pending().toString('latin1').split('\r\n')) {
        if (line === '' || line === 'PONG' || line === 'EMPTY' || line.startsWith('OK')) continue;
        if (/^(MSG|DATA) \d+$/.test(line)) continue;
        if (line.startsWith('ERR ')) {
          expect(line).toMatch(/^ERR (LINE_TOO_LONG|BAD_FRAME|BAD_NUMBER|UNKNOWN_COMMAND|BAD_ARGS|BAD_QUEUE_NAME|TOO_LARGE|NOT_SUBSCRIBED|ALREADY_SUBSCRIBED) /);
        }
      }
      w.end();
      await witnessStillServed(`garbage-${round}`);
    }
  });

  it('a client that shuts its side after sending still gets every reply it is owed, then a close', async () => {
    const N = 2000;
    const SIZE = 1500;
    const c = await Client.connect(server.port);
    // 3 MB of replies to GETs sent with the FIN: more than the engine's high-water mark.
    await c.send(Buffer.concat([numberedPuts('halfclose', 0, N, SIZE, 'h'), Buffer.from('GET halfclose\r\n'.repeat(N)), Buffer.from('PING\r\n')]));
    c.socket.end();
    await c.closedByServer(30_000);
    const lines = c.frames.map((f) => f.line);
    expect(lines.slice(0, N).every((l) => l === `OK ${SIZE}`)).toBe(true);
    const msgs = c.frames.slice(N, 2 * N);
    expect(msgs.every((f, i) => f.line === `MSG ${SIZE}` && f.payload!.readUInt32BE(0) === i)).toBe(true);
    expect(lines.slice(2 * N)).toEqual(['PONG']);
  });

  it('stays up when a client resets the connection with unread replies', async () => {
    const s = await openRaw(server.port);
    s.write('GET x\r\n'.repeat(50_000));
    s.resetAndDestroy();
    await witnessStillServed('after-reset');
  });
});

describe('connection cap', () => {
  it('answers TOO_MANY_CONNECTIONS over --max-connections and closes; a freed slot is usable again', async () => {
    const s = await startServer(['--max-connections', '3']);
    try {
      const ok = await Promise.all([Client.connect(s.port), Client.connect(s.port), Client.connect(s.port)]);
      for (const c of ok) expect((await c.request('PING\r\n')).line).toBe('PONG');
      const over = await Wire.connect(s.port);
      expect(await over.line()).toMatch(/^ERR TOO_MANY_CONNECTIONS \S/);
      await over.closedByServer();
      // The served ones are unaffected.
      expect((await ok[0]!.request('PING\r\n')).line).toBe('PONG');
      ok[2]!.destroy();
      await eventually(async () => Number((await ok[0]!.stats()).connections) === 2, 'the server to free a slot');
      const again = await Client.connect(s.port);
      expect((await again.request('PING\r\n')).line).toBe('PONG');
      again.destroy();
      ok[0]!.destroy();
      ok[1]!.destroy();
    } finally {
      expectCleanExit(await s.stop());
    }
  });
});
