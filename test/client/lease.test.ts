// The client's at-least-once API (get with a lease, LeasedMessage.ack/nack/touch,
// consume with a lease, work) against a real beuss-server.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, LeasedMessage, UnknownLeaseError } from '../../src/index.js';
import { useServer } from '../helpers/server.js';
import { eventually } from '../server/util.js';

const srv = useServer();
let n = 0;
const fresh = (base = 'lq') => `${base}-${++n}`;

describe('get with a lease', () => {
  it('resolves with a LeasedMessage that ack() deletes and nack() gives back with a higher count', async () => {
    const c = await srv.connect();
    const q = fresh();
    await c.put(q, 'job');
    const m = await c.get(q, { lease: 30_000 });
    expect(m).toBeInstanceOf(LeasedMessage);
    expect([m!.text(), m!.deliveries, m!.queue]).toEqual(['job', 1, q]);
    expect(await c.stats(q)).toMatchObject({ ready: 0, leased: 1, dead_queue: `${q}.dead` });
    await m!.touch(60_000);
    await m!.nack();
    expect(m!.settled).toBe(true);
    const again = await c.get(q, { lease: 30_000 });
    expect([again!.text(), again!.deliveries]).toEqual(['job', 2]);
    expect(again!.id).not.toBe(m!.id);
    await again!.ack();
    await expect(again!.ack()).rejects.toBeInstanceOf(UnknownLeaseError);
    expect(await c.get(q, { lease: 1000 })).toBeNull();
    expect(await c.stats(q)).toMatchObject({ ready: 0, leased: 0 });
  });

  it('nack({ delay }) keeps the message away for the delay, maxDeliver dead-letters it', async () => {
    const c = await srv.connect();
    const q = fresh();
    await c.put(q, 'later');
    const m = (await c.get(q, { lease: 30_000, maxDeliver: 2 }))!;
    await m.nack({ delay: 2000 });
    expect(await c.get(q, { lease: 30_000 })).toBeNull();
    const m2 = (await c.get(q, { lease: 30_000, maxDeliver: 2, wait: 5000 }))!;
    expect([m2.text(), m2.deliveries]).toEqual(['later', 2]);
    await m2.nack();
    expect(await c.len(`${q}.dead`)).toBe(1);
    expect((await c.queues()).find((x) => x.name === q)).toMatchObject({ dead: 1, leased: 0 });
  });

  it('refuses bad arguments before sending', async () => {
    const c = await srv.connect();
    await expect(c.get('q', { lease: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(c.get('q', { maxDeliver: 3 } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => c.consume('q', { maxDeliver: 3 })).toThrow(InvalidArgumentError);
  });
});

describe('consume with a lease', () => {
  it('holds at most prefetch unacknowledged messages; each ack lets one more in', async () => {
    const c = await srv.connect();
    const p = await srv.connect();
    const q = fresh();
    for (let i = 0; i < 10; i++) await p.put(q, `m${i}`);
    const held: LeasedMessage[] = [];
    const consumer = c.consume(q, { lease: 30_000, prefetch: 3 });
    const it = consumer[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) held.push((await it.next()).value as LeasedMessage);
    await eventually(async () => (await p.stats(q)).leased === 3, '3 leased');
    // The iterator has handed out 3 and nothing was acked: the server pushes no more.
    await new Promise((r) => setTimeout(r, 100));
    expect((await p.stats(q)).leased).toBe(3);
    await held[0].ack();
    await eventually(async () => (await p.stats(q)).ready === 6, 'one more pushed after the ack');
    await consumer.close();
    expect(held.map((m) => m.text())).toEqual(['m0', 'm1', 'm2']);
  });

  it('gives back (NACKs) the messages it drops on close', async () => {
    const c = await srv.connect();
    const p = await srv.connect();
    const q = fresh();
    for (let i = 0; i < 5; i++) await p.put(q, `d${i}`);
    const consumer = c.consume(q, { lease: 60_000, prefetch: 5 });
    const it = consumer[Symbol.asyncIterator]();
    const first = (await it.next()).value as LeasedMessage;
    await eventually(async () => (await p.stats(q)).leased === 5, '5 leased');
    await consumer.close();
    await first.ack();
    await eventually(async () => (await p.stats(q)).ready === 4, 'the 4 dropped messages back');
    expect((await p.stats(q)).leased).toBe(0);
    expect((await p.get(q))!.toString()).toBe('d1');
  });
});

describe('work', () => {
  it('acknowledges when the handler resolves, retries when it throws, dead-letters after maxDeliver', async () => {
    const c = await srv.connect();
    const p = await srv.connect();
    const q = fresh();
    for (const s of ['a', 'boom', 'b']) await p.put(q, s);
    const seen: Array<[string, number]> = [];
    const errors: string[] = [];
    const w = c.work(
      q,
      async (m) => {
        seen.push([m.text(), m.deliveries]);
        if (m.text() === 'boom') throw new Error('no');
      },
      { maxDeliver: 2, onError: (e) => errors.push((e as Error).message) },
    );
    await eventually(async () => (await p.len(`${q}.dead`)) === 1 && seen.length === 4, 'the work to finish');
    await w.close();
    expect(seen).toEqual([['a', 1], ['boom', 1], ['boom', 2], ['b', 1]]);
    expect(errors).toEqual(['no', 'no']);
    await eventually(async () => (await p.stats(q)).leased === 0, 'acks');
    expect(await p.stats(q)).toMatchObject({ ready: 0, leased: 0, dead: 1 });
  });
});
