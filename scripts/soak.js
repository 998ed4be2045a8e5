#!/usr/bin/env node
// soak.js: an accounting soak of at-least-once delivery. It starts a
// beuss-server, runs several producers and several ack-mode consumers that
// disconnect at random (dropping the leases they hold), plus a few poison
// messages that always fail, for --seconds; then lets the consumers drain and
// checks the books:
//   produced = acknowledged + still queued + dead-lettered
//   no message acknowledged twice, each poison message dead-lettered once,
//   every redelivery carries a higher delivery count (it followed a lease
//   that ended unacknowledged), the server's counters agree with the clients'.
// Prints the figures; exits 1 when the accounting fails, 2 on bad arguments.
//
//   node scripts/soak.js [--seconds 120] [--producers 3] [--consumers 4] [--seed 1]
// Needs `npm run build` first.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const { connect } = require(ROOT);

function parseArgs(argv) {
  const o = { seconds: 120, producers: 3, consumers: 4, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(seconds|producers|consumers|seed)(?:=(.*))?$/.exec(argv[i]);
    if (!m) {
      console.error(`soak: unknown argument '${argv[i]}'\nusage: node scripts/soak.js [--seconds n] [--producers n] [--consumers n] [--seed n]`);
      process.exit(2);
    }
    const v = Number(m[2] ?? argv[++i]);
    if (!Number.isFinite(v) || v < (m[1] === 'seed' ? 0 : 1)) {
      console.error(`soak: --${m[1]} needs a positive number`);
      process.exit(2);
    }
    o[m[1]] = v;
  }
  return o;
}

