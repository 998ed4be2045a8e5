#!/usr/bin/env node
// beuss fan-out benchmark: `node bench/fanout.js [--n 200000] [--subs 5] [--size 64] [--runs 3] [--vs redis,nats|none]`.
//
// One publisher, S subscribers of one channel, N messages of SIZE bytes: the
// time from the first PUB written to the last event read by the last
// subscriber, so "events/s" counts every delivery (N x S). beuss PUB/SUB runs
// side by side with Redis PUBLISH/SUBSCRIBE and NATS core pub/sub when they
// are installed, each on a free loopback port started by this script.
//
// Why JavaScript here and not bench/loadgen.c: every frame a subscriber gets
// has a fixed length (same channel, same size), so a reader counts frames by
// byte arithmetic and checks the stamp at a fixed offset of each one, a few
// operations per event; the per-run CPU of the script is printed, and on a
// 2-core machine the publisher, subscribers and server share the CPUs, so
// the figures are lower bounds. Each payload starts with a 12-digit sequence
// number: a missing, duplicated or reordered event fails the run.
'use strict';

const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');

const ROOT = path.resolve(__dirname, '..');

function parse(argv) {
  const o = { n: 200_000, subs: 5, size: 64, runs: 3, vs: ['redis', 'nats'] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--n') o.n = Number(v());
    else if (a === '--subs') o.subs = Number(v());
    else if (a === '--size') o.size = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--vs') o.vs = v() === 'none' ? [] : argv[i].split(',');
    else {
      process.stderr.write(`fanout: unknown option ${a}\n`);
      process.exit(2);
    }
  }
  if (!(o.size >= 12 && o.n >= 1 && o.subs >= 1 && o.runs >= 1)) {
    process.stderr.write('fanout: --size must be >= 12, --n, --subs, --runs >= 1\n');
    process.exit(2);
  }
  return o;
}

function which(bin) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = path.join(dir, bin);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Returns a connected socket, retrying while the server starts (at most 10 s). */
async function connect(port) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// What each system needs: how to start it, subscribe, publish, and the exact frame a subscriber gets.
const SYSTEMS = {
  beuss: {
    start: (port) => spawn(process.execPath, [path.join(ROOT, 'bin', 'beuss-server.js'), '--host', '127.0.0.1', '--port', String(port), '--sub-buffer', '1000000'], { stdio: 'ignore' }),
    sub: (ch) => `SUB ${ch}\r\n`,
    subAck: 'OK\r\n',
    pub: (ch, size) => [`PUB ${ch} ${size}\r\n`, '\r\n'],
    pubReply: (subs) => `OK ${subs}\r\n`,
    frame: (ch, size) => [`EVENT ${ch} ${size}\r\n`, '\r\n'],
  },
  redis: {
    bin: 'redis-server',
    start: (port, bin) => spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--client-output-buffer-limit', 'pubsub 0 0 0'], { stdio: 'ignore' }),
    sub: (ch) => `SUBSCRIBE ${ch}\r\n`,
    subAck: null, // *3 subscribe ch :1
    pub: (ch, size) => [`*3\r\n$7\r\nPUBLISH\r\n$${ch.length}\r\n${ch}\r\n$${size}\r\n`, '\r\n'],
    pubReply: (subs) => `:${subs}\r\n`,
    frame: (ch, size) => [`*3\r\n$7\r\nmessage\r\n$${ch.length}\r\n${ch}\r\n$${size}\r\n`, '\r\n'],
  },
  nats: {
    bin: 'nats-server',
    start: (port, bin) => spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' }),
    // verbose off, so PUB has no reply; PING/PONG confirms the SUB is in place.
    sub: (ch) => `CONNECT {"verbose":false,"pedantic":false}\r\nSUB ${ch} 1\r\nPING\r\n`,
    subAck: 'PONG\r\n',
    pub: (ch, size) => [`PUB ${ch} ${size}\r\n`, '\r\n'],
    pubReply: null,
    frame: (ch, size) => [`MSG ${ch} 1 ${size}\r\n`, '\r\n'],
  },
};

