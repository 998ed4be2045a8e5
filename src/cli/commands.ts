// The commands of `beuss`, one function per verb. Each resolves with the exit
// code; errors thrown (ConnectionError, ServerError, CliExit) are mapped by main.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { type Client, connect, type PutOptions } from '../client/client.js';
import { toDelayMs, toUnixMs } from '../client/duration.js';
import { ConnectionError } from '../client/errors.js';
import type { LeasedMessage } from '../client/message.js';
import { parsePort } from '../client/options.js';
import { queueNameProblem } from '../client/validate.js';
import { CliExit, EXIT, type ParsedArgs, usageError } from './args.js';

type Command = (p: ParsedArgs) => Promise<number>;

const CONNECTION_OPTIONS = ['host', 'port', 'help', 'version'];

// Checks the positional count and the options of a verb, and the queue name when it takes one; throws usage errors.
function check(p: ParsedArgs, verb: string, positional: [min: number, max: number], options: string[] = []): void {
  const [min, max] = positional;
  if (p.args.length < min) throw usageError(`${verb} needs ${min === 1 ? 'a queue name' : `${min} arguments`}`);
  if (p.args.length > max) throw usageError(`too many arguments for ${verb}: '${p.args.slice(max).join(' ')}'`);
  for (const name of p.opts.keys()) {
    if (!CONNECTION_OPTIONS.includes(name) && !options.includes(name)) throw usageError(`option --${name} does not apply to ${verb}`);
  }
  if (min >= 1) {
    const problem = queueNameProblem(p.args[0]);
    if (problem) throw usageError(problem);
  }
}

function str(p: ParsedArgs, name: string): string | undefined {
  const v = p.opts.get(name);
  return typeof v === 'string' ? v : undefined;
}

// Starts connecting with --host/--port over BHOST/BPORT; the promise is marked handled so that
// a failure while stdin is still being read is reported once, when awaited.
function open(p: ParsedArgs): Promise<Client> {
  const host = str(p, 'host');
  const portText = str(p, 'port');
  let port: number | undefined;
  try {
    port = portText === undefined ? undefined : parsePort(portText, '--port');
    if (portText === undefined && process.env.BPORT) parsePort(process.env.BPORT, 'BPORT');
  } catch (err) {
    return Promise.reject(usageError((err as Error).message));
  }
  const c = connect({ host, port });
  c.catch(() => {});
  return c.catch((err: unknown) => {
    if (err instanceof ConnectionError && err.code !== 'CONNECTION_CLOSED') {
      throw new CliExit(
        EXIT.UNREACHABLE,
        `cannot reach ${err.host}:${err.port} (${err.code}): is beuss-server running there? (set --host/--port or BHOST/BPORT)`,
      );
    }
    throw err;
  });
}

// Runs fn with a connected client and closes the client afterwards, whatever happens.
async function withClient(p: ParsedArgs, fn: (c: Client) => Promise<number>, pending?: Promise<Client>): Promise<number> {
  const client = await (pending ?? open(p));
  try {
    return await fn(client);
  } finally {
    await client.close({ force: client.counters().pending > 0 }).catch(() => {});
  }
}

