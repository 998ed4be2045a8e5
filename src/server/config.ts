// The server's configuration: defaults, then environment variables, then
// command-line flags (flags win). Every bad value is one UsageError whose
// message names the flag or variable, for main to print as one line.
import type { Oversize, SubPolicy } from '../native.js';

/** Everything beuss-server needs to start. */
export interface ServerConfig {
  /** Host or address to listen on. */
  host: string;
  /** TCP port; 0 lets the OS choose. */
  port: number;
  /** Payload bytes kept per message. */
  maxMessageSize: number;
  /** What PUT does past `maxMessageSize`. */
  oversize: Oversize;
  /** Open connections served at once; more are refused with `ERR TOO_MANY_CONNECTIONS`. */
  maxConnections: number;
  /** Cap on payload bytes held in all queues (PUT over it gets `ERR FULL`); 0 means none. */
  maxQueuedBytes: number;
  /** Longest request header line in bytes, line end included. */
  maxLine: number;
  /** Deliveries under a lease before a message goes to its dead-letter queue `<queue>.dead`. */
  maxDeliver: number;
  /** Milliseconds a stopping server waits for clients to take what they are owed. */
  shutdownTimeoutMs: number;
  /** Milliseconds after which an unused empty queue with no consumer is removed; 0 = never. */
  queueIdleMs: number;
  /** Events kept per channel subscriber that cannot keep up. */
  subBuffer: number;
  /** What a subscriber's full buffer does. */
  subPolicy: SubPolicy;
  /**
   * Milliseconds without input after which memory freed while clients were
   * active goes back to the system (kept until then for the next messages);
   * default `DEFAULTS.memoryReturnSeconds`.
   */
  memoryReturnMs?: number;
  /**
   * How sockets are read: `shared` (default) reads every connection into one
   * reused buffer; `data` uses Node's 'data' events (a new buffer per read),
   * the path taken when the runtime cannot give a server socket a buffer.
   */
  readMode?: 'shared' | 'data';
}

/** Default values, except those the engine defines (message size, line length). */
export const DEFAULTS = {
  host: 'localhost',
  port: 6552,
  oversize: 'truncate' as Oversize,
  maxConnections: 10_000,
  // A bus in front of a few MB of heap should not grow to eat the machine
  // when consumers stall: 1 GiB of payloads, then PUT answers ERR FULL.
  maxQueuedBytes: 1024 * 1024 * 1024,
  shutdownTimeoutMs: 5_000,
  // beanstalkd drops an empty unwatched tube at once; a few minutes is
  // gentler (a producer between bursts keeps its queue in QUEUES) and still
  // gives back the memory of names used once.
  queueIdleSeconds: 300,
  // As jemalloc's default decay: a burst after a pause of a few seconds
  // reuses the memory of the last one instead of faulting in fresh pages
  // (about half the speed for large messages), and an idle server still
  // gives it back soon.
  memoryReturnSeconds: 10,
  subPolicy: 'drop-oldest' as SubPolicy,
};

/** Engine-defined defaults and bounds the parser needs. */
export interface EngineLimits {
  DEFAULT_MAX_MESSAGE_SIZE: number;
  DEFAULT_SUB_BUFFER: number;
  DEFAULT_MAX_LINE: number;
  MIN_MAX_LINE: number;
  MAX_MAX_LINE: number;
  MAX_MAX_MESSAGE_SIZE: number;
  DEFAULT_MAX_DELIVER: number;
}

/** A bad flag, flag value or environment variable; main prints its message and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'EUSAGE';
}

/** The outcome of parsing a command line: run, or print help or the version. */
export type ParsedArgs = { action: 'run'; config: ServerConfig } | { action: 'help' } | { action: 'version' };

const SIZE_SUFFIX: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Returns the integer in `text` (decimal, with an optional k/m/g binary suffix when `sizes`), or throws a UsageError naming `what`. */
function parseInteger(what: string, text: string, min: number, max: number, sizes = false): number {
  const m = sizes ? /^(\d{1,16})([kKmMgG]?)$/.exec(text.trim()) : /^(\d{1,16})()$/.exec(text.trim());
  if (!m) {
    throw new UsageError(`${what}: expected ${sizes ? 'a byte count (e.g. 10240, 64k, 1g)' : 'an integer'}, got '${text}'`);
  }
  const v = Number(m[1]) * SIZE_SUFFIX[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`${what}: must be from ${min} to ${max}, got '${text}'`);
  }
  return v;
}

