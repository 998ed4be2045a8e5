// beuss-server as a program: flags, environment, exit codes, the start line
// and the graceful stop on SIGTERM/SIGINT.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, SERVER_BIN, startServer } from '../helpers/server';
import { expectCleanExit, onWindows } from '../helpers/platform';
import { checkNumberedMsgs, Client, eventually, numberedPuts, put } from './util';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs beuss-server to completion with the given arguments and environment (B* variables cleared first). */
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(childEnv)) if (/^B[A-Z]+$/.test(k)) delete childEnv[k];
  Object.assign(childEnv, env);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SERVER_BIN, ...args], { env: childEnv as NodeJS.ProcessEnv });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('command line', () => {
  it('--help prints the usage with every flag and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--host', '--port', '--max-message-size', '--oversize', '--max-connections', '--max-queued-bytes', '--help', '--version']) {
      expect(r.stdout).toContain(flag);
    }
    for (const env of ['BHOST', 'BPORT', 'BMAXMESSAGESIZE', 'BOVERSIZE', 'BMAXCONNECTIONS', 'BMAXQUEUEDBYTES']) expect(r.stdout).toContain(env);
    expect(r.stderr).toBe('');
  });

  it('--version prints the package version and exits 0', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`beuss-server ${VERSION}\n`);
  });

  it.each([
    [['--bogus'], {}, /unknown argument '--bogus'/],
    [['--port', 'abc'], {}, /--port/],
    [['--port', '70000'], {}, /--port/],
    [['--port'], {}, /--port: missing value/],
    [['--max-message-size', '0'], {}, /--max-message-size/],
    [['--oversize', 'maybe'], {}, /--oversize/],
    [['--max-connections', '-1'], {}, /--max-connections/],
    [['--max-queued-bytes=lots'], {}, /--max-queued-bytes/],
    [[], { BPORT: 'x' }, /BPORT/],
    [[], { BMAXMESSAGESIZE: '-3' }, /BMAXMESSAGESIZE/],
    [[], { BOVERSIZE: 'drop' }, /BOVERSIZE/],
    [['--memory-return', 'soon'], {}, /--memory-return: expected an integer/],
    [[], { BMEMORYRETURN: '86401' }, /BMEMORYRETURN: must be from 0 to 86400/],
  ] as Array<[string[], Record<string, string>, RegExp]>)('a bad value (%j %j) is one line on stderr and exit code 2', async (args, env, re) => {
    const r = await run(args, env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(re);
  });

  it('exits 1 with one line when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await run(['--host', '127.0.0.1', '--port', String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});

describe('configuration', () => {
  it('prints one start line with the real port, the message size and the oversize mode', async () => {
    const s = await startServer();
    try {
      const lines = s.output().split('\n').filter((l) => l.includes('listening on'));
      expect(lines).toEqual([`beuss-server ${VERSION} listening on 127.0.0.1:${s.port} (max message size 10240 bytes, oversize truncate)`]);
    } finally {
      expectCleanExit(await s.stop());
    }
  });

  it('takes the environment, and flags override it', async () => {
    // BHOST is invalid and BPORT is taken: the flags startServer passes must win.
    const s = await startServer(['--max-message-size', '60'], {
      BHOST: 'no such host',
      BPORT: '1',
      BMAXMESSAGESIZE: '50',
      BOVERSIZE: 'reject',
    });
    try {
      expect(s.output()).toContain('(max message size 60 bytes, oversize reject)');
      const c = await Client.connect(s.port);
      expect((await c.request(put('e', Buffer.alloc(60)))).line).toBe('OK 60');
      expect((await c.request(put('e', Buffer.alloc(61)))).line).toMatch(/^ERR TOO_LARGE /);
      c.destroy();
    } finally {
      expectCleanExit(await s.stop());
    }
    const t = await startServer(['--oversize', 'truncate'], { BMAXMESSAGESIZE: '50', BOVERSIZE: 'reject', BMAXQUEUEDBYTES: '2k' });
    try {
      expect(t.output()).toContain('(max message size 50 bytes, oversize truncate)');
      const c = await Client.connect(t.port);
      expect((await c.request(put('e', Buffer.alloc(80)))).line).toBe('OK 50');
      expect((await c.stats()).max_queued_bytes).toBe('2048');
      c.destroy();
    } finally {
      expectCleanExit(await t.stop());
    }
  });

  it('takes BMAXCONNECTIONS and --max-line', async () => {
    const s = await startServer(['--max-line', '300'], { BMAXCONNECTIONS: '1' });
    try {
      const c = await Client.connect(s.port);
      expect((await c.request(`LEN ${'n'.repeat(250)}\r\n`)).line).toBe('OK 0');
      const refused = await Client.connect(s.port);
      expect(await refused.line()).toMatch(/^ERR TOO_MANY_CONNECTIONS /);
      await refused.closedByServer();
      await c.send(`LEN ${'n'.repeat(400)}\r\n`);
      expect(await c.line()).toMatch(/^ERR LINE_TOO_LONG /);
      await c.closedByServer();
    } finally {
      expectCleanExit(await s.stop());
    }
  });

  it('listens on BHOST and BPORT when no flag is given', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const childEnv: Record<string, string | undefined> = { ...process.env, BHOST: '127.0.0.1', BPORT: String(port) };
    const p = spawn(process.execPath, [SERVER_BIN], { env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    try {
      await eventually(() => out.includes('listening on'), 'the start line');
      expect(out).toContain(`listening on 127.0.0.1:${port} `);
      const c = await Client.connect(port);
      expect((await c.request('PING\r\n')).line).toBe('PONG');
      c.destroy();
    } finally {
      p.kill('SIGINT');
    }
    // On Windows kill() terminates the server without its SIGINT handler: no exit code 0.
    if (!onWindows) expect(await exited).toBe(0);
    else await exited;
  });
});

// On Windows kill() terminates the server without running its SIGTERM/SIGINT handler.
describe.skipIf(onWindows)('graceful stop', () => {
  it('SIGTERM: answers what it owed to a client that was not reading, then exits 0', async () => {
    const s = await startServer();
    const N = 500;
    const SIZE = 1000;
    const c = await Client.connect(s.port);
    const obs = await Client.connect(s.port);
    for (let i = 0; i < N; i += 100) await c.send(numberedPuts('owed', i, 100, SIZE, 's'));
    await c.until(() => c.available() === N, `${N} OKs`);
    for (let i = 0; i < N; i++) expect(await c.line()).toBe(`OK ${SIZE}`);
    // The client stops reading, asks for everything, and the server runs it all.
    c.socket.pause();
    await c.send('GET owed\r\n'.repeat(N));
    await eventually(async () => (await obs.stats()).taken === String(N), 'the server to take every message');
    obs.destroy();
    s.proc.kill('SIGTERM');
    c.socket.resume();
    const got = checkNumberedMsgs(c, SIZE);
    await c.closedByServer(15_000);
    expect(got.bad).toBe('');
    expect(got.next).toBe(N);
    const r = await s.stop();
    expect(r.code).toBe(0);
    expect(s.output()).toMatch(/stopped on SIGTERM/);
  });

  it('SIGTERM: a GET still waiting gets ERR SHUTTING_DOWN, a subscriber is closed, new connections are refused', async () => {
    const s = await startServer();
    const waiter = await Client.connect(s.port);
    const sub = await Client.connect(s.port);
    const obs = await Client.connect(s.port);
    expect((await sub.request('ON stopq\r\n')).line).toBe('OK');
    await waiter.send('GET stopq2 WAIT 60000\r\n');
    await eventually(async () => (await obs.stats()).waiting === '1', 'the GET to wait');
    s.proc.kill('SIGTERM');
    expect(await waiter.line()).toMatch(/^ERR SHUTTING_DOWN /);
    await waiter.closedByServer();
    await sub.closedByServer();
    await obs.closedByServer();
    const r = await s.stop();
    expect(r.code).toBe(0);
    await expect(Client.connect(s.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('SIGTERM: a client that never reads what it is owed does not keep the server from exiting 0', async () => {
    const s = await startServer();
    const c = await Client.connect(s.port);
    const obs = await Client.connect(s.port);
    c.socket.pause();
    // 12 MB of replies owed, more than the socket buffers take.
    c.socket.write('X\r\n'.repeat(300_000));
    await eventually(async () => Number((await obs.stats()).protocol_errors) > 1000, 'the server to run requests');
    const r = await s.stop('SIGTERM');
    expect(r.code).toBe(0);
    expect(s.output()).toMatch(/stopped on SIGTERM/);
    c.destroy();
  });

  it('SIGINT stops an idle server with exit code 0', async () => {
    const s = await startServer();
    const r = await s.stop('SIGINT');
    expect(r.code).toBe(0);
    expect(s.output()).toMatch(/stopped on SIGINT/);
  });
});