// Resolves once `data` is handed to stdout, waiting for 'drain' when stdout is backed up.
function writeOut(data: Buffer | string): Promise<void> {
  if (process.stdout.write(data)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

// Resolves once `data` then `sep` are handed to stdout; a small record is
// joined to its separator so that it is one write.
async function writeRecord(data: Buffer, sep: Buffer): Promise<void> {
  if (data.length < 65_536) {
    await writeOut(Buffer.concat([data, sep], data.length + 1));
  } else {
    process.stdout.write(data);
    await writeOut(sep);
  }
}

// Returns what `until()` resolves to. Meanwhile a first SIGINT or SIGTERM
// calls `stop` (a graceful end) and a second one exits at once with 130.
async function stopOnSignals<T>(stop: () => void, until: () => Promise<T>): Promise<T> {
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await until();
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

async function readInput(file: string | undefined): Promise<Buffer> {
  if (file !== undefined && file !== '-') {
    try {
      return await fs.promises.readFile(file);
    } catch (err) {
      throw new CliExit(EXIT.FAILED, `cannot read ${file}: ${(err as Error).message}`);
    }
  }
  if (process.stdin.isTTY) process.stderr.write('beuss: reading the message from the terminal; end it with Ctrl-D\n');
  return readAll(process.stdin);
}

async function writeResult(data: Buffer, file: string | undefined): Promise<void> {
  if (file !== undefined && file !== '-') {
    try {
      await fs.promises.writeFile(file, data);
    } catch (err) {
      throw new CliExit(EXIT.FAILED, `cannot write ${file}: ${(err as Error).message}`);
    }
    return;
  }
  await writeOut(data);
}

function warnTruncated(stored: number, sent: number, what: string): void {
  process.stderr.write(
    `beuss: warning: the server stored ${stored} of the ${sent} bytes of ${what}: it was truncated to the server's maximum message size\n`,
  );
}

function emptyNotice(queue: string, waited: boolean): void {
  // Exit code 1 says it to scripts; people at a terminal get a line too.
  if (process.stderr.isTTY) process.stderr.write(`beuss: queue '${queue}' is empty${waited ? ' (wait timed out)' : ''}\n`);
}

// Returns the put options of --delay (30s, 5m, 1h, 250ms: a unit is required, since --wait counts
// seconds and a bare number would be ambiguous) or --at (ISO-8601 with a zone).
function whenOptions(p: ParsedArgs): PutOptions {
  const delay = str(p, 'delay');
  const at = str(p, 'at');
  if (delay !== undefined && at !== undefined) throw usageError('give --delay or --at, not both');
  try {
    if (delay !== undefined) {
      if (/^\d+$/.test(delay.trim())) throw new Error(`'${delay}' needs a unit: 250ms, 30s, 5m, 1h, 1h30m`);
      return { delay: toDelayMs(delay) };
    }
    if (at !== undefined) return { at: toUnixMs(at) };
  } catch (err) {
    throw usageError(`${delay !== undefined ? '--delay' : '--at'}: ${(err as Error).message}`);
  }
  return {};
}

const put: Command = async (p) => {
  check(p, 'PUT', [1, 2], ['lines', 'delay', 'at']);
  const [queue, file] = p.args;
  const when = whenOptions(p);
  if (p.opts.has('lines')) {
    if (file !== undefined && file !== '-') throw usageError('PUT --lines reads stdin only');
    return sendLines(p, (client, line) => client.put(queue, line, when));
  }
  const pending = open(p);
  // Fails as soon as the server is found unreachable, without waiting for the end of stdin.
  const [, data] = await Promise.all([pending, readInput(file)]);
  return withClient(
    p,
    async (client) => {
      const stored = await client.put(queue, data, when);
      if (stored < data.length) warnTruncated(stored, data.length, 'the message');
      return EXIT.OK;
    },
    pending,
  );
};

// Most puts in flight before stdin is paused: bounds memory when stdin is faster than the server.
const LINES_HIGH_WATER = 4096;
const LINES_LOW_WATER = 1024;

// Sends each line of stdin with `deliver` (a put or a publish) as lines arrive; resolves with the exit code.
async function sendLines(p: ParsedArgs, deliver: (client: Client, line: Buffer) => Promise<number>): Promise<number> {
  return withClient(p, (client) => {
    return new Promise<number>((resolve, reject) => {
      const stdin = process.stdin;
      let partial: Buffer[] = [];
      let lineNo = 0;
      let inFlight = 0;
      let ended = false;
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        stdin.pause();
        stdin.destroy();
        reject(err);
      };
      const done = () => {
        if (ended && inFlight === 0 && !failed) resolve(EXIT.OK);
      };
      const send = (line: Buffer) => {
        const n = ++lineNo;
        // A CRLF file sends its lines without the CR.
        const body = line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line;
        inFlight++;
        deliver(client, body).then(
          (stored) => {
            inFlight--;
            if (stored < body.length) warnTruncated(stored, body.length, `line ${n}`);
            if (inFlight <= LINES_LOW_WATER && stdin.isPaused() && !ended) stdin.resume();
            done();
          },
          fail,
        );
      };
      stdin.on('data', (chunk: Buffer) => {
        let start = 0;
        for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
          const piece = chunk.subarray(start, nl);
          if (partial.length > 0) {
            partial.push(piece);
            send(Buffer.concat(partial));
            partial = [];
          } else {
            send(piece);
          }
          start = nl + 1;
        }
        if (start < chunk.length) partial.push(Buffer.from(chunk.subarray(start)));
        if (inFlight >= LINES_HIGH_WATER) stdin.pause();
      });
      stdin.on('end', () => {
        if (partial.length > 0) send(Buffer.concat(partial));
        partial = [];
        ended = true;
        done();
      });
      stdin.on('error', fail);
      client.closed().then((err) => {
        if (err) fail(err);
      });
      // Ctrl-C ends `tail -f log | beuss PUT logs --lines`: stop reading, let the lines already sent be confirmed.
      const onSignal = () => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        stdin.pause();
        stdin.destroy();
        ended = true;
        done();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
  });
}

function waitMs(p: ParsedArgs): number {
  const w = str(p, 'wait');
  if (w === undefined) return 0;
  const secs = Number(w);
  // The protocol carries at most 19 digits of milliseconds; a year is plenty.
  if (w.trim() === '' || !Number.isFinite(secs) || secs < 0 || secs > 31_536_000) {
    throw usageError(`--wait needs a number of seconds from 0 to 31536000, got '${w}'`);
  }
  return Math.round(secs * 1000);
}

// Lease used by --ack and --exec when --lease is not given: a slow command or a slow reader should TOUCH or set more.
const DEFAULT_LEASE_SECONDS = 30;

// Returns --lease in milliseconds (seconds on the command line, decimals allowed).
function leaseMs(p: ParsedArgs): number {
  const v = str(p, 'lease');
  if (v === undefined) return DEFAULT_LEASE_SECONDS * 1000;
  const secs = Number(v);
  const ms = Math.round(secs * 1000);
  if (v.trim() === '' || !Number.isFinite(secs) || ms < 1 || ms > 0xffffffff) {
    throw usageError(`--lease needs a number of seconds from 0.001 to 4294967, got '${v}'`);
  }
  return ms;
}

// Set while a leased message is being written to stdout: a reader that goes away then is a failure
// (exit 5), not the normal end it is for plain output; the server gets the message back.
let leasedWriteInProgress = false;

// Resolves once `data` was accepted by the OS (the write callback ran), rejects with the write error.
function writeOutFlushed(data: Buffer): Promise<void> {
  leasedWriteInProgress = true;
  return new Promise<void>((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  }).finally(() => {
    leasedWriteInProgress = false;
  });
}

// Writes a leased message to file (closed before returning) or stdout (handed to the OS); ACKs
// it only then, NACKs it and fails when the write failed.
async function writeAndAck(msg: LeasedMessage, file: string | undefined): Promise<void> {
  try {
    if (file !== undefined && file !== '-') await fs.promises.writeFile(file, msg.data);
    else await writeOutFlushed(msg.data);
  } catch (err) {
    await msg.nack().catch(() => {});
    throw new CliExit(EXIT.FAILED, `cannot write the message${file && file !== '-' ? ` to ${file}` : ''}: ${(err as Error).message}; it was given back (NACK)`);
  }
  await msg.ack();
}

function maxDeliver(p: ParsedArgs): number | undefined {
  const v = positiveInt(p, 'max-deliver');
  if (v !== undefined && v > 0xffffffff) throw usageError(`--max-deliver is at most 4294967295, got '${v}'`);
  return v;
}

const get: Command = async (p) => {
  check(p, 'GET', [1, 2], ['wait', 'ack', 'lease', 'max-deliver']);
  const [queue, file] = p.args;
  const wait = waitMs(p);
  if (!p.opts.has('ack') && (p.opts.has('lease') || p.opts.has('max-deliver'))) throw usageError('--lease and --max-deliver go with --ack');
  if (p.opts.has('ack')) {
    const lease = leaseMs(p);
    const md = maxDeliver(p);
    return withClient(p, async (client) => {
      const msg = await client.get(queue, { wait, lease, maxDeliver: md });
      if (msg === null) {
        emptyNotice(queue, wait > 0);
        return EXIT.EMPTY;
      }
      await writeAndAck(msg, file);
      return EXIT.OK;
    });
  }
  return withClient(p, async (client) => {
    const data = await client.get(queue, { wait });
    if (data === null) {
      emptyNotice(queue, wait > 0);
      return EXIT.EMPTY;
    }
    await writeResult(data, file);
    return EXIT.OK;
  });
};

const peek: Command = async (p) => {
  check(p, 'PEEK', [1, 2]);
  const [queue, file] = p.args;
  return withClient(p, async (client) => {
    const data = await client.peek(queue);
    if (data === null) {
      emptyNotice(queue, false);
      return EXIT.EMPTY;
    }
    await writeResult(data, file);
    return EXIT.OK;
  });
};

function positiveInt(p: ParsedArgs, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw usageError(`--${name} needs a whole number of at least 1, got '${v}'`);
  return Number(v);
}

// Runs `command` with the shell, the message on its stdin; resolves with its exit code (128+n for signal n).
function runShell(command: string, msg: LeasedMessage): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'inherit', 'inherit'],
      env: { ...process.env, BEUSS_QUEUE: msg.queue, BEUSS_ID: msg.id, BEUSS_DELIVERIES: String(msg.deliveries) },
    });
    // A command that does not read its stdin must not fail the write.
    child.stdin.on('error', () => {});
    child.stdin.end(msg.data);
    child.on('error', (err) => {
      process.stderr.write(`beuss: cannot run '${command}': ${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)));
  });
}

// ON with --exec or --ack: each message under a lease, settled after the command or the write.
async function onLeased(p: ParsedArgs, queue: string, count: number | undefined, sep: Buffer): Promise<number> {
  const command = str(p, 'exec');
  if (command !== undefined && command.trim() === '') throw usageError('--exec needs a command');
  const lease = leaseMs(p);
  const md = maxDeliver(p);
  // --exec runs one command at a time: one message held at once, the next one waits on the server.
  const prefetch = command !== undefined ? 1 : Math.min(positiveInt(p, 'prefetch') ?? 16, count ?? Infinity);
  return withClient(p, async (client) => {
    let failure: unknown = null;
    const consumer = client.consume(
      queue,
      async (msg: LeasedMessage) => {
        if (command === undefined) {
          await writeAndAck(msg, undefined);
          await writeOut(sep);
          return;
        }
        const code = await runShell(command, msg);
        if (code === 0) {
          await msg.ack();
        } else {
          process.stderr.write(`beuss: '${command}' exited with code ${code}; message given back (NACK, delivery ${msg.deliveries})\n`);
          await msg.nack();
        }
      },
      { prefetch, max: count, lease, maxDeliver: md },
    );
    await stopOnSignals(
      // Finish the message in hand; the server gets the rest back with the connection.
      () => void consumer.drain(),
      () =>
        consumer.closed.catch((err: unknown) => {
          failure = err;
        }),
    );
    if (failure) throw failure;
    return EXIT.OK;
  });
}

const on: Command = async (p) => {
  check(p, 'ON', [1, 1], ['count', 'null', 'prefetch', 'ack', 'exec', 'lease', 'max-deliver']);
  const [queue] = p.args;
  const count = positiveInt(p, 'count');
  const prefetch = Math.min(positiveInt(p, 'prefetch') ?? 16, count ?? Infinity);
  const sep = Buffer.from(p.opts.has('null') ? [0] : [10]);
  if (p.opts.has('ack') || p.opts.has('exec')) return onLeased(p, queue, count, sep);
  if (p.opts.has('lease') || p.opts.has('max-deliver')) throw usageError('--lease and --max-deliver go with --ack or --exec');
  return withClient(p, async (client) => {
    const consumer = client.consume(
      queue,
      async (msg) => {
        // The next message (and the credit for more) waits until this one is written out.
        await writeRecord(msg.data, sep);
      },
      { prefetch, max: count },
    );
    await stopOnSignals(
      // Stop new pushes but print what already arrived: nothing taken from the queue is lost.
      () => void consumer.drain(),
      () => consumer.closed,
    );
    return EXIT.OK;
  });
};

const len: Command = async (p) => {
  check(p, 'LEN', [1, 1]);
  return withClient(p, async (client) => {
    await writeOut(`${await client.len(p.args[0])}\n`);
    return EXIT.OK;
  });
};

const purge: Command = async (p) => {
  check(p, 'PURGE', [1, 1]);
  return withClient(p, async (client) => {
    await writeOut(`${await client.purge(p.args[0])}\n`);
    return EXIT.OK;
  });
};

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

const queues: Command = async (p) => {
  check(p, 'QUEUES', [0, 0], ['json']);
  return withClient(p, async (client) => {
    const list = await client.queues();
    if (p.opts.has('json')) await writeOut(JSON.stringify(list) + '\n');
    else if (list.length === 0) await writeOut('');
    else {
      const head = ['QUEUE', 'READY', 'CONSUMERS', 'LEASED', 'SCHEDULED', 'DEAD'];
      const rows = list.map((q) => [q.name, q.ready, q.consumers, q.leased, q.scheduled, q.dead].map(String));
      await writeOut(table([head, ...rows]));
    }
    return EXIT.OK;
  });
};

const stats: Command = async (p) => {
  check(p, 'STATS', [0, 1], ['json']);
  const [queue] = p.args;
  if (queue !== undefined) {
    const problem = queueNameProblem(queue);
    if (problem) throw usageError(problem);
  }
  return withClient(p, async (client) => {
    const s = queue === undefined ? await client.stats() : await client.stats(queue);
    if (p.opts.has('json')) await writeOut(JSON.stringify(s, null, 2) + '\n');
    else await writeOut(table(Object.entries(s).map(([k, v]) => [k, String(v)])));
    return EXIT.OK;
  });
};

const ping: Command = async (p) => {
  check(p, 'PING', [0, 0]);
  return withClient(p, async (client) => {
    const ms = await client.ping();
    await writeOut(`PONG from ${client.options.host}:${client.options.port} in ${ms.toFixed(2)} ms\n`);
    return EXIT.OK;
  });
};

const pub: Command = async (p) => {
  check(p, 'PUB', [1, 2], ['lines']);
  const [channel, file] = p.args;
  if (p.opts.has('lines')) {
    if (file !== undefined && file !== '-') throw usageError('PUB --lines reads stdin only');
    // A publish reports receivers, not bytes: the line is never "truncated" by that count.
    return sendLines(p, async (client, line) => (await client.publish(channel, line), line.length));
  }
  const pending = open(p);
  const [, data] = await Promise.all([pending, readInput(file)]);
  return withClient(
    p,
    async (client) => {
      const n = await client.publish(channel, data);
      // Scripts get exit code 0 either way; people see that nobody heard it.
      if (process.stderr.isTTY) process.stderr.write(`beuss: delivered to ${n} subscriber${n === 1 ? '' : 's'}\n`);
      return EXIT.OK;
    },
    pending,
  );
};

const sub: Command = async (p) => {
  check(p, 'SUB', [1, 1], ['count', 'null']);
  const [channel] = p.args;
  const count = positiveInt(p, 'count');
  const sep = Buffer.from(p.opts.has('null') ? [0] : [10]);
  return withClient(p, async (client) => {
    let seen = 0;
    const subscription = client.subscribe(channel, async (ev) => {
      if (ev.droppedBefore > 0) {
        process.stderr.write(`beuss: ${ev.droppedBefore} event${ev.droppedBefore === 1 ? '' : 's'} of '${channel}' dropped: this subscriber did not keep up\n`);
      }
      await writeRecord(ev.data, sep);
      if (count !== undefined && ++seen >= count) await subscription.close();
    });
    await stopOnSignals(
      () => void subscription.close(),
      async () => {
        await subscription.ready;
        await subscription.closed;
      },
    );
    return EXIT.OK;
  });
};

const schedule: Command = async (p) => {
  const action = (p.args[0] ?? '').toLowerCase();
  if (action === 'add') {
    check(p, 'SCHEDULE add', [4, 5]);
    const [, name, queue, spec, file] = p.args;
    for (const [what, v] of [['schedule name', name], ['queue name', queue]] as const) {
      const problem = queueNameProblem(v);
      if (problem) throw usageError(`${what}: ${problem}`);
    }
    const pending = open(p);
    const [, data] = await Promise.all([pending, readInput(file)]);
    return withClient(
      p,
      async (client) => {
        const next = await client.scheduleAdd(name, queue, spec, data);
        await writeOut(`${name}: next at ${next.toISOString()}\n`);
        return EXIT.OK;
      },
      pending,
    );
  }
  if (action === 'ls') {
    check(p, 'SCHEDULE ls', [1, 1], ['json']);
    return withClient(p, async (client) => {
      const list = await client.schedules();
      if (p.opts.has('json')) await writeOut(JSON.stringify(list) + '\n');
      else if (list.length > 0) {
        const rows = list.map((x) => [x.name, x.queue, x.next.toISOString(), String(x.fired), x.spec]);
        await writeOut(table([['NAME', 'QUEUE', 'NEXT', 'FIRED', 'SPEC'], ...rows]));
      }
      return EXIT.OK;
    });
  }
  if (action === 'rm') {
    check(p, 'SCHEDULE rm', [2, 2]);
    return withClient(p, async (client) => {
      await client.scheduleRemove(p.args[1]);
      return EXIT.OK;
    });
  }
  throw usageError(`SCHEDULE needs add, ls or rm${p.args[0] === undefined ? '' : `, got '${p.args[0]}'`}`);
};

// MOVE takes each message under a lease, puts it on the target, and only then acknowledges it:
// a MOVE killed half way leaves a message in both queues at worst, never in neither.
const move: Command = async (p) => {
  check(p, 'MOVE', [2, 2], ['count']);
  const [from, to] = p.args;
  const problem = queueNameProblem(to);
  if (problem) throw usageError(problem);
  if (from === to) throw usageError('MOVE needs two different queues');
  const count = positiveInt(p, 'count') ?? Infinity;
  return withClient(p, async (client) => {
    let moved = 0;
    while (moved < count) {
      const m = await client.get(from, { lease: DEFAULT_LEASE_SECONDS * 1000 });
      if (m === null) break;
      const stored = await client.put(to, m.data);
      if (stored < m.data.length) warnTruncated(stored, m.data.length, `message ${moved + 1}`);
      await m.ack();
      moved++;
    }
    await writeOut(`${moved}\n`);
    return EXIT.OK;
  });
};

const COMMANDS: Record<string, Command> = {
  MOVE: move,
  PUT: put,
  GET: get,
  ON: on,
  PEEK: peek,
  LEN: len,
  PURGE: purge,
  QUEUES: queues,
  STATS: stats,
  PING: ping,
  PUB: pub,
  SUB: sub,
  SCHEDULE: schedule,
};

/** Resolves with the exit code of running `verb` (upper case, known) with the parsed arguments. */
export async function runCommand(verb: string, p: ParsedArgs): Promise<number> {
  // A reader that went away (`beuss ON q | head -1`) is a normal end, not a crash.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      if (leasedWriteInProgress) process.stderr.write('beuss: stdout closed before the message was written; not acknowledged\n');
      process.exit(leasedWriteInProgress ? EXIT.FAILED : EXIT.OK);
    }
  });
  return COMMANDS[verb](p);
}
