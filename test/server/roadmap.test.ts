// Fan-out channels, delayed messages, recurring schedules and idle queue
// removal, end to end against the real beuss-server process, checked on the
// wire against docs/PROTOCOL.md (version 2).
import { describe, expect, it } from 'vitest';
import { startServer, useServer } from '../helpers/server.js';
import { Client, eventually, pub, put, scheduleAdd } from './util.js';

const server = useServer();

/** Returns the QUEUES lines as name -> fields. */
async function queues(c: Client): Promise<Map<string, string[]>> {
  const f = await c.request('QUEUES\r\n');
  expect(f.line).toBe(`DATA ${f.payload!.length}`);
  const m = new Map<string, string[]>();
  for (const l of f.payload!.toString().split('\n')) {
    if (l === '') continue;
    const t = l.split(' ');
    m.set(t[0]!, t.slice(1));
  }
  return m;
}

describe('fan-out channels', () => {
  it('1 publisher, 5 subscribers: each receives every message, in order', async () => {
    const subs = await Promise.all([0, 1, 2, 3, 4].map(() => Client.connect(server.port)));
    for (const s of subs) expect((await s.request('SUB fan-news\r\n')).line).toBe('OK');
    const p = await Client.connect(server.port);
    const n = 500;
    const reqs: Buffer[] = [];
    for (let i = 0; i < n; i++) reqs.push(pub('fan-news', `message ${i}`));
    await p.send(Buffer.concat(reqs));
    for (let i = 0; i < n; i++) expect(await p.line()).toBe('OK 5');
    for (const s of subs) {
      for (let i = 0; i < n; i++) {
        const f = await s.next();
        expect(f.line).toBe(`EVENT fan-news ${`message ${i}`.length}`);
        expect(f.payload!.toString()).toBe(`message ${i}`);
      }
      expect(s.available()).toBe(0);
    }
    // UNSUB: no more events for that subscriber; the others still get them.
    expect((await subs[0]!.request('UNSUB fan-news\r\n')).line).toBe('OK');
    expect((await p.request(pub('fan-news', 'after'))).line).toBe('OK 4');
    for (const s of subs.slice(1)) expect((await s.next()).payload!.toString()).toBe('after');
    expect((await subs[0]!.request('PING\r\n')).line).toBe('PONG');
    for (const s of [...subs, p]) s.destroy();
  });

  it('keeps nothing when nobody listens; channels and queues are separate', async () => {
    const c = await Client.connect(server.port);
    expect((await c.request(pub('fan-void', 'lost'))).line).toBe('OK 0');
    expect((await c.request('SUB fan-void\r\n')).line).toBe('OK');
    expect((await c.request('LEN fan-void\r\n')).line).toBe('OK 0');
    expect(c.available()).toBe(0);
    expect((await c.request(put('fan-void', 'queued'))).line).toBe('OK 6');
    expect((await c.request('GET fan-void\r\n')).payload!.toString()).toBe('queued');
    await c.send(pub('fan-void', 'heard'));
    const ev = await c.next();
    expect(ev.line).toBe('EVENT fan-void 5');
    expect(await c.line()).toBe('OK 1');
    expect((await c.request('SUB fan-void\r\n')).line).toMatch(/^ERR ALREADY_SUBSCRIBED /);
    expect((await c.request('UNSUB nope\r\n')).line).toMatch(/^ERR NOT_SUBSCRIBED /);
    const s = await c.stats();
    expect(Number(s.channels)).toBeGreaterThanOrEqual(1);
    expect(Number(s.subscribers)).toBeGreaterThanOrEqual(1);
    c.destroy();
  });
});

