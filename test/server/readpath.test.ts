// How the server reads and writes sockets: every connection is read into
// one shared buffer and the engine's output Buffer is reused from call to
// call. These check that no byte is lost or overwritten when a client's
// socket cannot take its replies at once (the output Buffer is then still
// referred to by a pending write), and that the fallback read path (Node's
// 'data' events, for runtimes where a server socket cannot be given a
// buffer) serves the same protocol.
import { describe, expect, it } from 'vitest';
import { useInProcessServer } from '../helpers/in-process';
import { startServer, useServer } from '../helpers/server';
import { onLinux } from '../helpers/platform';
import { Wire } from '../helpers/wire';
import { eventually } from './util';

/** Returns the payload of message i: its number, then filler that depends on it. */
function body(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0x41 + (i % 26));
  b.write(String(i).padStart(8, '0'), 0, 'latin1');
  return b;
}

const put = (q: string, data: Buffer) => Buffer.concat([Buffer.from(`PUT ${q} ${data.length}\r\n`), data, Buffer.from('\r\n')]);

describe('shared read buffer and reused output', () => {
  const server = useServer();

  it('a client that reads late gets every reply intact while another client keeps the server busy', async () => {
    const N = 120_000;
    const SIZE = 200; // about 25 MB of replies: more than loopback socket buffers hold
    const loader = await Wire.connect(server.port);
    const batch: Buffer[] = [];
    for (let i = 0; i < N; i++) batch.push(put('late', body(i, SIZE)));
    loader.send(Buffer.concat(batch));
    for (let i = 0; i < N; i++) expect(await loader.line()).toBe(`OK ${SIZE}`);

    // The late reader asks for everything and does not read for a while:
    // its replies pile up in its socket while the busy client is served.
    const late = await Wire.connect(server.port);
    late.socket.pause();
    late.send('GET late\r\n'.repeat(N));
    const busy = await Wire.connect(server.port);
    // Its replies are large too, so that they cover whatever part of the
    // output Buffer a pending write of the late reader still refers to.
    for (let round = 0; round < 20; round++) {
      const items = Array.from({ length: 1000 }, (_, i) => body(round * 1000 + i, 200));
      busy.send(Buffer.concat([...items.map((d) => put('busy', d)), Buffer.from('GET busy\r\n'.repeat(1000))]));
      for (let i = 0; i < 1000; i++) expect(await busy.line()).toBe('OK 200');
      for (const d of items) {
        expect(await busy.line()).toBe('MSG 200');
        expect(await busy.payload(200)).toEqual(d);
      }
    }
    late.socket.resume();
    for (let i = 0; i < N; i++) {
      const line = await late.line(30_000);
      if (line !== `MSG ${SIZE}`) expect(`message ${i}: ${line}`).toBe(`message ${i}: MSG ${SIZE}`);
      const got = await late.payload(SIZE);
      if (!got.equals(body(i, SIZE))) expect(`message ${i}: ${got.toString('latin1', 0, 16)}`).toBe(`message ${i}: ${body(i, SIZE).toString('latin1', 0, 16)}`);
    }
    late.send('LEN late\r\n');
    expect(await late.line()).toBe('OK 0');
    for (const w of [loader, late, busy]) w.socket.destroy();
  });
});

describe("the 'data' event read path", () => {
  const srv = useInProcessServer({ readMode: 'data' });

  it('serves requests split at every byte and pipelined, in order', async () => {
    const w = await Wire.connect(srv.port);
    const req = Buffer.concat([put('dq', body(7, 300)), Buffer.from('GET dq\r\nPING\r\n')]);
    for (const byte of req) w.send(Buffer.from([byte]));
    expect(await w.line()).toBe('OK 300');
    expect(await w.line()).toBe('MSG 300');
    expect(await w.payload(300)).toEqual(body(7, 300));
    expect(await w.line()).toBe('PONG');
    const many = Buffer.concat(Array.from({ length: 5000 }, (_, i) => put('dq', body(i, 20))));
    w.send(many);
    for (let i = 0; i < 5000; i++) expect(await w.line()).toBe('OK 20');
    w.send('GET dq\r\n'.repeat(5000));
    for (let i = 0; i < 5000; i++) {
      expect(await w.line()).toBe('MSG 20');
      expect(await w.payload(20)).toEqual(body(i, 20));
    }
    w.socket.destroy();
  });
});

describe('freed memory', () => {
  // The server keeps memory freed while clients are active, for the next
  // messages, and gives it back once input has stopped for --memory-return
  // seconds. RSS is read from /proc, so this runs on Linux (glibc) only.
  const SIZE = 256 * 1024;
  const N = 400; // 100 MiB

  /** Queues then takes N messages of SIZE bytes, checking each; returns the server's RSS before and when full. */
  async function fillAndDrain(srv: { port: number; rss(): number }, w: Wire): Promise<{ before: number; full: number }> {
    const before = srv.rss();
    for (let i = 0; i < N; i += 20) {
      w.send(Buffer.concat(Array.from({ length: 20 }, (_, j) => put('big', body(i + j, SIZE)))));
      for (let j = 0; j < 20; j++) expect(await w.line()).toBe(`OK ${SIZE}`);
    }
    const full = srv.rss();
    for (let i = 0; i < N; i += 20) {
      w.send('GET big\r\n'.repeat(20));
      for (let j = 0; j < 20; j++) {
        expect(await w.line()).toBe(`MSG ${SIZE}`);
        expect((await w.payload(SIZE)).subarray(0, 8).toString('latin1')).toBe(String(i + j).padStart(8, '0'));
      }
    }
    return { before, full };
  }

  it.runIf(onLinux)('is kept for the next messages while the server has not been idle for --memory-return', async () => {
    const srv = await startServer(['--max-message-size', String(SIZE), '--memory-return', '3600']);
    try {
      const w = await Wire.connect(srv.port);
      const { before, full } = await fillAndDrain(srv, w);
      expect(full - before).toBeGreaterThan(N * SIZE * 0.9);
      // Several idle checks go by (one a second at most): nothing is given back before the hour.
      await new Promise((r) => setTimeout(r, 2500));
      expect(srv.rss()).toBeGreaterThan(before + (full - before) / 2);
      // The next fill reuses it: RSS grows by less than a quarter of the batch.
      await fillAndDrain(srv, w);
      expect(srv.rss()).toBeLessThan(full + (full - before) / 4);
      w.socket.destroy();
    } finally {
      await srv.stop();
    }
  });

  it.runIf(onLinux)('goes back to the system once the server is idle after a queue drains', async () => {
    const srv = await startServer(['--max-message-size', String(SIZE), '--memory-return', '1']);
    try {
      const w = await Wire.connect(srv.port);
      const { before, full } = await fillAndDrain(srv, w);
      expect(full - before).toBeGreaterThan(N * SIZE * 0.9);
      await eventually(() => srv.rss() < before + (full - before) / 4, `RSS to fall back near ${before} bytes (was ${full})`, 20_000);
      w.socket.destroy();
    } finally {
      await srv.stop();
    }
  });
});
