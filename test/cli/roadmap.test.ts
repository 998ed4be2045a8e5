// `beuss PUB`, `beuss SUB`, `beuss PUT --delay/--at` and `beuss SCHEDULE`, end to
// end: the real bin/beuss.js against a real beuss-server.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { CLI_BIN } from '../helpers/server.js';
import { onWindows } from '../helpers/platform.js';
import { beuss, childEnv, collect, useCliServer } from './run.js';

const { srv, at, env } = useCliServer();
let n = 0;
const fresh = (base = 'cq') => `${base}-${++n}`;

// Resolves once the server counts `want` SUB subscriptions in all.
async function subscribers(want: number): Promise<void> {
  const c = await connect({ host: srv.host, port: srv.port });
  try {
    for (let i = 0; i < 1000; i++) {
      if ((await c.stats()).subscribers === want) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`the server never counted ${want} subscribers`);
  } finally {
    await c.close();
  }
}

describe('beuss PUB and beuss SUB', () => {
  it('SUB --count prints what PUB publishes, each followed by a newline; -0 uses NUL', async () => {
    const ch = fresh('ch');
    const a = spawn(process.execPath, [CLI_BIN, 'SUB', ch, '--count', '3', ...at], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const b = spawn(process.execPath, [CLI_BIN, 'SUB', ch, '-0', '--count', '3', ...at], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const ra = collect(a);
    const rb = collect(b);
    await subscribers(2);
    for (const m of ['one', 'two', 'thr\nee']) {
      const r = await beuss(['PUB', ch], { input: m, env });
      expect(r.code).toBe(0);
      expect(r.stdout.length).toBe(0);
    }
    const [oa, ob] = await Promise.all([ra, rb]);
    expect(oa.code).toBe(0);
    expect(oa.stdout.toString()).toBe('one\ntwo\nthr\nee\n');
    expect(ob.code).toBe(0);
    expect(ob.stdout.toString()).toBe('one\0two\0thr\nee\0');
    await subscribers(0);
  });

  // On Windows kill('SIGINT') terminates the CLI without running its handler.
  it.skipIf(onWindows)('PUB with nobody listening succeeds and keeps nothing; SUB exits 0 on Ctrl-C', async () => {
    const ch = fresh('ch');
    expect((await beuss(['PUB', ch], { input: 'lost', env })).code).toBe(0);
    const child = spawn(process.execPath, [CLI_BIN, 'SUB', ch, ...at], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let printed = '';
    const heard = new Promise<void>((resolve) => {
      child.stdout!.on('data', (d: Buffer) => {
        printed += d.toString();
        if (printed.includes('heard\n')) resolve();
      });
    });
    const r = collect(child);
    await subscribers(1);
    expect((await beuss(['PUB', ch], { input: 'heard', env })).code).toBe(0);
    // Wait for the line to be printed before interrupting.
    await heard;
    child.kill('SIGINT');
    const res = await r;
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe('heard\n');
    await subscribers(0);
  });

  it('PUB --lines publishes each line of stdin as its own message', async () => {
    const ch = fresh('ch');
    const child = spawn(process.execPath, [CLI_BIN, 'SUB', ch, '--count', '3', ...at], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const r = collect(child);
    await subscribers(1);
    const pub = await beuss(['PUB', ch, '--lines'], { input: 'a\nb\r\nc', env });
    expect(pub.code).toBe(0);
    const res = await r;
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe('a\nb\nc\n');
    await subscribers(0);
  });

  it('usage errors: no channel, a bad name', async () => {
    expect((await beuss(['SUB'], { env })).code).toBe(2);
    expect((await beuss(['PUB', 'bad\tname'], { input: 'x', env })).code).toBe(2);
  });
});

describe('beuss PUT --delay and --at', () => {
  it('a delayed message is not there before its time, then is', async () => {
    const q = fresh();
    // Seconds, not ms: the LEN and QUEUES runs below start a process each,
    // which can take most of a second on a busy machine.
    expect((await beuss(['PUT', q, '--delay', '5s'], { input: 'late', env })).code).toBe(0);
    const len = await beuss(['LEN', q], { env });
    expect(len.stdout.toString()).toBe('0\n');
    const queues = JSON.parse((await beuss(['QUEUES', '--json'], { env })).stdout.toString()) as Array<{ name: string; scheduled: number }>;
    expect(queues.find((x) => x.name === q)?.scheduled).toBe(1);
    const got = await beuss(['GET', q, '--wait', '10'], { env });
    expect(got.code).toBe(0);
    expect(got.stdout.toString()).toBe('late');
  });

  it('--at takes ISO-8601 with a zone; a past time is due at once', async () => {
    const q = fresh();
    expect((await beuss(['PUT', q, '--at', '2020-01-01T00:00:00Z'], { input: 'past', env })).code).toBe(0);
    const got = await beuss(['GET', q, '--wait', '10'], { env });
    expect(got.stdout.toString()).toBe('past');
  });

  it('bad values are usage errors (exit 2)', async () => {
    for (const args of [
      ['--delay', 'soon'],
      ['--delay', '30'],
      ['--at', 'tomorrow'],
      ['--at', '2026-12-01T08:00:00'],
      ['--delay', '1s', '--at', '2026-12-01T08:00:00Z'],
    ]) {
      const r = await beuss(['PUT', 'q', ...args], { input: 'x', env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--delay|--at/);
    }
  });
});

describe('beuss SCHEDULE', () => {
  it('add, ls, ls --json, rm; the schedule puts its message', async () => {
    const name = fresh('s');
    const q = fresh();
    const add = await beuss(['SCHEDULE', 'add', name, q, '@every 1s'], { input: 'tick', env });
    expect(add.code).toBe(0);
    expect(add.stdout.toString()).toMatch(new RegExp(`^${name}: next at \\d{4}-\\d\\d-\\d\\dT`));
    const ls = await beuss(['SCHEDULE', 'ls'], { env });
    expect(ls.stdout.toString()).toMatch(/^NAME +QUEUE +NEXT +FIRED +SPEC\n/);
    expect(ls.stdout.toString()).toMatch(new RegExp(`\n${name} +${q} +\\d{4}-`));
    const json = JSON.parse((await beuss(['SCHEDULE', 'ls', '--json'], { env })).stdout.toString()) as Array<{ name: string; spec: string }>;
    expect(json.find((x) => x.name === name)?.spec).toBe('@every 1s');
    const got = await beuss(['GET', q, '--wait', '10'], { env });
    expect(got.stdout.toString()).toBe('tick');
    expect((await beuss(['SCHEDULE', 'rm', name], { env })).code).toBe(0);
    const again = await beuss(['SCHEDULE', 'rm', name], { env });
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/NO_SCHEDULE/);
  });

  it('a bad cron expression is refused with the reason (exit 4); bad usage exits 2', async () => {
    const r = await beuss(['SCHEDULE', 'add', 's', 'q', '*/5 * * *'], { input: '', env });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/BAD_SCHEDULE .*4 fields/);
    expect((await beuss(['SCHEDULE'], { env })).code).toBe(2);
    expect((await beuss(['SCHEDULE', 'fly'], { env })).code).toBe(2);
    expect((await beuss(['SCHEDULE', 'add', 's', 'q'], { env })).code).toBe(2);
  });
});