describe('a subscriber that does not keep up', () => {
  // 3000 events of 8 KB (24 MB), far more than the socket buffers can hold,
  // so the stalled subscriber overflows its 200-event buffer. The publisher
  // sends batches of 100 and waits for the fast subscriber to read each
  // one, so the fast one is never 200 behind: it must lose nothing.
  const size = 8000;
  const total = 3000;
  const event = (i: number) => Buffer.concat([Buffer.from(`${String(i).padStart(8, '0')}:`), Buffer.alloc(size - 9, 97)]);

  it('drop-oldest: it gets DROPPED counts and the newest events in order; the others get all; memory stays bounded', async () => {
    const srv = await startServer(['--sub-buffer', '200']);
    try {
      const slow = await Client.connect(srv.port);
      const fast = await Client.connect(srv.port);
      let fastSeen = 0;
      fast.onFrame = (f) => {
        if (f.line.startsWith('EVENT ')) {
          expect(f.payload!.subarray(0, 8).toString()).toBe(String(fastSeen).padStart(8, '0'));
          fastSeen++;
          return true;
        }
        return false;
      };
      expect((await slow.request('SUB stall\r\n')).line).toBe('OK');
      expect((await fast.request('SUB stall\r\n')).line).toBe('OK');
      let seen = 0;
      let dropped = 0;
      let last = -1;
      slow.onFrame = (f) => {
        if (f.line.startsWith('DROPPED ')) {
          const [, ch, n] = f.line.split(' ');
          expect(ch).toBe('stall');
          dropped += Number(n);
        } else {
          expect(f.line).toBe(`EVENT stall ${size}`);
          const i = Number(f.payload!.subarray(0, 8).toString());
          // Whatever was skipped was announced by a DROPPED line before it.
          expect(i).toBe(seen + dropped);
          last = i;
          seen++;
        }
        return true;
      };
      slow.socket.pause();
      const p = await Client.connect(srv.port);
      let oks = 0;
      p.onFrame = (f) => {
        expect(f.line).toMatch(/^OK [12]$/);
        oks++;
        return true;
      };
      for (let i = 0; i < total; i += 100) {
        const batch: Buffer[] = [];
        for (let k = i; k < i + 100; k++) batch.push(pub('stall', event(k)));
        await p.send(Buffer.concat(batch));
        await fast.until(() => fastSeen >= i, 'the fast subscriber to keep up', 60_000);
      }
      await p.until(() => oks === total, 'every PUB answered', 60_000);
      await fast.until(() => fastSeen === total, 'the fast subscriber to get every event', 60_000);
      const st = await fast.stats();
      expect(Number(st.events_dropped)).toBeGreaterThan(0);
      // 24 MB were published; the engine holds at most its output bound and
      // 200 events (1.6 MB) for the stalled subscriber.
      expect(Number(st.memory)).toBeLessThan(4 * 1024 * 1024);

      slow.socket.resume();
      await slow.until(() => last === total - 1, 'the stalled subscriber to catch up', 60_000);
      expect(seen + dropped).toBe(total);
      expect(dropped).toBe(Number(st.events_dropped));
      for (const c of [slow, fast, p]) c.destroy();
    } finally {
      await srv.stop();
    }
  }, 120_000);

  it('disconnect: the stalled subscriber is closed, the others get every event', async () => {
    const srv = await startServer(['--sub-buffer', '200', '--sub-policy', 'disconnect']);
    try {
      const slow = await Client.connect(srv.port);
      const fast = await Client.connect(srv.port);
      let fastSeen = 0;
      fast.onFrame = (f) => (f.line.startsWith('EVENT ') ? (fastSeen++, true) : false);
      expect((await slow.request('SUB stall\r\n')).line).toBe('OK');
      expect((await fast.request('SUB stall\r\n')).line).toBe('OK');
      slow.socket.pause();
      const p = await Client.connect(srv.port);
      p.onFrame = () => true;
      for (let i = 0; i < 3000; i += 100) {
        const batch: Buffer[] = [];
        for (let k = i; k < i + 100; k++) batch.push(pub('stall', event(k)));
        await p.send(Buffer.concat(batch));
        await fast.until(() => fastSeen >= i, 'the fast subscriber to keep up', 60_000);
      }
      await fast.until(() => fastSeen === 3000, 'the fast subscriber to get every event', 60_000);
      slow.socket.resume();
      await slow.closedByServer(20_000);
      const st = await fast.stats();
      expect(st.subscribers).toBe('1');
      expect(st.sub_policy).toBe('disconnect');
      for (const c of [fast, p]) c.destroy();
    } finally {
      await srv.stop();
    }
  }, 120_000);
});

