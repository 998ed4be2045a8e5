// The native binding through its typed wrapper (src/native.ts): the output
// Buffer and index format, flags, statuses, constants and argument checks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Engine, EngineError, engineConstants } from '../../src/native';
import { ROOT } from '../helpers/server';

interface Out {
  conn: number;
  data: string;
  flags: number;
}

/** Returns the entries of an engine call's output, decoded from its Buffer and index. */
function entries(e: Engine, out: Buffer | undefined): Out[] {
  const ix = e.index;
  if (out === undefined) {
    expect(ix[0]).toBe(0);
    return [];
  }
  const res: Out[] = [];
  let end = 0;
  for (let i = 0; i < ix[0]!; i++) {
    const p = 2 + 4 * i;
    const [conn, off, len, flags] = [ix[p]!, ix[p + 1]!, ix[p + 2]!, ix[p + 3]!];
    // Entries are laid out one after the other, covering the whole Buffer.
    expect(off).toBe(end);
    end = off + len;
    res.push({ conn, data: out.subarray(off, off + len).toString('latin1'), flags });
  }
  expect(end).toBe(out.length);
  return res;
}

describe('native engine binding', () => {
  it('exports the constants of native/include/beuss.h, read from C', () => {
    const header = fs.readFileSync(path.join(ROOT, 'native', 'include', 'beuss.h'), 'utf8');
    const k = engineConstants() as unknown as Record<string, number>;
    let checked = 0;
    for (const m of header.matchAll(/^#define BEUSS_([A-Z_]+) ([^/\n]+)/gm)) {
      const name = m[1]!;
      if (!(name in k)) continue;
      // The header's values are simple C constant expressions (1024u * 1024u, 0x3FFFFFFFu).
      const value = Function(`return (${m[2]!.replace(/(\d|[a-fA-F])u\b/g, '$1')})`)() as number;
      expect(k[name], name).toBe(value);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(12);
    expect(k.OK).toBe(0);
    expect(k.EOVERFLOW).toBe(-4);
  });

  it('returns one Buffer and an index for every connection concerned, or undefined', () => {
    const e = new Engine({}, 0);
    const a = e.open();
    const b = e.open();
    expect(entries(e, e.feed(a, Buffer.from('ON q CREDIT 5\r\n'), 1))).toEqual([{ conn: a, data: 'OK\r\n', flags: 0 }]);
    // An incomplete request produces nothing.
    expect(e.feed(b, Buffer.from('PUT q 3\r\nab'), 2)).toBeUndefined();
    expect(e.index[0]).toBe(0);
    const out = entries(e, e.feed(b, Buffer.from('c\r\n'), 3));
    expect(out).toHaveLength(2);
    expect(out).toContainEqual({ conn: a, data: 'PUSH q 3\r\nabc\r\n', flags: 0 });
    expect(out).toContainEqual({ conn: b, data: 'OK 3\r\n', flags: 0 });
    expect(e.status).toBe(0);
    e.free();
  });

  it('reads the chunk in place during the call only: reusing the Buffer afterwards changes nothing', () => {
    const e = new Engine({}, 0);
    const a = e.open();
    const chunk = Buffer.from('PUT q 5\r\nhel');
    e.feed(a, chunk, 1);
    chunk.fill(0x21);
    const out = entries(e, e.feed(a, Buffer.from('lo\r\nGET q\r\n'), 2));
    expect(out).toEqual([{ conn: a, data: 'OK 5\r\nMSG 5\r\nhello\r\n', flags: 0 }]);
    e.free();
  });

  it('pause stops pushes to a connection and resume delivers what is owed', () => {
    const e = new Engine({}, 0);
    const k = e.constants;
    const a = e.open();
    const b = e.open();
    e.feed(a, Buffer.from('ON q CREDIT 10\r\n'), 1);
    e.pause(a);
    expect(entries(e, e.feed(b, Buffer.from('PUT q 1\r\nx\r\n'), 2))).toEqual([{ conn: b, data: 'OK 1\r\n', flags: 0 }]);
    const out = entries(e, e.resume(a, 3));
    expect(out.map((o) => o.data).join('')).toBe('PUSH q 1\r\nx\r\n');
    expect(out.every((o) => (o.flags & k.OUT_FULL) === 0)).toBe(true);
    e.free();
  });

  it('reports OUT_FULL at the output high-water mark and OUT_CLOSE after QUIT', () => {
    const e = new Engine({ outputHighWater: 64 }, 0);
    const k = e.constants;
    const a = e.open();
    let out = entries(e, e.feed(a, Buffer.from('PING\r\n'.repeat(100) + 'QUIT\r\n'), 1));
    expect(out[0]!.flags & k.OUT_FULL).toBe(k.OUT_FULL);
    let all = out[0]!.data;
    for (let i = 0; i < 100 && !(out[0]!.flags & k.OUT_CLOSE); i++) {
      out = entries(e, e.resume(a, 2));
      all += out[0]!.data;
    }
    expect(all).toBe('PONG\r\n'.repeat(100) + 'OK\r\n');
    expect(out[0]!.flags & k.OUT_CLOSE).toBe(k.OUT_CLOSE);
    e.free();
  });

  it('reports OUT_WAITING during a GET WAIT, schedules the deadline and answers EMPTY on tick', () => {
    const e = new Engine({}, 1000);
    const k = e.constants;
    const a = e.open();
    expect(e.nextDeadline()).toBe(-1);
    const w = entries(e, e.feed(a, Buffer.from('GET q WAIT 250\r\nPING\r\n'), 1000));
    expect(w).toEqual([{ conn: a, data: '', flags: k.OUT_WAITING }]);
    expect(e.nextDeadline()).toBe(1250);
    expect(e.tick(1100)).toBeUndefined();
    expect(entries(e, e.tick(1250))).toEqual([{ conn: a, data: 'EMPTY\r\nPONG\r\n', flags: 0 }]);
    expect(e.nextDeadline()).toBe(-1);
    e.free();
  });

  it('grows the index when one call concerns more connections than it holds', () => {
    const e = new Engine({}, 0);
    const ids = Array.from({ length: 200 }, () => e.open());
    for (const id of ids) e.feed(id, Buffer.from('GET many WAIT 10\r\n'), 0);
    const before = e.index;
    const out = entries(e, e.tick(10));
    expect(e.index).not.toBe(before);
    expect(out.map((o) => o.conn).sort((x, y) => x - y)).toEqual(ids);
    expect(out.every((o) => o.data === 'EMPTY\r\n' && o.flags === 0)).toBe(true);
    e.free();
  });

  it('survives a caller detaching the index array (it is replaced, never written through a stale pointer)', () => {
    const e = new Engine({}, 0);
    const a = e.open();
    const old = e.index;
    const buf = old.buffer as ArrayBuffer;
    structuredClone(buf, { transfer: [buf] });
    expect(old.length === 0).toBe(true);
    expect(entries(e, e.feed(a, Buffer.from('PING\r\n'), 1))).toEqual([{ conn: a, data: 'PONG\r\n', flags: 0 }]);
    expect(e.index === old).toBe(false);
    e.free();
  });

  it('leaves EOVERFLOW in status when a paused connection is fed past its bound, and closes it', () => {
    const e = new Engine({}, 0);
    const k = e.constants;
    const a = e.open();
    e.pause(a);
    const chunk = Buffer.alloc(64 * 1024, 'P');
    let st = 0;
    let flags = 0;
    for (let fed = 0; fed <= k.MAX_PENDING_INPUT + chunk.length && st === 0; fed += chunk.length) {
      const out = entries(e, e.feed(a, chunk, 1));
      st = e.status;
      for (const o of out) flags |= o.flags;
    }
    expect(st).toBe(k.EOVERFLOW);
    expect(flags & k.OUT_CLOSE).toBe(k.OUT_CLOSE);
    e.close(a, 2);
    e.free();
  });

  it('throws EngineError ENOCONN for an unknown connection, TypeError for bad arguments', () => {
    const e = new Engine({}, 0);
    expect(() => e.feed(7, Buffer.from('PING\r\n'), 0)).toThrow(EngineError);
    let code = '';
    try {
      e.close(9, 0);
    } catch (err) {
      code = (err as EngineError).code;
    }
    expect(code).toBe('ENOCONN');
    const a = e.open();
    expect(() => e.feed(a, 'PING' as unknown as Buffer, 0)).toThrow(/chunk must be a Buffer/);
    expect(() => e.feed(a, Buffer.alloc(1), -1)).toThrow(/now must be a non-negative integer/);
    expect(() => e.feed(-1, Buffer.alloc(1), 0)).toThrow(/connection id/);
    expect(() => new Engine({ maxLine: 10 })).toThrow(/maxLine must be an integer >= 300/);
    expect(() => new Engine({ maxMessageSize: 0 })).toThrow(/maxMessageSize/);
    expect(() => new Engine({ oversize: 'drop' as 'reject' })).toThrow(/oversize/);
    e.free();
    expect(() => e.stats()).toThrow(/freed/);
  });

  it('loads and runs in several worker threads at once (no global state in the addon)', async () => {
    // Plain CommonJS in the worker, loading the compiled loader the server uses.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { Engine } = require(workerData.loader);
      const e = new Engine({}, 0);
      const a = e.open();
      let out = '';
      for (let i = 0; i < 1000; i++) {
        const b = e.feed(a, Buffer.from('PUT w' + workerData.n + ' 3\\r\\nabc\\r\\n'), 1);
        if (b) out = b.toString();
      }
      const stats = e.stats();
      e.free();
      parentPort.postMessage({ out, puts: stats.puts, messages: stats.messages });
    `;
    const loader = path.join(ROOT, 'dist', 'cjs', 'native.js');
    const results = await Promise.all(
      [1, 2, 3].map(
        (n) =>
          new Promise<{ out: string; puts: number; messages: number }>((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { loader, n } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) expect(r).toEqual({ out: 'OK 3\r\n', puts: 1000, messages: 1000 });
  });

  it('stats() counts what went through', () => {
    const e = new Engine({ maxMessageSize: 4, oversize: 'truncate', maxQueuedBytes: 100 }, 0);
    const a = e.open();
    e.feed(a, Buffer.from('PUT q 6\r\nabcdef\r\nPUT q 2\r\nxy\r\nGET q\r\nNOPE\r\n'), 1);
    expect(e.stats()).toMatchObject({
      connections: 1, queues: 1, messages: 1, bytes: 2, puts: 2, taken: 1, truncated: 1, protocolErrors: 1,
    });
    expect(e.stats().memory).toBeGreaterThan(0);
    e.free();
  });
});

describe('native engine binding: reused output and partial feeds', () => {
  /** Returns each entry's bytes as text; the reused Buffer may be longer than its entries. */
  const texts = (e: Engine, out: Buffer | undefined): string[] => {
    const ix = e.index;
    const res: string[] = [];
    for (let i = 0; i < ix[0]!; i++) {
      const p = 2 + 4 * i;
      res.push(out!.subarray(ix[p + 1]!, ix[p + 1]! + ix[p + 2]!).toString('latin1'));
    }
    return res;
  };

  it('reuseOutput returns one Buffer from call to call until releaseOutput, which leaves the old one intact', () => {
    const e = new Engine({ reuseOutput: true }, 0);
    const a = e.open();
    const first = e.feed(a, Buffer.from('PING\r\n'), 0)!;
    expect(texts(e, first)).toEqual(['PONG\r\n']);
    const second = e.feed(a, Buffer.from('PUT q 3\r\nabc\r\n'), 0)!;
    expect(second).toBe(first);
    expect(texts(e, second)).toEqual(['OK 3\r\n']);
    const kept = Buffer.from(second.subarray(0, 6));
    e.releaseOutput();
    const third = e.feed(a, Buffer.from('GET q\r\n'), 0)!;
    expect(third).not.toBe(second);
    expect(texts(e, third)).toEqual(['MSG 3\r\nabc\r\n']);
    // The released Buffer was not written again.
    expect(second.subarray(0, 6)).toEqual(kept);
    e.free();
  });

  it('without reuseOutput every call returns a Buffer of its own, of the output\'s exact size', () => {
    const e = new Engine({}, 0);
    const a = e.open();
    const first = e.feed(a, Buffer.from('PING\r\n'), 0)!;
    const second = e.feed(a, Buffer.from('PING\r\n'), 0)!;
    expect(second).not.toBe(first);
    expect([first.length, first.toString()]).toEqual([6, 'PONG\r\n']);
    e.free();
  });

  it('an output larger than the reused Buffer may grow to comes in a Buffer of its own', () => {
    const e = new Engine({ reuseOutput: true, maxMessageSize: 1 << 20, outputHighWater: 4 << 20 }, 0);
    const a = e.open();
    const small = e.feed(a, Buffer.from('PING\r\n'), 0)!;
    const big = Buffer.alloc(600 * 1024, 0x61);
    e.feed(a, Buffer.concat([Buffer.from(`PUT big ${big.length}\r\n`), big, Buffer.from('\r\n')]), 0);
    const out = e.feed(a, Buffer.from('GET big\r\n'), 0)!;
    expect(out).not.toBe(small);
    const [reply] = texts(e, out);
    expect(reply!.length).toBe(`MSG ${big.length}\r\n`.length + big.length + 2);
    // Releasing after an output of its own keeps the small reused one,
    // which nothing new refers to, for small outputs.
    e.releaseOutput();
    expect(e.feed(a, Buffer.from('PING\r\n'), 0)).toBe(small);
    // After no output at all, likewise.
    expect(e.feed(a, Buffer.alloc(0), 0)).toBeUndefined();
    e.releaseOutput();
    expect(e.feed(a, Buffer.from('PING\r\n'), 0)).toBe(small);
    e.free();
  });

  it('feed(id, chunk, now, length) reads only the first length bytes, and checks length', () => {
    const e = new Engine({}, 0);
    const a = e.open();
    const chunk = Buffer.from('PING\r\nGARBAGE WITH NO LINE END');
    expect(entries(e, e.feed(a, chunk, 0, 6)).map((x) => x.data)).toEqual(['PONG\r\n']);
    // What lay past length was never seen: the connection is in sync.
    expect(entries(e, e.feed(a, Buffer.from('PING\r\n'), 0)).map((x) => x.data)).toEqual(['PONG\r\n']);
    expect(() => e.feed(a, chunk, 0, chunk.length + 1)).toThrow(RangeError);
    expect(() => e.feed(a, chunk, 0, -1)).toThrow(RangeError);
    expect(() => e.feed(a, chunk, 0, 1.5)).toThrow(RangeError);
    expect(() => new Engine({ reuseOutput: 1 as unknown as boolean }, 0)).toThrow(TypeError);
    e.free();
  });
});
