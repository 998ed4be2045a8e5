// Payload integrity and order through the real server: binary payloads,
// frames split one byte at a time, 100,000 pipelined messages, and the
// oversize modes at the limit.
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server';
import { Client, eventually, put, rng } from './util';

const server = useServer({ cleanExit: true });

/** Returns a payload holding every byte value 0-255, then the bytes of frames that must not be parsed. */
function allBytes(): Buffer {
  const b = Buffer.alloc(512);
  for (let i = 0; i < 512; i++) b[i] = i & 255;
  return Buffer.concat([b, Buffer.from('\r\nPUT x 1\r\ny\r\n\n\r\0MSG 3\r\n')]);
}

describe('payloads', () => {
  it('a payload holding every byte value comes back identical through GET, PEEK and PUSH', async () => {
    const c = await Client.connect(server.port);
    const p = allBytes();
    expect((await c.request(put('bin', p))).line).toBe(`OK ${p.length}`);
    const peek = await c.request('PEEK bin\r\n');
    expect(peek.line).toBe(`MSG ${p.length}`);
    expect(peek.payload!.equals(p)).toBe(true);
    const get = await c.request('GET bin\r\n');
    expect(get.payload!.equals(p)).toBe(true);
    expect((await c.request('ON bin\r\n')).line).toBe('OK');
    await c.send(put('bin', p));
    const frames = [await c.next(), await c.next()];
    const push = frames.find((f) => f.line.startsWith('PUSH'))!;
    expect(frames.map((f) => f.line).sort()).toEqual([`OK ${p.length}`, `PUSH bin ${p.length}`].sort());
    expect(push.payload!.equals(p)).toBe(true);
    c.destroy();
  });

  it('frames written one byte at a time are parsed as if sent whole', async () => {
    const c = await Client.connect(server.port);
    const p = allBytes();
    const bytes = Buffer.concat([put('drip', p), Buffer.from('LEN drip\n'), Buffer.from('GET drip\r\n'), Buffer.from('PING\r\n')]);
    for (let i = 0; i < bytes.length; i++) {
      await c.send(bytes.subarray(i, i + 1));
      // Yield to the event loop so that each byte leaves in its own segment.
      if (i % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await c.line()).toBe(`OK ${p.length}`);
    expect(await c.line()).toBe('OK 1');
    const get = await c.next();
    expect(get.line).toBe(`MSG ${p.length}`);
    expect(get.payload!.equals(p)).toBe(true);
    expect(await c.line()).toBe('PONG');
    c.destroy();
  });

  it('answers a transcript sent in random splits exactly as the same transcript sent whole', async () => {
    const next = rng(2026);
    /** Returns the transcript for queue q and the number of replies it asks for. */
    const transcript = (q: string): [Buffer, number] => {
      const r = rng(7); // the same requests for both connections
      const parts: Buffer[] = [];
      let replies = 0;
      for (let i = 0; i < 400; i++) {
        const k = r() % 8;
        if (k < 3) {
          const p = Buffer.alloc(r() % 300);
          for (let j = 0; j < p.length; j++) p[j] = r() & 255;
          parts.push(put(q, p));
        } else if (k === 3) parts.push(Buffer.from(`GET ${q}\r\n`));
        else if (k === 4) parts.push(Buffer.from(`PEEK ${q}\n`));
        else if (k === 5) parts.push(Buffer.from(`LEN ${q}\r\n`));
        else if (k === 6) parts.push(Buffer.from(`  ping \r\n\r\n`));
        else parts.push(Buffer.from(`NOPE ${q}\r\n`));
        replies++;
      }
      return [Buffer.concat(parts), replies];
    };
    const [whole, n] = transcript('split-a');
    const [split] = transcript('split-b');
    const a = await Client.connect(server.port);
    const b = await Client.connect(server.port);
    await a.send(whole);
    for (let off = 0; off < split.length; ) {
      const len = 1 + (next() % 97);
      await b.send(split.subarray(off, off + len));
      off += len;
      if (next() % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    await a.until(() => a.frames.length === n, `${n} replies on the whole connection`);
    await b.until(() => b.frames.length === n, `${n} replies on the split connection`);
    const norm = (c: Client) => c.frames.map((f) => `${f.line.replace(/split-[ab]/, 'Q')}|${f.payload?.toString('hex') ?? ''}`);
    expect(norm(b)).toEqual(norm(a));
    a.destroy();
    b.destroy();
  });

  it('keeps FIFO order over 100,000 pipelined PUTs, read back by pipelined GETs', async () => {
    const N = 100_000;
    const c = await Client.connect(server.port);
    let oks = 0;
    let bad = '';
    c.onFrame = (f) => {
      if (f.line === 'OK 12') oks++;
      else bad ||= f.line;
      return true;
    };
    const batch: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      batch.push(put('fifo', `seq:${String(i).padStart(8, '0')}`));
      if (batch.length === 2000) {
        await c.send(Buffer.concat(batch));
        batch.length = 0;
      }
    }
    await c.until(() => oks === N || bad !== '', `${N} OK replies`, 60_000);
    expect(bad).toBe('');
    expect((await Client.connect(server.port).then(async (o) => {
      const f = await o.request('LEN fifo\r\n');
      o.destroy();
      return f.line;
    }))).toBe(`OK ${N}`);
    let next = 0;
    c.onFrame = (f) => {
      if (f.line !== 'MSG 12' || f.payload!.toString() !== `seq:${String(next).padStart(8, '0')}`) bad ||= `${next}: ${f.line} ${f.payload?.toString()}`;
      next++;
      return true;
    };
    const gets = Buffer.from('GET fifo\r\n'.repeat(5000));
    for (let i = 0; i < N / 5000; i++) await c.send(gets);
    await c.until(() => next === N || bad !== '', `${N} MSG replies`, 60_000);
    expect(bad).toBe('');
    c.onFrame = undefined;
    expect((await c.request('GET fifo\r\n')).line).toBe('EMPTY');
    c.destroy();
  });

  it('keeps FIFO order while a producer and an ON consumer run at the same time', async () => {
    const N = 50_000;
    const prod = await Client.connect(server.port);
    const cons = await Client.connect(server.port);
    expect((await cons.request(`ON live CREDIT ${N}\r\n`)).line).toBe('OK');
    let next = 0;
    let bad = '';
    cons.onFrame = (f) => {
      if (f.line !== 'PUSH live 6' || f.payload!.readUInt32BE(1) !== next) bad ||= `${next}: ${f.line}`;
      next++;
      return true;
    };
    let oks = 0;
    prod.onFrame = (f) => {
      if (f.line === 'OK 6') oks++;
      else bad ||= f.line;
      return true;
    };
    for (let i = 0; i < N; i += 1000) {
      const b: Buffer[] = [];
      for (let j = i; j < i + 1000; j++) {
        const p = Buffer.alloc(6);
        p[0] = 0xff;
        p.writeUInt32BE(j, 1);
        p[5] = 0x0a;
        b.push(put('live', p));
      }
      await prod.send(Buffer.concat(b));
    }
    await cons.until(() => next === N || bad !== '', `${N} pushes`, 60_000);
    await prod.until(() => oks === N || bad !== '', `${N} OKs`, 60_000);
    expect(bad).toBe('');
    prod.destroy();
    cons.destroy();
  });
});

describe('oversize memory', () => {
  it('holds at most the maximum of a 64 MiB payload while it streams in (truncate)', async () => {
    const c = await Client.connect(server.port);
    const obs = await Client.connect(server.port);
    const TOTAL = 64 * 1024 * 1024;
    const piece = Buffer.alloc(1024 * 1024, 'b');
    const mem0 = Number((await obs.stats()).memory);
    await c.send(`PUT stream ${TOTAL}\r\n`);
    for (let sent = 0; sent < TOTAL / 2; sent += piece.length) await c.send(piece);
    // Half the payload is in: the engine holds the first 10240 bytes, not 32 MiB.
    await eventually(async () => Number((await obs.stats()).memory) - mem0 > 10240, 'the server to start the payload');
    const mid = Number((await obs.stats()).memory) - mem0;
    expect(mid).toBeLessThan(1024 * 1024);
    for (let sent = TOTAL / 2; sent < TOTAL; sent += piece.length) await c.send(piece);
    await c.send('\r\n');
    expect(await c.line()).toBe('OK 10240');
    const f = await c.request('GET stream\r\n');
    expect(f.payload!.equals(Buffer.alloc(10240, 'b'))).toBe(true);
    c.destroy();
    obs.destroy();
  });
});

describe.each(['truncate', 'reject'] as const)('oversize %s at the limit', (mode) => {
  const MAX = 100;
  const s = useServer({ args: ['--max-message-size', String(MAX), '--oversize', mode], cleanExit: true });

  it('stores one under and exactly the maximum whole', async () => {
    const c = await Client.connect(s.port);
    const under = Buffer.alloc(MAX - 1, 'u');
    const at = Buffer.alloc(MAX, 'a');
    expect((await c.request(put('lim', under))).line).toBe(`OK ${MAX - 1}`);
    expect((await c.request(put('lim', at))).line).toBe(`OK ${MAX}`);
    expect((await c.request('GET lim\r\n')).payload!.equals(under)).toBe(true);
    expect((await c.request('GET lim\r\n')).payload!.equals(at)).toBe(true);
    c.destroy();
  });

  it(mode === 'truncate' ? 'keeps the first bytes of one over and says how many' : 'refuses one over and stays usable', async () => {
    const c = await Client.connect(s.port);
    const over = Buffer.alloc(MAX + 1, 'o');
    over[MAX] = 'Z'.charCodeAt(0);
    // A big oversize payload too, whose tail looks like requests.
    const huge = Buffer.concat([Buffer.alloc(MAX, 'h'), Buffer.from('\r\nPING\r\n'.repeat(20_000))]);
    await c.send(Buffer.concat([put('lim2', over), put('lim2', huge), Buffer.from('LEN lim2\r\nPING\r\n')]));
    if (mode === 'truncate') {
      expect(await c.line()).toBe(`OK ${MAX}`);
      expect(await c.line()).toBe(`OK ${MAX}`);
      expect(await c.line()).toBe('OK 2');
      expect(await c.line()).toBe('PONG');
      const a = await c.request('GET lim2\r\n');
      expect(a.payload!.equals(over.subarray(0, MAX))).toBe(true);
      const b = await c.request('GET lim2\r\n');
      expect(b.payload!.equals(huge.subarray(0, MAX))).toBe(true);
      const st = await c.stats();
      expect(st.truncated).toBe('2');
    } else {
      expect(await c.line()).toMatch(/^ERR TOO_LARGE \S/);
      expect(await c.line()).toMatch(/^ERR TOO_LARGE \S/);
      expect(await c.line()).toBe('OK 0');
      expect(await c.line()).toBe('PONG');
      const st = await c.stats();
      expect(st.rejected_large).toBe('2');
      expect(st.oversize).toBe('reject');
    }
    expect(c.available()).toBe(0);
    expect((await c.request(put('lim2', 'fine'))).line).toBe('OK 4');
    c.destroy();
  });
});
