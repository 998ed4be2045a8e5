// Churn and abuse next to real work: while one producer and one consumer move
// 100,000 messages, other clients open and drop 2,000 connections and ten
// connections send garbage. The pair must receive every message in order, and
// the server's RSS and open file count must come back to within 10% of their
// baseline once the churn ends. Bounded: about a minute at most.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/index';
import { useServer } from '../helpers/server';
import { onLinux } from '../helpers/platform';

const server = useServer({ cleanExit: true });

function openFiles(): number {
  return fs.readdirSync(`/proc/${server.proc.pid}/fd`).length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a connection and drops it at once (half of them after sending a PING). */
function churnOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: server.port }, () => {
      if (i % 2 === 0) s.write('PING\r\n');
      s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => resolve());
  });
}

/** Keeps one connection sending seeded garbage until stop() is true; reconnects when the server closes it. */
async function vandal(seed: number, stop: () => boolean): Promise<number> {
  let x = seed * 2654435761 || 1;
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  let sent = 0;
  while (!stop()) {
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: server.port });
      s.on('error', () => {});
      s.on('data', () => {});
      s.on('close', () => resolve());
      const burst = () => {
        if (stop() || s.destroyed) {
          s.destroy();
          return;
        }
        const kind = rand();
        let chunk: Buffer;
        if (kind < 0.3) chunk = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 512) }, () => Math.floor(rand() * 256)));
        // Names of 250 to 299 bytes: some valid (a few queues), most refused with BAD_QUEUE_NAME.
        else if (kind < 0.6) chunk = Buffer.from(`GET ${'x'.repeat(250 + Math.floor(rand() * 50))} WAIT ${Math.floor(rand() * 50)}\r\nNACK 1\r\nACK x\r\nFOO\r\n`);
        else if (kind < 0.8) chunk = Buffer.from(`PUT garbage ${Math.floor(rand() * 20)}\r\n` + 'z'.repeat(Math.floor(rand() * 40)));
        else chunk = Buffer.from('A'.repeat(2000)); // an endless header line: LINE_TOO_LONG, closed
        sent += chunk.length;
        s.write(chunk);
        setTimeout(burst, 2);
      };
      s.on('connect', burst);
    });
  }
  return sent;
}

/** Runs one round: the pair moves N messages on queue q while the churn and the vandals run; returns what it saw. */
async function round(q: string, N: number): Promise<{ received: number; outOfOrder: number; garbageBytes: number }> {
  const producer = await connect({ host: '127.0.0.1', port: server.port });
  const consumer = await connect({ host: '127.0.0.1', port: server.port });
  let next = 0;
  let outOfOrder = 0;
  const received = (async () => {
    for await (const m of consumer.consume(q, { prefetch: 256 })) {
      if (Number(m.text().slice(0, 8)) !== next) outOfOrder++;
      next++;
      if (next === N) break;
    }
  })();
  let stopAbuse = false;
  const vandals = Array.from({ length: 10 }, (_, i) => vandal(i + 1, () => stopAbuse));
  const churn = (async () => {
    for (let i = 0; i < 2000; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => churnOne(i + k)));
  })();
  for (let i = 0; i < N; i += 1000) {
    const batch: Array<Promise<number>> = [];
    for (let k = i; k < i + 1000; k++) batch.push(producer.put(q, `${String(k).padStart(8, '0')}:payload`));
    await Promise.all(batch);
  }
  await churn;
  stopAbuse = true;
  const garbageBytes = (await Promise.all(vandals)).reduce((a, b) => a + b, 0);
  await Promise.race([received, sleep(30_000)]);
  // The vandals' well-formed PUTs did store messages: that is data, not a leak.
  await producer.purge('garbage');
  await producer.close();
  await consumer.close();
  return { received: next, outOfOrder, garbageBytes };
}

describe('churn and abuse next to real work', () => {
  // Reads the server's RSS and open files from /proc/<pid>/status and /proc/<pid>/fd: Linux only.
  it.skipIf(!onLinux)('the pair gets all 100,000 messages in order; RSS, open files and engine memory return within 10% of their baseline', async () => {
    const N = 100_000;
    // The baseline is a server that has served this workload until its RSS stopped growing.
    // Measured with process.memoryUsage() and mallinfo2() inside the server between rounds:
    // the live JavaScript heap after a GC stays at 4.4 MB, the active handles at 5 and the
    // engine under 8 KiB every round, so nothing is kept per connection or per message. What
    // grows is capacity that V8 and malloc keep for reuse, and it is bounded: V8's young
    // generation doubles under the allocation rate of 100,000 messages (8, 16, then 32 MB,
    // its ceiling of two 16 MiB semi-spaces on 64-bit Node 20), and glibc keeps up to about
    // 13 MB of freed blocks. RSS climbs from about 65 to 90 MB over three to five rounds and
    // then stays there. The young generation can still double late, so the warm-up runs at
    // least five rounds and until two rounds in a row add less than 5% each (at most ten),
    // and the 10% criterion is checked against that plateau.
    const observer = await connect({ host: '127.0.0.1', port: server.port });
    const warmup: number[] = [];
    for (let i = 0; i < 10; i++) {
      expect(await round('real-work', N)).toMatchObject({ received: N, outOfOrder: 0 });
      await sleep(500);
      warmup.push(server.rss());
      if (i >= 4 && warmup[i]! < warmup[i - 1]! * 1.05 && warmup[i - 1]! < warmup[i - 2]! * 1.05) break;
    }
    const baseRss = server.rss();
    const baseFiles = openFiles();
    const baseMemory = Number((await observer.stats()).memory);

    const r = await round('real-work', N);
    expect(r.received).toBe(N);
    expect(r.outOfOrder).toBe(0);
    expect(r.garbageBytes).toBeGreaterThan(0);

    // Once the churn is over, what it took is given back (bounded wait for the OS and the GC,
    // and for the server to see the last vandals' closes: on a busy machine they can still be
    // in flight when the round returns).
    let rss = server.rss();
    let files = openFiles();
    let s = await observer.stats();
    for (let t = 0; t < 50 && (rss > baseRss * 1.1 || files > baseFiles * 1.1 || Number(s.connections) > 1); t++) {
      await sleep(100);
      rss = server.rss();
      files = openFiles();
      s = await observer.stats();
    }
    expect(files, `open files ${files} vs baseline ${baseFiles}`).toBeLessThanOrEqual(Math.ceil(baseFiles * 1.1));
    // The engine holds a few KiB here (a handful of queues the vandals create and idle
    // cleanup drops): 10% of that is noise, so the bound also allows 64 KiB, still far below
    // what 100,000 messages or 2,000 connections would leave behind if anything leaked.
    expect(Number(s.memory), `engine memory ${s.memory} vs baseline ${baseMemory}`).toBeLessThanOrEqual(Math.max(baseMemory * 1.1, baseMemory + 64 * 1024));
    const mb = (x: number) => (x / 1048576).toFixed(1);
    console.log(
      `churn: warm-up RSS ${warmup.map(mb).join(' ')} MB; baseline RSS ${mb(baseRss)} MB, files ${baseFiles}, engine ${baseMemory} B; ` +
        `after RSS ${mb(rss)} MB (${((rss / baseRss - 1) * 100).toFixed(1)}%), files ${files}, engine ${s.memory} B`,
    );
    expect(rss, `RSS ${rss} vs baseline ${baseRss}`).toBeLessThanOrEqual(baseRss * 1.1);
    expect(s.connections).toBe(1);
    expect(Number(s.protocol_errors)).toBeGreaterThan(0);
    await observer.close();
  }, 120_000);
});
