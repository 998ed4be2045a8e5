// Starts the real beuss-server executable on a free loopback port, as a user
// would run it, and stops it after the test.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type Client, connect } from '../../src/index.js';
import { expectCleanExit } from './platform.js';

export const ROOT = path.resolve(__dirname, '..', '..');
export const SERVER_BIN = path.join(ROOT, 'bin', 'beuss-server.js');
export const CLI_BIN = path.join(ROOT, 'bin', 'beuss.js');

export interface RunningServer {
  host: string;
  port: number;
  proc: ChildProcess;
  /** Everything the server printed on stdout and stderr so far. */
  output(): string;
  /** Resident set size of the server process in bytes (Linux /proc). */
  rss(): number;
  /** SIGTERM, then wait for exit; resolves with the exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Returns a running beuss-server on 127.0.0.1 and an OS-chosen port, started
 * with the given extra arguments and environment. It waits for the server's
 * "listening on HOST:PORT" line.
 */
export async function startServer(
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<RunningServer> {
  const childEnv: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(childEnv)) if (k.startsWith('B') && /^B[A-Z]+$/.test(k)) delete childEnv[k];
  Object.assign(childEnv, env);
  const proc = spawn(process.execPath, [SERVER_BIN, '--host', '127.0.0.1', '--port', '0', ...args], {
    env: childEnv as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+):(\d+)/.exec(out);
      if (m) resolve(Number(m[2]));
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => reject(new Error(`beuss-server exited (${code}) before listening:\n${out}`)));
    setTimeout(() => reject(new Error(`beuss-server did not start in 15 s:\n${out}`)), 15_000).unref();
  });
  return {
    host: '127.0.0.1',
    port,
    proc,
    output: () => out,
    rss: () => {
      const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : NaN;
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** What useServer() starts. */
export interface ServerOptions {
  /** Extra command-line arguments, after `--host 127.0.0.1 --port 0`. */
  args?: string[];
  /** Extra environment variables. */
  env?: Record<string, string | undefined>;
  /** Also assert, after the last test, that the server exited cleanly when stopped (see expectCleanExit). */
  cleanExit?: boolean;
}

/** A server shared by the tests of a file or describe block: a RunningServer, usable once beforeAll has run. */
export interface SharedServer extends RunningServer {
  /** Returns a client library connection to the server, closed (forced) before the server stops. */
  connect(): Promise<Client>;
}

/**
 * Returns the server that beforeAll starts for the enclosing file or describe
 * block and afterAll stops, once the connections from its connect() are closed.
 * Its fields read the running server, so they throw outside tests and hooks.
 */
export function useServer(opts: ServerOptions = {}): SharedServer {
  let running: RunningServer | undefined;
  const clients: Client[] = [];
  const get = (): RunningServer => {
    if (!running) throw new Error('the shared server is not running: use it from a test or a hook');
    return running;
  };
  beforeAll(async () => {
    running = await startServer(opts.args, opts.env);
  });
  afterAll(async () => {
    for (const c of clients) await c.close({ force: true }).catch(() => {});
    const r = await running?.stop();
    if (opts.cleanExit) expectCleanExit(r);
  });
  return {
    get host() {
      return get().host;
    },
    get port() {
      return get().port;
    },
    get proc() {
      return get().proc;
    },
    output: () => get().output(),
    rss: () => get().rss(),
    stop: (signal) => get().stop(signal),
    connect: async () => {
      const c = await connect({ host: get().host, port: get().port });
      clients.push(c);
      return c;
    },
  };
}
