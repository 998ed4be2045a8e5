// The `beuss` command end to end: the real bin/beuss.js against a real
// beuss-server on a free loopback port, over real pipes and files.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_BIN, ROOT, startServer } from '../helpers/server.js';
import { onWindows } from '../helpers/platform.js';
import { beuss, childEnv, collect, sh, tmpDir, useCliServer } from './run.js';

const { srv, at, env } = useCliServer();
let n = 0;
// A fresh queue name per test, so tests share one server without sharing state.
const fresh = (base = 'q') => `${base}-${++n}`;

// Returns a port on 127.0.0.1 where nothing listens (bound, then released).
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// Runs the commands through `sh -c`, which Windows does not have.
describe.skipIf(onWindows)('the commands of the original, verbatim', () => {
  it('echo "my-message-content" | beuss PUT <queue>, then beuss GET <queue> <output.ext>', async () => {
    const dir = tmpDir();
    const q = fresh();
    const put = await sh(`echo "my-message-content" | beuss PUT ${q}`, { env });
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    const get = await sh(`beuss GET ${q} output.txt`, { env, cwd: dir });
    expect(get.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'output.txt'), 'utf8')).toBe('my-message-content\n');
  });

  it('BPORT=<port> BHOST=<host> beuss GET <queue>', async () => {
    const q = fresh();
    await beuss(['PUT', q], { input: 'from env', env });
    const r = await sh(`BPORT=${srv.port} BHOST=${srv.host} beuss GET ${q}`);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('from env');
  });

  it('beuss ON <queue> prints each message followed by a newline', async () => {
    const q = fresh();
    await beuss(['PUT', q, '--lines'], { input: 'one\ntwo\n', env });
    const r = await sh(`beuss ON ${q} --count 2`, { env });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('one\ntwo\n');
  });

  it('cat mypic.jpg | beuss PUT <queue> round-trips 1 MB byte for byte (BMAXMESSAGESIZE=1000000)', async () => {
    const big = await startServer([], { BMAXMESSAGESIZE: '1000000' });
    try {
      const dir = tmpDir();
      const pic = Buffer.alloc(1_000_000);
      for (let i = 0; i < pic.length; i++) pic[i] = (i * 7919 + (i >> 8)) & 0xff;
      fs.writeFileSync(path.join(dir, 'mypic.jpg'), pic);
      const benv = { BHOST: big.host, BPORT: String(big.port) };
      const put = await sh('cat mypic.jpg | beuss PUT pics', { env: benv, cwd: dir });
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      const get = await sh('beuss GET pics copy.jpg', { env: benv, cwd: dir });
      expect(get.code).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'copy.jpg')).equals(pic)).toBe(true);
      // And to stdout, with nothing added.
      await sh('beuss PUT pics mypic.jpg', { env: benv, cwd: dir });
      const out = await beuss(['GET', 'pics'], { env: benv });
      expect(out.stdout.equals(pic)).toBe(true);
    } finally {
      await big.stop();
    }
  });
});

