// publish/subscribe, delayed puts and schedules in the client library, against
// a real beuss-server on a free loopback port.
import { describe, expect, it } from 'vitest';
import {
  AlreadySubscribedError,
  BadScheduleError,
  type ChannelEvent,
  type Client,
  connect,
  ConnectionError,
  InvalidArgumentError,
  NoScheduleError,
} from '../../src/index.js';
import { type Frame, ReplyParser } from '../../src/client/parser.js';
import { startServer, useServer } from '../helpers/server.js';
import { eventually } from '../server/util.js';

const srv = useServer();
let n = 0;
const fresh = (base = 'rm') => `${base}-${++n}`;
const open = () => connect({ host: srv.host, port: srv.port });

describe('the reply parser reads channel pushes', () => {
  it('EVENT and DROPPED, whole and one byte at a time', () => {
    const wire = Buffer.from('EVENT news 5\r\nhel\nl\r\nDROPPED news 7\r\nOK 2\r\nEVENT n\xc3\xa9 0\r\n\r\n', 'latin1');
    const want: Frame[] = [
      { type: 'EVENT', channel: 'news', data: Buffer.from('hel\nl') },
      { type: 'DROPPED', channel: 'news', count: 7 },
      { type: 'OK', args: ['2'] },
      { type: 'EVENT', channel: 'né', data: Buffer.alloc(0) },
    ];
    for (const step of [wire.length, 1]) {
      const got: Frame[] = [];
      const p = new ReplyParser((f) => got.push(f));
      for (let i = 0; i < wire.length; i += step) p.feed(wire.subarray(i, i + step));
      expect(got).toEqual(want);
    }
    expect(() => new ReplyParser(() => {}).feed(Buffer.from('DROPPED news x\r\n'))).toThrow(/malformed DROPPED/);
    expect(() => new ReplyParser(() => {}).feed(Buffer.from('EVENT news\r\n'))).toThrow(/malformed event/);
  });
});

describe('publish and subscribe', () => {
  it('5 subscribers each get every message of 1 publisher, in order', async () => {
    const ch = fresh('ch');
    const subscribers = await Promise.all([1, 2, 3, 4, 5].map(() => open()));
    const subs = subscribers.map((c) => c.subscribe(ch));
    await Promise.all(subs.map((s) => s.ready));
    const pub = await open();
    const count = 300;
    const receivers = await Promise.all(Array.from({ length: count }, (_, i) => pub.publish(ch, `m${i}`)));
    expect(receivers.every((r) => r === 5)).toBe(true);
    await Promise.all(
      subs.map(async (s) => {
        const got: string[] = [];
        for await (const ev of s) {
          got.push(ev.text());
          expect(ev.channel).toBe(ch);
          expect(ev.droppedBefore).toBe(0);
          if (got.length === count) break; // unsubscribes
        }
        expect(got).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
      }),
    );
    // Every loop ended with break: nobody listens any more, nothing is kept.
    expect(await pub.publish(ch, 'late')).toBe(0);
    await Promise.all([...subscribers, pub].map((c) => c.close()));
  });

  it('a handler gets events one at a time; close() unsubscribes; one subscription per channel', async () => {
    const ch = fresh('ch');
    const c = await open();
    const seen: string[] = [];
    const sub = c.subscribe(ch, async (ev: ChannelEvent) => {
      await new Promise((r) => setTimeout(r, 1));
      seen.push(ev.text());
    });
    expect(() => c.subscribe(ch)).toThrow(AlreadySubscribedError);
    await sub.ready;
    const p = await open();
    for (let i = 0; i < 20; i++) await p.publish(ch, String(i));
    await eventually(() => seen.length === 20, '20 events handled');
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    await sub.close();
    await sub.closed;
    expect(await p.publish(ch, 'x')).toBe(0);
    // The channel is free again on this client.
    const again = c.subscribe(ch);
    await again.ready;
    expect(await p.publish(ch, 'y')).toBe(1);
    await again.close();
    await Promise.all([c.close(), p.close()]);
  });

  it('a slow reader loses its oldest events past maxBuffered, and is told how many', async () => {
    const ch = fresh('ch');
    const c = await open();
    const sub = c.subscribe(ch, { maxBuffered: 5 });
    await sub.ready;
    const p = await open();
    for (let i = 0; i < 20; i++) await p.publish(ch, String(i));
    await eventually(() => sub.receivedCount === 20, '20 events received');
    expect(sub.dropped).toBe(15);
    const got: ChannelEvent[] = [];
    for await (const ev of sub) {
      got.push(ev);
      if (got.length === 5) break;
    }
    expect(got.map((e) => e.text())).toEqual(['15', '16', '17', '18', '19']);
    expect(got.map((e) => e.droppedBefore)).toEqual([15, 0, 0, 0, 0]);
    await Promise.all([c.close(), p.close()]);
  });

  it('a subscription can be iterated once; a handler that throws rejects closed and unsubscribes', async () => {
    const c = await open();
    const p = await open();
    const iterated = c.subscribe(fresh('ch'));
    iterated[Symbol.asyncIterator]();
    expect(() => iterated[Symbol.asyncIterator]()).toThrow(InvalidArgumentError);
    await iterated.close();
    const ch = fresh('ch');
    const failing = c.subscribe(ch, () => {
      throw new Error('handler failed');
    });
    expect(() => failing[Symbol.asyncIterator]()).toThrow(/only once, and not when it has a handler/);
    await failing.ready;
    expect(await p.publish(ch, 'boom')).toBe(1);
    await expect(failing.closed).rejects.toThrow('handler failed');
    expect(await p.publish(ch, 'after')).toBe(0);
    await Promise.all([c.close(), p.close()]);
  });

  it('hands out the events received before the client was closed, then ends', async () => {
    const ch = fresh('ch');
    const c = await open();
    const p = await open();
    const sub = c.subscribe(ch);
    await sub.ready;
    for (let i = 0; i < 3; i++) await p.publish(ch, `e${i}`);
    await eventually(() => sub.receivedCount === 3, '3 events received');
    await c.close();
    await sub.closed;
    const got: string[] = [];
    for await (const ev of sub) got.push(ev.text());
    expect(got).toEqual(['e0', 'e1', 'e2']);
    await p.close();
  });

  it('rejects a waiting next() and closed with ConnectionError when the connection is lost', async () => {
    const doomed = await startServer();
    const c = await connect({ host: doomed.host, port: doomed.port });
    const sub = c.subscribe(fresh('ch'));
    await sub.ready;
    const waiting = sub[Symbol.asyncIterator]().next();
    waiting.catch(() => {});
    await doomed.stop('SIGKILL');
    await expect(waiting).rejects.toBeInstanceOf(ConnectionError);
    await expect(sub.closed).rejects.toBeInstanceOf(ConnectionError);
    await c.close();
  });

  it('rejects bad arguments before sending', async () => {
    const c = await open();
    expect(() => c.subscribe('bad name')).toThrow(/space/);
    expect(() => c.subscribe('x', { maxBuffered: 0 })).toThrow(InvalidArgumentError);
    await expect(c.publish('bad name', 'x')).rejects.toThrow(/space/);
    await c.close();
  });
});