describe('delayed messages', () => {
  it('are invisible until their time, then join the queue in time order', async () => {
    const c = await Client.connect(server.port);
    const at = Date.now() + 2500;
    await c.send(Buffer.concat([
      Buffer.from('PUT dl-q 1 DELAY 3000\r\na\r\n'),
      Buffer.from('PUT dl-q 1 delay 2000\r\nb\r\n'),
      Buffer.from(`PUT dl-q 1 AT ${at}\r\nc\r\n`),
    ]));
    for (let i = 0; i < 3; i++) expect(await c.line()).toBe('OK 1');
    expect((await c.request('LEN dl-q\r\n')).line).toBe('OK 0');
    expect((await c.request('GET dl-q\r\n')).line).toBe('EMPTY');
    const q = await queues(c);
    expect(q.get('dl-q')).toEqual(['0', '0', '0', '3', '0']);
    const st = await c.request('STATS dl-q\r\n');
    expect(st.payload!.toString()).toContain('\nscheduled 3\n');
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await c.request('GET dl-q WAIT 10000\r\n');
      expect(f.line).toBe('MSG 1');
      got.push(f.payload!.toString());
    }
    expect(got).toEqual(['b', 'c', 'a']);
    expect((await c.stats()).scheduled).toBe('0');
    c.destroy();
  });

  it('bad times get clear errors and the connection stays in sync', async () => {
    const c = await Client.connect(server.port);
    expect((await c.request('PUT dl-bad 1 DELAY soon\r\nx\r\n')).line).toMatch(/^ERR BAD_NUMBER 'soon'/);
    expect((await c.request('PUT dl-bad 1 AT -5\r\nx\r\n')).line).toMatch(/^ERR BAD_NUMBER '-5'/);
    expect((await c.request('PUT dl-bad 1 WHEN 5\r\nx\r\n')).line).toMatch(/^ERR BAD_ARGS /);
    expect((await c.request('PUT dl-bad 1 DELAY\r\nx\r\n')).line).toMatch(/^ERR BAD_ARGS /);
    expect((await c.request('LEN dl-bad\r\n')).line).toBe('OK 0');
    c.destroy();
  });
});

