// Waiting, pushing and flow control through the real server: GET WAIT,
// several ON consumers of one queue, a consumer that stops reading, and the
// cap on queued bytes.
import { describe, expect, it } from 'vitest';
import { startServer, useServer } from '../helpers/server';
import { expectCleanExit, onLinux } from '../helpers/platform';
import { checkNumberedMsgs, Client, eventually, numberedPuts, put } from './util';

const server = useServer({ cleanExit: true });

async function waitingCount(c: Client): Promise<number> {
  return Number((await c.stats()).waiting);
}

describe('GET WAIT', () => {
  it('is answered by a later PUT from another connection, and holds back the requests pipelined after it', async () => {
    const a = await Client.connect(server.port);
    const b = await Client.connect(server.port);
    await a.send('GET gw WAIT 30000\r\nPING\r\n');
    await eventually(async () => (await waitingCount(b)) === 1, 'the GET to wait');
    expect(a.available()).toBe(0);
    expect((await b.request(put('gw', 'wake up'))).line).toBe('OK 7');
    const f = await a.next();
    expect(f.line).toBe('MSG 7');
    expect(f.payload!.toString()).toBe('wake up');
    expect(await a.line()).toBe('PONG');
    expect((await b.request('LEN gw\r\n')).line).toBe('OK 0');
    a.destroy();
    b.destroy();
  });

  it('regression: a WAIT longer than 2^31-1 ms does not make the server timer spin', async () => {
    const a = await Client.connect(server.port);
    const b = await Client.connect(server.port);
    await a.send('GET farwait WAIT 4000000000\r\n');
    await eventually(async () => (await waitingCount(b)) === 1, 'the GET to wait');
    // Node clamps such a delay to 1 ms and warns each time it is armed.
    await new Promise((r) => setTimeout(r, 200));
    expect(server.output()).not.toContain('TimeoutOverflowWarning');
    expect((await b.request(put('farwait', 'late'))).line).toBe('OK 4');
    expect((await a.next()).line).toBe('MSG 4');
    a.destroy();
    b.destroy();
  });

  it('answers EMPTY when its time runs out, then serves the next requests', async () => {
    const a = await Client.connect(server.port);
    await a.send('GET expire WAIT 150\r\nPING\r\n');
    expect(await a.line()).toBe('EMPTY');
    expect(await a.line()).toBe('PONG');
    expect((await a.request('GET expire WAIT 0\r\n')).line).toBe('EMPTY');
    a.destroy();
  });

  it('one server timer serves many deadlines: every waiter gets its EMPTY, a PUT goes to the first in line', async () => {
    const p = await Client.connect(server.port);
    const waiters = await Promise.all(Array.from({ length: 40 }, () => Client.connect(server.port)));
    // Deadlines from 50 ms to 440 ms, started roughly in reverse order of expiry.
    for (let i = waiters.length - 1; i >= 0; i--) await waiters[i]!.send(`GET timers WAIT ${50 + i * 10}\r\n`);
    await eventually(async () => (await waitingCount(p)) === 40 || waiters[0]!.available() > 0, 'the GETs to wait');
    await p.send(put('timers', 'for the first in line'));
    expect(await p.line()).toBe('OK 21');
    const lines = await Promise.all(waiters.map((w) => w.line()));
    // One waiter got the message (the order among waiters is checked by the
    // next test, with each wait confirmed before the next starts); every
    // other one got EMPTY when its own deadline passed.
    const got = lines.filter((l) => l === 'MSG 21');
    expect(got.length + lines.filter((l) => l === 'EMPTY').length).toBe(40);
    expect(got.length).toBeLessThanOrEqual(1);
    if (got.length === 0) expect((await p.request('LEN timers\r\n')).line).toBe('OK 1');
    for (const w of waiters) w.destroy();
    p.destroy();
  });

  it('serves several waiting GETs in the order they started waiting', async () => {
    const a = await Client.connect(server.port);
    const b = await Client.connect(server.port);
    const p = await Client.connect(server.port);
    await a.send('GET order WAIT 30000\r\n');
    await eventually(async () => (await waitingCount(p)) === 1, 'a to wait');
    await b.send('GET order WAIT 30000\r\n');
    await eventually(async () => (await waitingCount(p)) === 2, 'b to wait');
    await p.send(Buffer.concat([put('order', 'first'), put('order', 'second')]));
    expect((await a.next()).payload!.toString()).toBe('first');
    expect((await b.next()).payload!.toString()).toBe('second');
    a.destroy();
    b.destroy();
    p.destroy();
  });

  it('a waiting client that disconnects takes no message', async () => {
    const a = await Client.connect(server.port);
    const p = await Client.connect(server.port);
    await a.send('GET gone WAIT 30000\r\n');
    await eventually(async () => (await waitingCount(p)) === 1, 'a to wait');
    a.destroy();
    await eventually(async () => (await waitingCount(p)) === 0, 'the server to drop the wait');
    expect((await p.request(put('gone', 'kept'))).line).toBe('OK 4');
    expect((await p.request('LEN gone\r\n')).line).toBe('OK 1');
    p.destroy();
  });
});