describe('PUT', () => {
  it('sends stdin as one binary-safe message and GET writes it back byte for byte', async () => {
    const q = fresh();
    const bytes = Buffer.from([0, 1, 2, 13, 10, 255, 10, 0, 80, 85, 83, 72, 32, 10, 13]);
    expect((await beuss(['PUT', q, ...at], { input: bytes })).code).toBe(0);
    const r = await beuss(['GET', q, ...at]);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(bytes)).toBe(true);
  });

  it('reads the message from a file argument', async () => {
    const q = fresh();
    const file = path.join(tmpDir(), 'm.bin');
    fs.writeFileSync(file, 'from a file');
    expect((await beuss(['PUT', q, file, ...at])).code).toBe(0);
    expect((await beuss(['GET', q, ...at])).stdout.toString()).toBe('from a file');
  });

  it('sends an empty stdin as an empty message', async () => {
    const q = fresh();
    expect((await beuss(['PUT', q, ...at], { input: '' })).code).toBe(0);
    expect((await beuss(['LEN', q, ...at])).stdout.toString()).toBe('1\n');
    const r = await beuss(['GET', q, ...at]);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(0);
  });

  it('warns on stderr when the server truncated the message', async () => {
    const q = fresh();
    const r = await beuss(['PUT', q, ...at], { input: Buffer.alloc(20_000, 0x61) });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: the server stored 10240 of the 20000 bytes/);
    expect((await beuss(['GET', q, ...at])).stdout.length).toBe(10_240);
  });

  it('--lines sends 10,000 lines as 10,000 messages, in order', async () => {
    const q = fresh();
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const put = await beuss(['PUT', q, '--lines', ...at], { input: lines.join('\n') + '\n' });
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect((await beuss(['LEN', q, ...at])).stdout.toString()).toBe('10000\n');
    const on = await beuss(['ON', q, '--count', '10000', ...at]);
    expect(on.code).toBe(0);
    expect(on.stdout.toString()).toBe(lines.join('\n') + '\n');
  });

  it('--lines streams lines as they arrive, before stdin ends', async () => {
    const q = fresh();
    const child = spawn(process.execPath, [CLI_BIN, 'PUT', q, '--lines', ...at], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const done = collect(child, undefined, 30_000, true);
    child.stdin.write('first\n');
    // The message must reach the server while stdin is still open; a bounded wait for it.
    const got = await beuss(['GET', q, '--wait', '10', ...at]);
    expect(got.code).toBe(0);
    expect(got.stdout.toString()).toBe('first');
    child.stdin.end('last without newline');
    expect((await done).code).toBe(0);
    expect((await beuss(['GET', q, ...at])).stdout.toString()).toBe('last without newline');
  });

  // On Windows kill('SIGINT') terminates the CLI without running its handler.
  it.skipIf(onWindows)('--lines exits 0 on Ctrl-C (SIGINT) once the lines sent are stored', async () => {
    const q = fresh();
    const child = spawn(process.execPath, [CLI_BIN, 'PUT', q, '--lines', ...at], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const done = collect(child, undefined, 30_000, true);
    child.stdin.write('one\ntwo\n');
    const got = await beuss(['GET', q, '--wait', '10', ...at]);
    expect(got.stdout.toString()).toBe('one');
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect((await beuss(['GET', q, ...at])).stdout.toString()).toBe('two');
  });

  it('--lines drops the CR of CRLF line ends and keeps empty lines', async () => {
    const q = fresh();
    expect((await beuss(['PUT', q, '--lines', ...at], { input: 'a\r\n\r\nb\n' })).code).toBe(0);
    const r = await beuss(['ON', q, '-0', '--count', '3', ...at]);
    expect(r.stdout.equals(Buffer.from('a\0\0b\0'))).toBe(true);
  });

  it('--lines warns about each truncated line', async () => {
    const q = fresh();
    const r = await beuss(['PUT', q, '--lines', ...at], { input: `short\n${'y'.repeat(11_000)}\nshort\n` });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stored 10240 of the 11000 bytes of line 2/);
    expect((await beuss(['LEN', q, ...at])).stdout.toString()).toBe('3\n');
  });
});