/** Resolves once `sock` has sent bytes ending in `text` (skipping an INFO banner and the like). */
function waitFor(sock, pred) {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d) => {
      got += d.toString('latin1');
      if (pred(got)) {
        sock.off('data', onData);
        resolve();
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

/** Returns { seconds } of one run: publish n stamped messages, every subscriber reads all of them, in order. */
async function run(sys, port, o) {
  const ch = 'fan';
  const subs = [];
  for (let i = 0; i < o.subs; i++) {
    const s = await connect(port);
    s.setNoDelay(true);
    const ready = waitFor(s, (t) => (sys.subAck ? t.endsWith(sys.subAck) : /:1\r\n$/.test(t)));
    s.write(sys.sub(ch));
    await ready;
    subs.push(s);
  }
  const [fpre, fpost] = sys.frame(ch, o.size);
  const frameLen = Buffer.byteLength(fpre) + o.size + Buffer.byteLength(fpost);
  const stampAt = Buffer.byteLength(fpre);
  const done = subs.map(
    (s) =>
      new Promise((resolve, reject) => {
        let seen = 0;
        let carry = Buffer.alloc(0);
        s.on('data', (d) => {
          let b = carry.length ? Buffer.concat([carry, d]) : d;
          let off = 0;
          while (b.length - off >= frameLen) {
            // The 12-digit stamp must be the next sequence number.
            let v = 0;
            for (let k = 0; k < 12; k++) v = v * 10 + (b[off + stampAt + k] - 48);
            if (v !== seen) {
              reject(new Error(`subscriber got message ${v} where ${seen} was due (bytes: ${JSON.stringify(b.subarray(off, off + 40).toString('latin1'))})`));
              s.destroy();
              return;
            }
            seen++;
            off += frameLen;
          }
          carry = off === b.length ? Buffer.alloc(0) : Buffer.from(b.subarray(off));
          if (seen === o.n) resolve();
        });
        s.once('close', () => reject(new Error(`subscriber closed after ${seen} of ${o.n}`)));
      }),
  );
  const pub = await connect(port);
  pub.setNoDelay(true);
  if (sys === SYSTEMS.nats) pub.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  const [ppre, ppost] = sys.pub(ch, o.size);
  const reply = sys.pubReply ? Buffer.from(sys.pubReply(o.subs)) : null;
  let replied = 0;
  const allReplied = reply
    ? new Promise((resolve, reject) => {
        let rest = 0;
        pub.on('data', (d) => {
          // Replies have one fixed form; count bytes, check the first.
          if (replied === 0 && rest === 0 && !d.subarray(0, reply.length).equals(reply.subarray(0, Math.min(reply.length, d.length)))) {
            reject(new Error(`publisher got ${JSON.stringify(d.subarray(0, 40).toString())}`));
          }
          rest += d.length;
          replied = Math.floor(rest / reply.length);
          if (replied >= o.n) resolve();
        });
      })
    : Promise.resolve();
  // Pre-encode batches of 1000 messages before the clock starts.
  const batch = 1000;
  const pieces = [];
  for (let i = 0; i < o.n; i += batch) {
    const parts = [];
    for (let k = i; k < Math.min(o.n, i + batch); k++) {
      const body = Buffer.alloc(o.size, 97);
      body.write(String(k).padStart(12, '0'), 0, 'latin1');
      parts.push(Buffer.from(ppre), body, Buffer.from(ppost));
    }
    pieces.push(Buffer.concat(parts));
  }
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const p of pieces) {
    if (!pub.write(p)) await new Promise((r) => pub.once('drain', r));
  }
  await Promise.all([...done, allReplied]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  for (const s of [...subs, pub]) s.destroy();
  return { seconds, scriptCpu: (cpu.user + cpu.system) / 1e6 / seconds };
}

async function main() {
  const o = parse(process.argv.slice(2));
  const names = ['beuss', ...o.vs.filter((v) => SYSTEMS[v] && which(SYSTEMS[v].bin))];
  const rows = [];
  for (const name of names) {
    const sys = SYSTEMS[name];
    const port = await freePort();
    const proc = sys.start(port, sys.bin ? which(sys.bin) : undefined);
    try {
      const results = [];
      for (let r = 0; r < o.runs; r++) results.push(await run(sys, port, o));
      results.sort((a, b) => a.seconds - b.seconds);
      const med = results[Math.floor(results.length / 2)];
      rows.push({ name, events: (o.n * o.subs) / med.seconds, publishes: o.n / med.seconds, cpu: med.scriptCpu, min: (o.n * o.subs) / results.at(-1).seconds, max: (o.n * o.subs) / results[0].seconds });
    } finally {
      proc.kill('SIGTERM');
    }
  }
  const fmt = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${(v / 1e3).toFixed(0)} k`);
  console.log(`fan-out: 1 publisher, ${o.subs} subscribers, ${o.n} messages of ${o.size} bytes, median of ${o.runs} runs\n`);
  console.log('| system | events delivered/s (min-max) | publishes/s | script CPU | beuss / this |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${fmt(r.events)} (${fmt(r.min)}-${fmt(r.max)}) | ${fmt(r.publishes)} | ${(r.cpu * 100).toFixed(0)}% | ${(rows[0].events / r.events).toFixed(2)}x |`);
  }
}

main().catch((err) => {
  process.stderr.write(`fanout: ${err.stack || err}\n`);
  process.exit(1);
});