describe('recurring schedules', () => {
  it('an @every 1s schedule puts its message each second until removed', async () => {
    const c = await Client.connect(server.port);
    const before = Date.now();
    const ok = await c.request(scheduleAdd('sch-tick', 'sch-q', '@every 1s', 'tick!'));
    expect(ok.line).toMatch(/^OK \d+$/);
    const next = Number(ok.line.split(' ')[1]);
    // The server's wall time is its monotonic clock plus an offset taken from
    // Date.now(), both floored to whole ms: it may trail this process by 1-2 ms.
    expect(next).toBeGreaterThanOrEqual(before + 1000 - 2);
    expect(next).toBeLessThanOrEqual(Date.now() + 1000 + 2);
    for (let i = 0; i < 2; i++) {
      const f = await c.request('GET sch-q WAIT 10000\r\n');
      expect(f.line).toBe('MSG 5');
      expect(f.payload!.toString()).toBe('tick!');
    }
    const ls = await c.request('SCHEDULE LS\r\n');
    const line = ls.payload!.toString().split('\n').find((l) => l.startsWith('sch-tick '))!;
    const [name, queue, nextMs, fired, ...spec] = line.split(' ');
    expect([name, queue, spec.join(' ')]).toEqual(['sch-tick', 'sch-q', '@every 1s']);
    expect(Number(nextMs)).toBeGreaterThan(next);
    expect(Number(fired)).toBeGreaterThanOrEqual(2);
    expect((await c.request('SCHEDULE RM sch-tick\r\n')).line).toBe('OK');
    expect((await c.request('SCHEDULE RM sch-tick\r\n')).line).toMatch(/^ERR NO_SCHEDULE /);
    c.destroy();
  });

  it('a cron schedule reports its next time in UTC or in the given zone', async () => {
    const c = await Client.connect(server.port);
    const ok = await c.request(scheduleAdd('sch-daily', 'sch-d', '0 8 * * *', ''));
    const next = new Date(Number(ok.line.split(' ')[1]));
    expect([next.getUTCHours(), next.getUTCMinutes(), next.getUTCSeconds()]).toEqual([8, 0, 0]);
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
    const paris = await c.request(scheduleAdd('sch-paris', 'sch-d', 'TZ=Europe/Paris 30 9 * * *', 'x'));
    const t = Number(paris.line.split(' ')[1]);
    const hm = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(new Date(t));
    expect(hm).toBe('09:30');
    expect((await c.request('SCHEDULE RM sch-daily\r\n')).line).toBe('OK');
    expect((await c.request('SCHEDULE RM sch-paris\r\n')).line).toBe('OK');
    c.destroy();
  });

  it('bad cron expressions get ERR BAD_SCHEDULE with the reason', async () => {
    const c = await Client.connect(server.port);
    const cases: Array<[string, RegExp]> = [
      ['61 * * * *', /minute/],
      ['* * *', /3 fields/],
      ['@fortnightly', /unknown shortcut/],
      ['@every 10ms', /minimum/],
      ['@every soon', /duration/],
      ['TZ=Nowhere/Land 0 8 * * *', /unknown time zone/],
      ['0 0 30 2 *', /never fires/],
    ];
    for (const [spec, why] of cases) {
      const f = await c.request(scheduleAdd('sch-bad', 'q', spec, 'x'));
      expect(f.line, spec).toMatch(/^ERR BAD_SCHEDULE /);
      expect(f.line, spec).toMatch(why);
    }
    const noSpec = Buffer.from('SCHEDULE ADD sch-bad q 3\r\nabc\r\n');
    expect((await c.request(noSpec)).line).toMatch(/^ERR BAD_SCHEDULE /);
    expect((await c.request('SCHEDULE LS\r\n')).line).toBe('DATA 0');
    c.destroy();
  });
});

describe('idle queues', () => {
  it('an unused empty queue is removed after --queue-idle, not before; never one with messages or a consumer', async () => {
    const srv = await startServer(['--queue-idle', '2']);
    try {
      const c = await Client.connect(srv.port);
      const consumer = await Client.connect(srv.port);
      expect((await c.request(put('idle-empty', 'x'))).line).toBe('OK 1');
      expect((await c.request('GET idle-empty\r\n')).line).toBe('MSG 1');
      expect((await c.request(put('idle-full', 'x'))).line).toBe('OK 1');
      expect((await consumer.request('ON idle-watched CREDIT 0\r\n')).line).toBe('OK');
      // Right after use, all three are listed.
      expect([...(await queues(c)).keys()]).toEqual(['idle-empty', 'idle-full', 'idle-watched']);
      await eventually(async () => !(await queues(c)).has('idle-empty'), 'idle-empty to be removed', 15_000);
      expect([...(await queues(c)).keys()]).toEqual(['idle-full', 'idle-watched']);
      const st = await c.stats();
      expect(st.queues_removed_idle).toBe('1');
      expect(st.queue_idle_ms).toBe('2000');
      // Once the consumer leaves, that queue goes too; the one with a message stays.
      consumer.destroy();
      await eventually(async () => !(await queues(c)).has('idle-watched'), 'idle-watched to be removed', 15_000);
      expect([...(await queues(c)).keys()]).toEqual(['idle-full']);
      c.destroy();
    } finally {
      await srv.stop();
    }
  }, 60_000);

  it('--queue-idle 0 keeps queues; a bad value is a usage error', async () => {
    const srv = await startServer([], { BQUEUEIDLE: '0' });
    try {
      const c = await Client.connect(srv.port);
      expect((await c.stats()).queue_idle_ms).toBe('0');
      c.destroy();
    } finally {
      await srv.stop();
    }
    await expect(startServer(['--queue-idle', 'soon'])).rejects.toThrow(/--queue-idle: expected an integer/);
  });
});