describe('GET', () => {
  it('exits 1 on an empty queue and writes nothing', async () => {
    const dir = tmpDir();
    const r = await beuss(['GET', fresh(), path.join(dir, 'out'), ...at]);
    expect(r.code).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('--wait exits 1 when the wait times out', async () => {
    const r = await beuss(['GET', fresh(), '--wait', '0.2', ...at]);
    expect(r.code).toBe(1);
  });

  it('--wait returns a message put while it waits', async () => {
    const q = fresh();
    const waiting = beuss(['GET', q, '--wait', '20', ...at]);
    // Put only once the GET is waiting on the server.
    for (let i = 0; i < 200; i++) {
      const s = await beuss(['STATS', '--json', ...at]);
      if (JSON.parse(s.stdout.toString()).waiting >= 1) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await beuss(['PUT', q, ...at], { input: 'late' });
    const r = await waiting;
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('late');
  });

  // A loop in `sh -c`, which Windows does not have.
  it.skipIf(onWindows)('drives `while beuss GET q > f; do ...; done` loops', async () => {
    const q = fresh();
    await beuss(['PUT', q, '--lines', ...at], { input: 'a\nb\nc\n' });
    const dir = tmpDir();
    const r = await sh(`while beuss GET ${q} > f; do cat f; echo; done; beuss GET ${q} > f; echo "rc=$?"`, { env, cwd: dir });
    expect(r.stdout.toString()).toBe('a\nb\nc\nrc=1\n');
  });
});

describe('ON', () => {
  // On Windows kill('SIGINT') terminates the CLI without running its handler.
  it.skipIf(onWindows)('prints messages as they are pushed and exits 0 on Ctrl-C (SIGINT)', async () => {
    const q = fresh();
    const child = spawn(process.execPath, [CLI_BIN, 'ON', q, ...at], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const firstLine = new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve();
      }),
    );
    const done = collect(child);
    await beuss(['PUT', q, ...at], { input: 'pushed' });
    await firstLine;
    expect(out).toBe('pushed\n');
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    // The subscription is gone from the server.
    const qs = JSON.parse((await beuss(['QUEUES', '--json', ...at])).stdout.toString()) as Array<{ name: string; consumers: number }>;
    expect(qs.find((x) => x.name === q)?.consumers ?? 0).toBe(0);
  });

  it('takes no more messages while its stdout is not read (credit follows output)', async () => {
    const q = fresh();
    const body = 'z'.repeat(1023);
    const lines = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(5, '0')}${body}`);
    await beuss(['PUT', q, '--lines', ...at], { input: lines.join('\n') });
    const stats = async () => JSON.parse((await beuss(['STATS', '--json', ...at])).stdout.toString()) as { pushed: number };
    // The count is taken before the consumer starts: on a busy machine it can
    // take all it may hold before a later count, and the wait below would never end.
    const base = (await stats()).pushed;
    const child = spawn(process.execPath, [CLI_BIN, 'ON', q, '--prefetch', '8', '--count', '3000', ...at], {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // stdout is left unread: the pipe fills, writes stop, and so must credit.
    for (let i = 0; i < 400 && (await stats()).pushed - base < 50; i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 500));
    // Pipe (64 KiB) + the reader's buffer (64 KiB) + prefetch hold at most ~140 messages of 1 KiB.
    const left = Number((await beuss(['LEN', q, ...at])).stdout.toString());
    expect(left).toBeGreaterThan(3000 - 400);
    const done = collect(child);
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(lines.join('\n') + '\n');
  });

  it('-0 separates binary messages with NUL bytes', async () => {
    const q = fresh();
    await beuss(['PUT', q, ...at], { input: 'a\nb' });
    await beuss(['PUT', q, ...at], { input: 'c\r\nd' });
    const r = await beuss(['ON', q, '-0', '--count', '2', ...at]);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.from('a\nb\0c\r\nd\0'))).toBe(true);
  });

  it('--count N takes no more than N messages from the queue', async () => {
    const q = fresh();
    await beuss(['PUT', q, '--lines', ...at], { input: Array.from({ length: 50 }, (_, i) => `m${i}`).join('\n') });
    const r = await beuss(['ON', q, '--count', '5', ...at]);
    expect(r.stdout.toString()).toBe('m0\nm1\nm2\nm3\nm4\n');
    expect((await beuss(['LEN', q, ...at])).stdout.toString()).toBe('45\n');
  });

  it('shares a queue between two consumers: disjoint, and together complete', async () => {
    const q = fresh();
    const spawnOn = () => {
      const c = spawn(process.execPath, [CLI_BIN, 'ON', q, '--count', '100', ...at], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      return collect(c);
    };
    const a = spawnOn();
    const b = spawnOn();
    for (let i = 0; i < 400; i++) {
      const qs = JSON.parse((await beuss(['QUEUES', '--json', ...at])).stdout.toString()) as Array<{ name: string; consumers: number }>;
      if (qs.find((x) => x.name === q)?.consumers === 2) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const all = Array.from({ length: 200 }, (_, i) => `msg-${i}`);
    expect((await beuss(['PUT', q, '--lines', ...at], { input: all.join('\n') })).code).toBe(0);
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    const la = ra.stdout.toString().split('\n').filter(Boolean);
    const lb = rb.stdout.toString().split('\n').filter(Boolean);
    expect(la.length).toBe(100);
    expect(lb.length).toBe(100);
    expect(la.filter((m) => lb.includes(m))).toEqual([]);
    expect([...la, ...lb].sort()).toEqual([...all].sort());
    // Each consumer sees its share in queue order.
    const idx = (m: string) => Number(m.slice(4));
    expect(la.map(idx)).toEqual([...la.map(idx)].sort((x, y) => x - y));
    expect(lb.map(idx)).toEqual([...lb.map(idx)].sort((x, y) => x - y));
  });
});

describe('the other commands', () => {
  it('LEN, PEEK, PURGE, QUEUES, STATS and PING', async () => {
    const q = fresh('other');
    await beuss(['PUT', q, '--lines', ...at], { input: 'head\nsecond\n' });
    expect((await beuss(['LEN', q, ...at])).stdout.toString()).toBe('2\n');
    const peek = await beuss(['PEEK', q, ...at]);
    expect(peek.code).toBe(0);
    expect(peek.stdout.toString()).toBe('head');
    expect((await beuss(['len', q, ...at])).stdout.toString()).toBe('2\n');

    const queues = await beuss(['QUEUES', ...at]);
    expect(queues.code).toBe(0);
    expect(queues.stdout.toString()).toMatch(/^QUEUE\s+READY\s+CONSUMERS\s+LEASED\s+SCHEDULED\s+DEAD\n/);
    expect(queues.stdout.toString()).toMatch(new RegExp(`\\n${q}\\s+2\\s+0\\s+0\\s+0\\s+0\\n`));
    const json = JSON.parse((await beuss(['QUEUES', '--json', ...at])).stdout.toString()) as unknown[];
    expect(json).toContainEqual({ name: q, ready: 2, consumers: 0, leased: 0, scheduled: 0, dead: 0 });

    const stats = await beuss(['STATS', ...at]);
    expect(stats.code).toBe(0);
    expect(stats.stdout.toString()).toMatch(/^protocol\s+2$/m);
    const sj = JSON.parse((await beuss(['STATS', '--json', ...at])).stdout.toString()) as Record<string, unknown>;
    expect(sj.protocol).toBe(2);
    expect(sj.max_message_size).toBe(10240);
    expect(sj.oversize).toBe('truncate');

    const dir = tmpDir();
    expect((await beuss(['PEEK', q, path.join(dir, 'head.bin'), ...at])).code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'head.bin'), 'utf8')).toBe('head');
    expect((await beuss(['GET', q, '-', ...at])).stdout.toString()).toBe('head');
    await beuss(['PUT', q, '-', ...at], { input: 'head' });

    const purge = await beuss(['PURGE', q, ...at]);
    expect(purge.stdout.toString()).toBe('2\n');
    expect((await beuss(['LEN', q, ...at])).stdout.toString()).toBe('0\n');
    expect((await beuss(['PEEK', q, ...at])).code).toBe(1);

    const ping = await beuss(['PING', ...at]);
    expect(ping.code).toBe(0);
    expect(ping.stdout.toString()).toMatch(/^PONG/);
  });

  it('takes verbs in any case', async () => {
    const q = fresh();
    expect((await beuss(['put', q, ...at], { input: 'x' })).code).toBe(0);
    expect((await beuss(['Len', q, ...at])).stdout.toString()).toBe('1\n');
    expect((await beuss(['gEt', q, ...at])).stdout.toString()).toBe('x');
  });

  it('prefers --host/--port over BHOST/BPORT', async () => {
    const dead = await deadPort();
    const r = await beuss(['PING', '--port', String(srv.port), '--host', srv.host], { env: { BHOST: 'nowhere.invalid', BPORT: String(dead) } });
    expect(r.code).toBe(0);
  });
});

describe('help, version and exit codes', () => {
  it('prints usage with the exit codes for beuss --help and for a bare beuss (exit 2)', async () => {
    const help = await beuss(['--help']);
    expect(help.code).toBe(0);
    const text = help.stdout.toString();
    for (const verb of ['PUT', 'GET', 'ON', 'LEN', 'QUEUES', 'PEEK', 'PURGE', 'STATS', 'PING']) expect(text).toContain(`beuss ${verb}`);
    expect(text).toMatch(/Exit codes:[\s\S]*1\s+queue empty[\s\S]*3\s+cannot reach the server/);
    const bare = await beuss([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: beuss');
  });

  it('prints the help of one verb', async () => {
    const r = await beuss(['on', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/Usage: beuss ON <queue>[\s\S]*--count[\s\S]*--null/);
  });

  it('prints the version from package.json', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await beuss(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(`beuss ${pkg.version}\n`);
  });

  it('exits 2 on usage errors, before contacting any server', async () => {
    const dead = String(await deadPort());
    for (const args of [['FROB', 'q'], ['GET'], ['PUT', 'a b'], ['GET', 'q', '--bogus'], ['GET', 'q', '--wait', 'soon'], ['ON', 'q', '--count', '0'], ['LEN', 'q', 'extra'], ['GET', 'q', '--lines'], ['PING', '--port', 'x']]) {
      const r = await beuss(args.includes('--port') ? args : [...args, '--host', '127.0.0.1', '--port', dead]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^beuss: /);
    }
  });

  it('exits 3 with one clear line when no server listens', async () => {
    const port = await deadPort();
    const r = await beuss(['GET', 'q', '--host', '127.0.0.1', '--port', String(port)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`beuss: cannot reach 127.0.0.1:${port} (ECONNREFUSED): is beuss-server running there? (set --host/--port or BHOST/BPORT)\n`);
    // The same through a pipe in `sh -c`, which Windows does not have.
    if (!onWindows) {
      const put = await sh(`echo hi | beuss PUT q`, { env: { BHOST: '127.0.0.1', BPORT: String(port) } });
      expect(put.code).toBe(3);
    }
  });

  it('exits 4 with the server code when the server refuses (TOO_LARGE in reject mode)', async () => {
    const strict = await startServer(['--oversize', 'reject']);
    try {
      const r = await beuss(['PUT', 'q', '--host', strict.host, '--port', String(strict.port)], { input: Buffer.alloc(10_241) });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/^beuss: refused by the server: TOO_LARGE /);
      const ok = await beuss(['PUT', 'q', '--host', strict.host, '--port', String(strict.port)], { input: Buffer.alloc(10_240) });
      expect(ok.code).toBe(0);
    } finally {
      await strict.stop();
    }
  });

  it('exits 4 on FULL when the server memory cap is reached', async () => {
    const small = await startServer(['--max-queued-bytes', '1000']);
    try {
      const a = ['--host', small.host, '--port', String(small.port)];
      expect((await beuss(['PUT', 'q', ...a], { input: Buffer.alloc(900) })).code).toBe(0);
      const r = await beuss(['PUT', 'q', ...a], { input: Buffer.alloc(900) });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/FULL/);
    } finally {
      await small.stop();
    }
  });

  it('exits 3 when the server goes away during ON', async () => {
    const lone = await startServer();
    const child = spawn(process.execPath, [CLI_BIN, 'ON', 'q', '--host', lone.host, '--port', String(lone.port)], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const done = collect(child);
    for (let i = 0; i < 400; i++) {
      const qs = JSON.parse((await beuss(['QUEUES', '--json', '--host', lone.host, '--port', String(lone.port)])).stdout.toString()) as Array<{ consumers: number }>;
      if (qs.some((x) => x.consumers === 1)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await lone.stop('SIGKILL');
    const r = await done;
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/connection to 127\.0\.0\.1:\d+ was closed/);
  });
});