describe('ON consumers', () => {
  it('two consumers of one queue get disjoint sets whose union is everything, each in order', async () => {
    const N = 20_000;
    const c1 = await Client.connect(server.port);
    const c2 = await Client.connect(server.port);
    const prod = await Client.connect(server.port);
    const got: number[][] = [[], []];
    let bad = '';
    [c1, c2].forEach((c, k) => {
      c.onFrame = (f) => {
        if (f.line.startsWith('PUSH ')) {
          got[k]!.push(Number(f.payload!.toString()));
          return true;
        }
        if (f.line !== 'OK') bad ||= f.line;
        return false;
      };
    });
    await c1.send(`ON shared CREDIT ${N}\r\n`);
    await c2.send(`ON shared CREDIT ${N}\r\n`);
    expect(await c1.line()).toBe('OK');
    expect(await c2.line()).toBe('OK');
    let oks = 0;
    prod.onFrame = (f) => {
      if (f.line.startsWith('OK ')) oks++;
      else bad ||= f.line;
      return true;
    };
    for (let i = 0; i < N; i += 1000) {
      const b: Buffer[] = [];
      for (let j = i; j < i + 1000; j++) b.push(put('shared', String(j)));
      await prod.send(Buffer.concat(b));
    }
    await prod.until(() => oks === N, `${N} OKs`, 60_000);
    await eventually(() => got[0]!.length + got[1]!.length === N || bad !== '', `${N} pushes in all`, 60_000);
    expect(bad).toBe('');
    for (const g of got) {
      expect(g.length).toBeGreaterThan(0);
      for (let i = 1; i < g.length; i++) if (g[i]! <= g[i - 1]!) throw new Error(`out of order: ${g[i - 1]} then ${g[i]}`);
    }
    const all = [...got[0]!, ...got[1]!].sort((x, y) => x - y);
    expect(all.length).toBe(N);
    for (let i = 0; i < N; i++) if (all[i] !== i) throw new Error(`message ${i} missing or duplicated`);
    c1.destroy();
    c2.destroy();
    prod.destroy();
  });

  it('a consumer that stops reading leaves the messages queued in the engine, not in socket buffers', async () => {
    const N = 60_000;
    const SIZE = 1000;
    const s = await startServer();
    try {
      const cons = await Client.connect(s.port);
      const prod = await Client.connect(s.port);
      const obs = await Client.connect(s.port);
      expect((await cons.request(`ON stall CREDIT ${N}\r\n`)).line).toBe('OK');
      // From now on the consumer never reads: its socket is paused.
      cons.socket.pause();
      // RSS comes from /proc/<pid>/status: measured and checked on Linux only.
      const rss0 = onLinux ? s.rss() : 0;
      let oks = 0;
      let bad = '';
      prod.onFrame = (f) => {
        if (f.line === `OK ${SIZE}`) oks++;
        else bad ||= f.line;
        return true;
      };
      const payload = Buffer.alloc(SIZE, 'm');
      for (let i = 0; i < N; i += 500) {
        const b: Buffer[] = [];
        for (let j = 0; j < 500; j++) b.push(put('stall', payload));
        await prod.send(Buffer.concat(b));
      }
      await prod.until(() => oks === N || bad !== '', `${N} OKs`, 60_000);
      expect(bad).toBe('');
      const st = await obs.stats();
      const queuedBytes = Number(st.bytes);
      const pushed = Number(st.pushed);
      const len = Number((await obs.request('LEN stall\r\n')).line.split(' ')[1]);
      // Only what the socket buffers could take was pushed; the rest waits in the queue.
      expect(len + pushed).toBe(N);
      expect(len).toBeGreaterThan(N / 2);
      expect(queuedBytes).toBe(len * SIZE);
      // The server grew by about what the engine holds, not by a second copy
      // in user-space socket buffers (the margin covers input chunks not yet
      // collected by the GC).
      if (onLinux) {
        const growth = s.rss() - rss0;
        expect(growth).toBeLessThan(queuedBytes * 1.5 + 32 * 1024 * 1024);
      }
      // The consumer reads again and gets everything, in order.
      let got = 0;
      cons.onFrame = (f) => {
        if (f.line !== `PUSH stall ${SIZE}`) bad ||= f.line;
        got++;
        return true;
      };
      cons.socket.resume();
      await cons.until(() => got === N || bad !== '', `${N} pushes`, 60_000);
      expect(bad).toBe('');
      expect((await obs.request('LEN stall\r\n')).line).toBe('OK 0');
      cons.destroy();
      prod.destroy();
      obs.destroy();
    } finally {
      expectCleanExit(await s.stop());
    }
  });

  it('a pipelined burst of GETs larger than the output high-water mark is answered completely and in order', async () => {
    const N = 3000;
    const SIZE = 2000;
    const c = await Client.connect(server.port);
    let oks = 0;
    c.onFrame = (f) => {
      if (f.line === `OK ${SIZE}`) oks++;
      return true;
    };
    for (let i = 0; i < N; i += 500) await c.send(numberedPuts('burst', i, 500, SIZE, 'g'));
    await c.until(() => oks === N, `${N} OKs`, 60_000);
    const got = checkNumberedMsgs(c, SIZE);
    // 6 MB of replies from one 30 KB write: the engine pauses itself at its high-water mark.
    await c.send('GET burst\r\n'.repeat(N));
    await c.until(() => got.next === N || got.bad !== '', `${N} MSGs`, 60_000);
    expect(got.bad).toBe('');
    c.destroy();
  });
});

