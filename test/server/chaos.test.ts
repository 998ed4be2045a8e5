// Many clients at once against one real server, with a bounded, seeded
// schedule: producers pipelining PUTs, GET clients (some waiting), ON
// consumers that grant credit and stop reading at random, and connections
// that send garbage or vanish mid-frame. Afterwards the books must balance:
// every acknowledged PUT was taken, pushed or is still queued, exactly once,
// and each receiver saw each producer's messages in the order they were sent.
import * as net from 'node:net';
import { expect, it } from 'vitest';
import { useServer } from '../helpers/server';
import { Client, eventually, put, rng } from './util';

const server = useServer({ cleanExit: true });

const QUEUES = ['chaos-q0', 'chaos-q1', 'chaos-q2'];
const ROUNDS = 150;

/** Returns the "p<producer>:<seq>" id at the head of a payload. */
function idOf(payload: Buffer): string {
  const bar = payload.indexOf(0x7c);
  return payload.subarray(0, bar).toString('latin1');
}

it('balances the books after a seeded storm of producers, consumers, waiters and vandals', async () => {
  const r = rng(0xc4a05);
  const pick = <T>(xs: readonly T[]): T => xs[r() % xs.length]!;
  const errors: string[] = [];
  // Every message received by anyone: id -> receiver, and per receiver+queue the ids in order.
  const received = new Map<string, string>();
  const streams = new Map<string, string[]>();
  const receive = (who: string, queue: string, payload: Buffer) => {
    const id = idOf(payload);
    if (received.has(id)) errors.push(`${id} received twice (${received.get(id)} and ${who})`);
    received.set(id, who);
    const k = `${who}/${queue}`;
    if (!streams.has(k)) streams.set(k, []);
    streams.get(k)!.push(id);
  };

  // Producers: pipelined PUTs, every reply must be OK <len>.
  const producers = await Promise.all([0, 1, 2, 3].map(() => Client.connect(server.port)));
  const sentTo = new Map<string, string>(); // id -> queue
  const prodSent = [0, 0, 0, 0];
  const prodOk = [0, 0, 0, 0];
  const seq = [0, 0, 0, 0];
  producers.forEach((p, i) => {
    p.onFrame = (f) => {
      if (/^OK \d+$/.test(f.line)) prodOk[i]!++;
      else errors.push(`producer ${i}: ${f.line}`);
      return true;
    };
  });

  // GET clients: each request is tracked in order, since GET replies carry no queue name.
  const getters = await Promise.all([0, 1].map(() => Client.connect(server.port)));
  const getPending: string[][] = [[], []];
  getters.forEach((g, i) => {
    g.onFrame = (f) => {
      const q = getPending[i]!.shift();
      if (q === undefined) errors.push(`getter ${i}: unexpected ${f.line}`);
      else if (f.line.startsWith('MSG ')) receive(`getter${i}`, q, f.payload!);
      else if (f.line !== 'EMPTY') errors.push(`getter ${i}: ${f.line}`);
      return true;
    };
  });

  // ON consumers, one subscription per queue each, with random credit.
  const consumers = await Promise.all([0, 1, 2].map(() => Client.connect(server.port)));
  const consReplies = [0, 0, 0];
  const consSent = [0, 0, 0];
  consumers.forEach((c, i) => {
    c.onFrame = (f) => {
      if (f.line.startsWith('PUSH ')) receive(`consumer${i}`, f.line.split(' ')[1]!, f.payload!);
      else if (/^OK( \d+)?$/.test(f.line)) consReplies[i]!++;
      else errors.push(`consumer ${i}: ${f.line}`);
      return true;
    };
    for (const q of QUEUES) {
      c.socket.write(`ON ${q} CREDIT ${r() % 5}\r\n`);
      consSent[i]!++;
    }
  });

  const vandals: net.Socket[] = [];
  // A vandal's GET WAIT may be answered (one message each) before it goes,
  // and it never reads the answer: those messages are taken but not seen.
  let vandalWaiters = 0;
  for (let round = 0; round < ROUNDS; round++) {
    producers.forEach((p, i) => {
      const parts: Buffer[] = [];
      for (let k = 1 + (r() % 30); k > 0; k--) {
        const q = pick(QUEUES);
        const id = `p${i}:${seq[i]!++}`;
        const pad = Buffer.alloc(r() % 1500);
        for (let j = 0; j < pad.length; j += 7) pad[j] = r() & 255;
        sentTo.set(id, q);
        parts.push(put(q, Buffer.concat([Buffer.from(`${id}|`), pad])));
        prodSent[i]!++;
      }
      p.socket.write(Buffer.concat(parts));
    });
    getters.forEach((g, i) => {
      for (let k = r() % 6; k > 0; k--) {
        const q = pick(QUEUES);
        getPending[i]!.push(q);
        g.socket.write(r() % 3 === 0 ? `GET ${q} WAIT ${r() % 30}\r\n` : `GET ${q}\r\n`);
      }
    });
    consumers.forEach((c, i) => {
      const roll = r() % 10;
      if (roll < 4) {
        c.socket.write(`CREDIT ${pick(QUEUES)} ${1 + (r() % 40)}\r\n`);
        consSent[i]!++;
      } else if (roll === 4) c.socket.pause();
      else if (roll === 5) c.socket.resume();
    });
    if (r() % 4 === 0) {
      const v = net.connect({ port: server.port, host: '127.0.0.1' });
      v.on('error', () => {});
      vandals.push(v);
      const kind = r() % 3;
      if (kind === 0) v.write(`PUT ${pick(QUEUES)} 500\r\nonly part of it`);
      else if (kind === 1) v.write(Buffer.from(Array.from({ length: 2000 }, () => r() & 255)));
      else {
        v.write(`GET ${pick(QUEUES)} WAIT 60000\r\n`);
        vandalWaiters++;
      }
      setTimeout(() => v.destroy(), r() % 20);
    }
    if (round % 10 === 0) await new Promise((res) => setTimeout(res, 5));
  }

  // Quiesce: everyone reads again, every request is answered.
  for (const c of consumers) c.socket.resume();
  const sumP = () => prodOk.reduce((a, b) => a + b, 0);
  await eventually(() => sumP() === prodSent.reduce((a, b) => a + b, 0) || errors.length > 0, 'every PUT answered', 60_000);
  await eventually(() => getPending.every((p) => p.length === 0) || errors.length > 0, 'every GET answered', 60_000);
  consumers.forEach((c, i) => {
    for (const q of QUEUES) c.socket.write(`OFF ${q}\r\n`);
    consSent[i]! += QUEUES.length;
  });
  await eventually(() => consReplies.every((n, i) => n === consSent[i]) || errors.length > 0, 'every ON/CREDIT/OFF answered', 60_000);
  for (const v of vandals) v.destroy();
  expect(errors).toEqual([]);

  // The books: acknowledged = taken + pushed + still queued, each exactly once.
  const obs = await Client.connect(server.port);
  const st = await obs.stats();
  const acked = sumP();
  expect(Number(st.puts)).toBe(acked);
  const lostToVanished = Number(st.taken) + Number(st.pushed) - received.size;
  expect(lostToVanished).toBeGreaterThanOrEqual(0);
  expect(lostToVanished).toBeLessThanOrEqual(vandalWaiters);
  expect(Number(st.puts)).toBe(Number(st.taken) + Number(st.pushed) + Number(st.messages));
  for (const q of QUEUES) {
    const n = Number((await obs.request(`LEN ${q}\r\n`)).line.split(' ')[1]);
    for (let k = 0; k < n; k++) {
      const f = await obs.request(`GET ${q}\r\n`);
      expect(f.line).toMatch(/^MSG /);
      receive('drain', q, f.payload!);
    }
    expect((await obs.request(`GET ${q}\r\n`)).line).toBe('EMPTY');
  }
  expect(errors).toEqual([]);
  expect(received.size + lostToVanished).toBe(acked);
  for (const [id, q] of sentTo) if (received.has(id)) expect(streams.get(`${received.get(id)}/${q}`)).toContain(id);
  // Each receiver saw each producer's messages to a queue in sending order.
  for (const [k, ids] of streams) {
    const last = new Map<string, number>();
    for (const id of ids) {
      const [p, s] = id.split(':') as [string, string];
      if ((last.get(p) ?? -1) >= Number(s)) throw new Error(`${k}: ${id} after ${p}:${last.get(p)}`);
      last.set(p, Number(s));
    }
  }
  // The storm reached the interesting paths.
  expect(Number(st.pushed)).toBeGreaterThan(0);
  expect(Number(st.taken)).toBeGreaterThan(0);
  for (const c of [...producers, ...getters, ...consumers, obs]) c.destroy();
});