describe('delayed puts', () => {
  it('delay and at keep a message invisible until its time', async () => {
    const c: Client = await open();
    const q = fresh();
    expect(await c.put(q, 'later', { delay: '3s' })).toBe(5);
    expect(await c.put(q, 'sooner', { at: new Date(Date.now() + 2000) })).toBe(6);
    expect(await c.len(q)).toBe(0);
    expect(await c.get(q)).toBeNull();
    const info = (await c.queues()).find((x) => x.name === q)!;
    expect(info.scheduled).toBe(2);
    expect(info.ready).toBe(0);
    expect((await c.get(q, { wait: 10_000 }))?.toString()).toBe('sooner');
    expect((await c.get(q, { wait: 10_000 }))?.toString()).toBe('later');
    await c.close();
  });

  it('bad delays and times are InvalidArgumentError', async () => {
    const c = await open();
    await expect(c.put('q', 'x', { delay: 'soon' })).rejects.toThrow(InvalidArgumentError);
    await expect(c.put('q', 'x', { delay: -1 })).rejects.toThrow(InvalidArgumentError);
    await expect(c.put('q', 'x', { at: '2026-12-01 08:00' })).rejects.toThrow(/ISO-8601/);
    await expect(c.put('q', 'x', { delay: 5, at: 5 })).rejects.toThrow(/not both/);
    await c.close();
  });
});

describe('schedules', () => {
  it('add, list, fire, remove', async () => {
    const c = await open();
    const name = fresh('sched');
    const q = fresh();
    const before = Date.now();
    const next = await c.scheduleAdd(name, q, '@every 1s', 'tick');
    // As in test/server/roadmap.test.ts: the server's wall time is its
    // monotonic clock plus an offset from Date.now(), both floored to whole
    // ms, so it may trail this process by 1-2 ms.
    expect(next.getTime()).toBeGreaterThanOrEqual(before + 1000 - 2);
    const list = await c.schedules();
    expect(list.find((s) => s.name === name)).toMatchObject({ name, queue: q, spec: '@every 1s', fired: 0 });
    expect((await c.get(q, { wait: 10_000 }))?.toString()).toBe('tick');
    await c.scheduleRemove(name);
    await expect(c.scheduleRemove(name)).rejects.toBeInstanceOf(NoScheduleError);
    expect((await c.schedules()).some((s) => s.name === name)).toBe(false);
    const daily = await c.scheduleAdd(name, q, 'TZ=America/New_York 0 9 * * *');
    const hm = new Intl.DateTimeFormat('en-GB', { timeZone: 'America/New_York', hour: '2-digit', minute: '2-digit' }).format(daily);
    expect(hm).toBe('09:00');
    await c.scheduleRemove(name);
    await c.close();
  });

  it('a bad spec is BadScheduleError with the reason; a multi-line spec never leaves the client', async () => {
    const c = await open();
    const err = await c.scheduleAdd('s', 'q', '0 25 * * *').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadScheduleError);
    expect((err as Error).message).toMatch(/hour/);
    await expect(c.scheduleAdd('s', 'q', '0 1 * * *\nx')).rejects.toBeInstanceOf(InvalidArgumentError);
    await c.close();
  });
});