function parseOversize(what: string, text: string): Oversize {
  const t = text.trim().toLowerCase();
  if (t !== 'truncate' && t !== 'reject') throw new UsageError(`${what}: expected 'truncate' or 'reject', got '${text}'`);
  return t;
}

function parseSubPolicy(what: string, text: string): SubPolicy {
  const t = text.trim().toLowerCase();
  if (t !== 'drop-oldest' && t !== 'disconnect') throw new UsageError(`${what}: expected 'drop-oldest' or 'disconnect', got '${text}'`);
  return t;
}

function parseHost(what: string, text: string): string {
  const t = text.trim();
  if (t === '' || /\s/.test(t)) throw new UsageError(`${what}: expected a host name or address, got '${text}'`);
  return t;
}

interface Setting {
  flag: string;
  env?: string;
  apply(c: ServerConfig, what: string, value: string): void;
}

function settings(limits: EngineLimits): Setting[] {
  return [
    { flag: '--host', env: 'BHOST', apply: (c, w, v) => (c.host = parseHost(w, v)) },
    { flag: '--port', env: 'BPORT', apply: (c, w, v) => (c.port = parseInteger(w, v, 0, 65535)) },
    {
      flag: '--max-message-size',
      env: 'BMAXMESSAGESIZE',
      apply: (c, w, v) => (c.maxMessageSize = parseInteger(w, v, 1, limits.MAX_MAX_MESSAGE_SIZE, true)),
    },
    { flag: '--oversize', env: 'BOVERSIZE', apply: (c, w, v) => (c.oversize = parseOversize(w, v)) },
    {
      flag: '--max-connections',
      env: 'BMAXCONNECTIONS',
      apply: (c, w, v) => (c.maxConnections = parseInteger(w, v, 1, 1_000_000)),
    },
    {
      flag: '--max-queued-bytes',
      env: 'BMAXQUEUEDBYTES',
      apply: (c, w, v) => (c.maxQueuedBytes = parseInteger(w, v, 0, Number.MAX_SAFE_INTEGER, true)),
    },
    {
      flag: '--max-line',
      env: 'BMAXLINE',
      apply: (c, w, v) => (c.maxLine = parseInteger(w, v, limits.MIN_MAX_LINE, limits.MAX_MAX_LINE, true)),
    },
    {
      flag: '--max-deliver',
      env: 'BMAXDELIVER',
      apply: (c, w, v) => (c.maxDeliver = parseInteger(w, v, 1, 0xffffffff)),
    },
    {
      flag: '--queue-idle',
      env: 'BQUEUEIDLE',
      // Up to ten years: past that, 0 says "never" more clearly.
      apply: (c, w, v) => (c.queueIdleMs = parseInteger(w, v, 0, 10 * 366 * 86_400) * 1000),
    },
    {
      flag: '--sub-buffer',
      env: 'BSUBBUFFER',
      apply: (c, w, v) => (c.subBuffer = parseInteger(w, v, 0, 1_000_000)),
    },
    { flag: '--sub-policy', env: 'BSUBPOLICY', apply: (c, w, v) => (c.subPolicy = parseSubPolicy(w, v)) },
    {
      flag: '--memory-return',
      env: 'BMEMORYRETURN',
      apply: (c, w, v) => (c.memoryReturnMs = parseInteger(w, v, 0, 86_400) * 1000),
    },
  ];
}