describe('a client that does not read its replies', () => {
  it('is stopped by TCP backpressure once its replies back up, and gets all of them when it reads again', async () => {
    const N = 1_000_000;
    const s = await startServer();
    try {
      const c = await Client.connect(s.port);
      const obs = await Client.connect(s.port);
      const errors = async () => Number((await obs.stats()).protocol_errors);
      // RSS comes from /proc/<pid>/status: measured and checked on Linux only.
      const rss0 = onLinux ? s.rss() : 0;
      c.socket.pause();
      // 3 MB of requests whose replies weigh 40 MB: more than the kernel's socket buffers hold.
      c.socket.write('X\r\n'.repeat(N));
      let last = -1;
      await eventually(async () => {
        const n = await errors();
        const stable = n === last;
        last = n;
        return stable;
      }, 'the server to stop running requests', 30_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await errors()).toBe(last);
      expect(last).toBeLessThan(N);
      // The replies it could not send are not piled up in the server's memory.
      if (onLinux) expect(s.rss() - rss0).toBeLessThan(24 * 1024 * 1024);
      let got = 0;
      let bad = '';
      c.onFrame = (f) => {
        if (!f.line.startsWith('ERR UNKNOWN_COMMAND ')) bad ||= f.line;
        got++;
        return true;
      };
      c.socket.resume();
      await c.until(() => got === N || bad !== '', `${N} replies`, 60_000);
      expect(bad).toBe('');
      expect(await errors()).toBe(N);
      c.destroy();
      obs.destroy();
    } finally {
      expectCleanExit(await s.stop());
    }
  });
});

describe('queued bytes cap', () => {
  it('refuses a PUT past --max-queued-bytes with FULL, and accepts again once there is room', async () => {
    const s = await startServer(['--max-queued-bytes', '1000']);
    try {
      const c = await Client.connect(s.port);
      const p = Buffer.alloc(600, 'f');
      expect((await c.request(put('cap', p))).line).toBe('OK 600');
      expect((await c.request(put('cap', p))).line).toMatch(/^ERR FULL \S/);
      expect((await c.request('LEN cap\r\n')).line).toBe('OK 1');
      expect((await c.request(put('cap', Buffer.alloc(400, 'x')))).line).toBe('OK 400');
      expect((await c.request('GET cap\r\n')).line).toBe('MSG 600');
      expect((await c.request(put('cap', p))).line).toBe('OK 600');
      const st = await c.stats();
      expect(st.rejected_full).toBe('1');
      expect(st.max_queued_bytes).toBe('1000');
      c.destroy();
    } finally {
      expectCleanExit(await s.stop());
    }
  });
});
