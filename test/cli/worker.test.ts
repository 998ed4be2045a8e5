// The CLI as a worker: `beuss GET q --ack` and `beuss ON q --exec '<cmd>'`,
// the real bin/beuss.js against a real beuss-server.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/index.js';
import { CLI_BIN } from '../helpers/server.js';
import { onWindows } from '../helpers/platform.js';
import { beuss, childEnv, collect, sh, tmpDir, useCliServer } from './run.js';

const { srv, at, env } = useCliServer();
let c: Client;
let n = 0;
const fresh = (base = 'wq') => `${base}-${++n}`;

beforeAll(async () => {
  c = await srv.connect();
});

describe('beuss GET --ack', () => {
  it('acknowledges once the file is written', async () => {
    const q = fresh();
    await c.put(q, 'payload');
    const file = path.join(tmpDir(), 'out.bin');
    const r = await beuss(['GET', q, file, '--ack', ...at]);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe('payload');
    expect(await c.stats(q)).toMatchObject({ ready: 0, leased: 0 });
    expect(Number((await c.stats()).acked)).toBeGreaterThanOrEqual(1);
  });

  it('gives the message back and exits 5 when the file cannot be written', async () => {
    const q = fresh();
    await c.put(q, 'keep me');
    const r = await beuss(['GET', q, path.join(tmpDir(), 'no', 'such', 'dir', 'f'), '--ack', ...at]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/given back \(NACK\)/);
    const back = await c.get(q, { lease: 1000 });
    expect([back!.text(), back!.deliveries]).toEqual(['keep me', 2]);
    await back!.ack();
  });

  it('writes to stdout and exits 1 on an empty queue', async () => {
    const q = fresh();
    await c.put(q, 'out');
    const r = await beuss(['GET', q, '--ack', '--lease', '5', ...at]);
    expect([r.code, r.stdout.toString()]).toEqual([0, 'out']);
    expect((await beuss(['GET', q, '--ack', ...at])).code).toBe(1);
    expect((await beuss(['GET', q, '--lease', '5', ...at])).code).toBe(2);
  });
});

// --exec runs its command with /bin/sh, and the kill test needs POSIX process groups: not on Windows.
describe.skipIf(onWindows)('beuss ON --exec', () => {
  it('runs the command once per message with it on stdin, acks on exit 0, retries and dead-letters failures', async () => {
    const q = fresh();
    for (const s of ['one', 'bad', 'two']) await c.put(q, s);
    const dir = tmpDir();
    const log = path.join(dir, 'log');
    // Fails on "bad"; logs every run with the delivery count the worker sees.
    const cmd = `x=$(cat); echo "$x $BEUSS_DELIVERIES" >> ${log}; [ "$x" != bad ]`;
    const r = await beuss(['ON', q, '--exec', cmd, '--count', '4', '--max-deliver', '2', ...at], { timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(fs.readFileSync(log, 'utf8')).toBe('one 1\nbad 1\nbad 2\ntwo 1\n');
    expect(r.stderr).toMatch(/exited with code 1; message given back \(NACK, delivery 1\)/);
    expect(await c.stats(q)).toMatchObject({ ready: 0, leased: 0, dead: 1 });
    expect((await c.get(`${q}.dead`))!.toString()).toBe('bad');
  });

  it('a worker killed mid-command loses nothing: the message goes to the next worker', async () => {
    const q = fresh();
    await c.put(q, 'survivor');
    const dir = tmpDir();
    const started = path.join(dir, 'started');
    // Its own process group, so that the kill takes its command down with it.
    const child = spawn(process.execPath, [CLI_BIN, 'ON', q, '--exec', `touch ${started}; sleep 30`, ...at], {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const done = collect(child, undefined, 30_000);
    for (let i = 0; i < 1000 && !fs.existsSync(started); i++) await new Promise((r) => setTimeout(r, 10));
    expect(fs.existsSync(started)).toBe(true);
    expect((await c.stats(q)).leased).toBe(1);
    process.kill(-child.pid!, 'SIGKILL');
    await done;
    const r = await sh(`beuss ON ${q} --exec 'cat' --count 1`, { env, timeoutMs: 20_000 });
    expect([r.code, r.stdout.toString()]).toEqual([0, 'survivor']);
    expect(await c.stats(q)).toMatchObject({ ready: 0, leased: 0 });
  });
});

describe('beuss MOVE', () => {
  it('puts dead letters back, in order, and prints how many', async () => {
    const q = fresh();
    for (const s of ['d1', 'd2', 'd3']) await c.put(`${q}.dead`, s);
    await c.put(q, 'first');
    const one = await beuss(['MOVE', `${q}.dead`, q, '--count', '1', ...at]);
    expect([one.code, one.stdout.toString()]).toEqual([0, '1\n']);
    const rest = await beuss(['MOVE', `${q}.dead`, q, ...at]);
    expect([rest.code, rest.stdout.toString()]).toEqual([0, '2\n']);
    const got: string[] = [];
    for (let m = await c.get(q); m !== null; m = await c.get(q)) got.push(m.toString());
    expect(got).toEqual(['first', 'd1', 'd2', 'd3']);
    expect(await c.stats(`${q}.dead`)).toMatchObject({ ready: 0, leased: 0 });
    expect((await beuss(['MOVE', q, q, ...at])).code).toBe(2);
  });
});