/**
 * Returns what the command line asks for: the configuration to run with
 * (defaults, overridden by `env`, overridden by flags), or help, or the
 * version. Flags take `--flag value` or `--flag=value`. Throws a UsageError
 * on an unknown flag, a missing value or a bad value.
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv, limits: EngineLimits): ParsedArgs {
  const config: ServerConfig = {
    host: DEFAULTS.host,
    port: DEFAULTS.port,
    maxMessageSize: limits.DEFAULT_MAX_MESSAGE_SIZE,
    oversize: DEFAULTS.oversize,
    maxConnections: DEFAULTS.maxConnections,
    maxQueuedBytes: DEFAULTS.maxQueuedBytes,
    maxLine: limits.DEFAULT_MAX_LINE,
    maxDeliver: limits.DEFAULT_MAX_DELIVER,
    shutdownTimeoutMs: DEFAULTS.shutdownTimeoutMs,
    queueIdleMs: DEFAULTS.queueIdleSeconds * 1000,
    subBuffer: limits.DEFAULT_SUB_BUFFER,
    subPolicy: DEFAULTS.subPolicy,
    memoryReturnMs: DEFAULTS.memoryReturnSeconds * 1000,
  };
  const all = settings(limits);
  const given = new Map<Setting, [string, string]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { action: 'help' };
    if (arg === '--version' || arg === '-v' || arg === '-V') return { action: 'version' };
    const eq = arg.indexOf('=');
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    const s = all.find((x) => x.flag === name);
    if (!s) throw new UsageError(`unknown argument '${arg}' (see --help)`);
    let value: string;
    if (eq > 0 && arg.startsWith('--')) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`${name}: missing value`);
      value = argv[++i]!;
    }
    given.set(s, [name, value]);
  }
  // A flag replaces its variable outright: an overridden variable is not
  // even checked.
  for (const s of all) {
    const flag = given.get(s);
    if (flag) {
      s.apply(config, flag[0], flag[1]);
      continue;
    }
    const v = s.env ? env[s.env] : undefined;
    if (v !== undefined && v !== '') s.apply(config, `environment variable ${s.env}`, v);
  }
  return { action: 'run', config };
}

/** Returns the --help text. */
export function helpText(version: string, limits: EngineLimits): string {
  return `beuss-server ${version}: an in-memory FIFO message bus (protocol: docs/PROTOCOL.md)

Usage: beuss-server [options]

Options (a flag overrides its environment variable):
  --host <host>               BHOST            listen address (default ${DEFAULTS.host})
  --port <port>               BPORT            TCP port, 0 = any free one (default ${DEFAULTS.port})
  --max-message-size <n>      BMAXMESSAGESIZE  payload bytes kept per message (default ${limits.DEFAULT_MAX_MESSAGE_SIZE})
  --oversize truncate|reject  BOVERSIZE        a PUT over the maximum keeps its first bytes and
                                               replies OK <stored> (truncate), or stores nothing
                                               and replies ERR TOO_LARGE (reject) (default ${DEFAULTS.oversize})
  --max-connections <n>       BMAXCONNECTIONS  clients served at once; more get
                                               ERR TOO_MANY_CONNECTIONS (default ${DEFAULTS.maxConnections})
  --max-queued-bytes <n>      BMAXQUEUEDBYTES  payload bytes held in all queues; a PUT past it
                                               gets ERR FULL; 0 = no cap (default 1g = ${DEFAULTS.maxQueuedBytes})
  --max-line <n>              BMAXLINE         request header line bytes, line end included
                                               (${limits.MIN_MAX_LINE} to ${limits.MAX_MAX_LINE}, default ${limits.DEFAULT_MAX_LINE})
  --max-deliver <n>           BMAXDELIVER      deliveries under a lease before a message moves
                                               to <queue>.dead; GET/ON MAXDELIVER overrides it
                                               (default ${limits.DEFAULT_MAX_DELIVER})
  --queue-idle <seconds>      BQUEUEIDLE       remove a queue that stayed empty, with no consumer
                                               or waiting GET, this long; 0 = never
                                               (default ${DEFAULTS.queueIdleSeconds})
  --sub-buffer <n>            BSUBBUFFER       events kept for a channel subscriber that does
                                               not keep up (default ${limits.DEFAULT_SUB_BUFFER})
  --sub-policy <policy>       BSUBPOLICY       past that: drop-oldest (counted, told to it with
                                               DROPPED) or disconnect (default ${DEFAULTS.subPolicy})
  --memory-return <seconds>   BMEMORYRETURN    memory freed while clients are active is kept for
                                               the next messages, and given back to the system
                                               once no input came for this long; 0 = at once
                                               (default ${DEFAULTS.memoryReturnSeconds})
  -h, --help                                   print this help and exit
  -v, --version                                print the version and exit

Sizes accept a k, m or g suffix (powers of 1024). SIGINT or SIGTERM stops the
server: it stops accepting, answers what it owes, then exits with code 0.
Exit codes: 0 stopped cleanly, 1 could not start (address in use, engine not
built), 2 bad argument or environment variable.
`;
}