// xorshift32: a seeded generator, so a failing run can be repeated.
function rng(seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function startServer() {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'beuss-server.js'), '--host', '127.0.0.1', '--port', '0', '--max-deliver', '4'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const onData = (d) => {
      out += d.toString();
      const m = /listening on (\S+):(\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[2]) });
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (d) => (out += d.toString()));
    proc.on('exit', (code) => reject(new Error(`beuss-server exited (${code}) before listening:\n${out}`)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const rand = rng(opts.seed);
  const { proc, port } = await startServer();
  const Q = 'soak';
  const LEASE_MS = 1000;
  const POISON_EVERY = 997; // about 0.1% of messages always fail
  const BACKLOG = 20_000;
  const endAt = Date.now() + opts.seconds * 1000;

  let produced = 0;
  let poisonProduced = 0;
  const acked = new Map(); // payload -> times acknowledged (must be 1)
  const seen = new Map(); // payload -> delivery counts handled (each delivery has its own)
  let handled = 0;
  let handledAgain = 0;
  let disconnects = 0;
  let poisonFailures = 0;
  let stalls = 0;
  let lateAcks = 0;
  let returnedOnClose = 0; // pushed to a consumer, never handled: given back when it disconnected
  const problems = [];

  const producers = Array.from({ length: opts.producers }, async (_, p) => {
    const c = await connect({ host: '127.0.0.1', port });
    let seq = 0;
    while (Date.now() < endAt) {
      const batch = [];
      for (let i = 0; i < 200; i++) {
        const n = seq++;
        const poison = (n + p) % POISON_EVERY === 0;
        const body = `p${p}-${n}${poison ? '!' : ''}`;
        batch.push(c.put(Q, body).then(() => {
          produced++;
          if (poison) poisonProduced++;
        }));
      }
      await Promise.all(batch);
      // Stay ahead of the consumers by a bounded backlog, so the run ends drained.
      while ((await c.len(Q)) > BACKLOG && Date.now() < endAt) await sleep(5);
    }
    await c.close();
  });

  let stopConsumers = false;
  const consumers = Array.from({ length: opts.consumers }, async () => {
    while (!stopConsumers) {
      const c = await connect({ host: '127.0.0.1', port });
      // Disconnect after a random number of messages, holding whatever leases are buffered.
      const quota = 50 + Math.floor(rand() * 2000);
      let n = 0;
      let handledHere = 0;
      const consumer = c.consume(Q, { lease: LEASE_MS, prefetch: 1 + Math.floor(rand() * 32) });
      try {
        for await (const m of consumer) {
          const body = m.text();
          // A copy whose lease ran out while it waited in this client may be handled after the
          // redelivered one: order does not matter, but two deliveries never share a count.
          let counts = seen.get(body);
          if (counts === undefined) seen.set(body, (counts = new Set()));
          else handledAgain++;
          if (counts.has(m.deliveries) && problems.length < 20) problems.push(`${body} delivered twice with count ${m.deliveries}: a redelivery without a lease ending`);
          counts.add(m.deliveries);
          handled++;
          handledHere++;
          if (body.endsWith('!')) {
            poisonFailures++;
            await m.nack().catch((err) => {
              if (err.code !== 'UNKNOWN_LEASE') throw err; // expired while it waited behind a stall
            });
          } else {
            // Now and then a consumer stalls past its lease: the message goes to another one, and
            // this late ACK is refused (UNKNOWN_LEASE), so it is not counted.
            if (rand() < 0.0002) {
              stalls++;
              await sleep(LEASE_MS * 1.5);
            }
            try {
              await m.ack();
              acked.set(body, (acked.get(body) ?? 0) + 1);
            } catch (err) {
              if (err.code !== 'UNKNOWN_LEASE') throw err;
              lateAcks++;
            }
          }
          if (++n >= quota || stopConsumers) break;
        }
      } catch (err) {
        if (!stopConsumers) problems.push(`consumer failed: ${err.message}`);
      }
      // Abrupt: no OFF, no QUIT; the leases buffered in this client go back to the queue.
      disconnects++;
      returnedOnClose += consumer.receivedCount - handledHere;
      await c.close({ force: true });
    }
  });

  const status = setInterval(() => {
    process.stderr.write(`soak: ${Math.max(0, Math.round((endAt - Date.now()) / 1000))} s left, produced ${produced}, acked ${acked.size}, disconnects ${disconnects}\n`);
  }, 10_000);

  await Promise.all(producers);
  // Drain: wait until nothing is ready or leased (bounded), then stop the consumers.
  const observer = await connect({ host: '127.0.0.1', port });
  const drainDeadline = Date.now() + 60_000 + 10 * LEASE_MS;
  for (;;) {
    const s = await observer.stats(Q);
    if ((s.ready === 0 && s.leased === 0) || Date.now() > drainDeadline) break;
    await sleep(50);
  }
  stopConsumers = true;
  // A consumer waiting for a push ends when its connection is closed: push one marker per consumer.
  await Promise.all(consumers.map(() => observer.put(`${Q}.wake`, 'x')));
  await Promise.race([Promise.all(consumers), sleep(10_000 + 2 * LEASE_MS)]);
  clearInterval(status);
  await sleep(2 * LEASE_MS + 100); // leases of consumers that were stopped mid-message come back

  const qs = await observer.stats(Q);
  const st = await observer.stats();
  const deadList = [];
  for (let m = await observer.get(`${Q}.dead`); m !== null; m = await observer.get(`${Q}.dead`)) deadList.push(m.toString());
  const queued = qs.ready;
  const leased = qs.leased;
  let ackedTwice = 0;
  let ackedTotal = 0;
  for (const [body, times] of acked) {
    ackedTotal += times;
    if (times > 1) {
      ackedTwice++;
      if (problems.length < 20) problems.push(`${body} acknowledged ${times} times`);
    }
  }
  const dead = deadList.length;
  const balance = acked.size + queued + leased + dead;
  if (produced !== balance) problems.push(`produced ${produced} != acked ${acked.size} + queued ${queued} + leased ${leased} + dead ${dead} (= ${balance})`);
  if (leased !== 0) problems.push(`${leased} messages still leased at the end`);
  // Each stall makes at least its own message's ACK late (and those buffered behind it, too).
  if (lateAcks < stalls) problems.push(`${stalls} stalls past the lease but only ${lateAcks} ACKs refused`);
  // Every redelivery follows a lease that ended unacknowledged: NACK, expiry, or a dropped connection.
  if (Number(st.redelivered) > Number(st.nacked) + Number(st.expired) + returnedOnClose) {
    problems.push(`server redelivered ${st.redelivered} > nacked ${st.nacked} + expired ${st.expired} + returned on disconnect ${returnedOnClose}`);
  }
  if (ackedTotal !== Number(st.acked)) problems.push(`clients saw ${ackedTotal} acknowledgements, the server counted ${st.acked}`);
  if (dead !== poisonProduced || deadList.some((b) => !b.endsWith('!'))) problems.push(`dead-lettered ${dead} messages, ${poisonProduced} poison ones were produced`);
  for (const b of deadList) if (acked.has(b)) problems.push(`${b} both acknowledged and dead-lettered`);

  console.log(
    [
      `soak: ${opts.seconds} s, ${opts.producers} producers, ${opts.consumers} ack-mode consumers (lease ${LEASE_MS} ms, max deliver 4), seed ${opts.seed}`,
      `  produced       ${produced} (${poisonProduced} poison)`,
      `  acknowledged   ${acked.size}`,
      `  still queued   ${queued}`,
      `  still leased   ${leased}`,
      `  dead-lettered  ${dead}`,
      `  handled        ${handled} (${handledAgain} redeliveries handled; ${poisonFailures} poison failures)`,
      `  disconnects    ${disconnects} consumer connections dropped abruptly`,
      `  stalls         ${stalls} consumers stalled past their lease (${lateAcks} late ACKs refused)`,
      `  returned       ${returnedOnClose} leases given back by dropped connections`,
      `  server         acked ${st.acked}, nacked ${st.nacked}, expired ${st.expired}, redelivered ${st.redelivered}, dead_lettered ${st.dead_lettered}`,
      `  acked twice    ${ackedTwice}`,
      problems.length === 0 ? 'soak: PASS: produced = acknowledged + queued + dead-lettered, no duplicate acknowledgement' : `soak: FAIL:\n  ${problems.slice(0, 20).join('\n  ')}`,
    ].join('\n'),
  );
  await observer.close();
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  process.exit(problems.length === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(`soak: ${err.stack || err}`);
  process.exit(1);
});
