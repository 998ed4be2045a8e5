// The native queue engine: loads the addon built from binding/ and native/
// with node-gyp-build (build/Release, then prebuilds/), and wraps it in a
// typed class that checks every argument with a readable message, since the
// C++ glue checks nothing beyond what keeps C safe.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bit flags reported with a connection's output (the engine's `BEUSS_OUT_*`). */
export interface OutputFlags {
  /** Write the data, then close the connection. */
  readonly OUT_CLOSE: number;
  /** The engine paused the connection (its output reached the high-water mark): write, then `resume()` once the socket can take more. */
  readonly OUT_FULL: number;
  /** The connection waits in a `GET … WAIT`: do not read its socket until an output arrives without this flag. */
  readonly OUT_WAITING: number;
}

/** The engine's constants, read from the C header at build time. */
export interface EngineConstants extends OutputFlags {
  readonly PROTOCOL_VERSION: number;
  readonly DEFAULT_MAX_MESSAGE_SIZE: number;
  readonly DEFAULT_MAX_LINE: number;
  readonly MIN_MAX_LINE: number;
  readonly MAX_MAX_LINE: number;
  readonly MAX_QUEUE_NAME: number;
  readonly DEFAULT_OUTPUT_HIGH_WATER: number;
  /** Largest max message size an engine accepts. */
  readonly MAX_MAX_MESSAGE_SIZE: number;
  readonly DEFAULT_MAX_DELIVER: number;
  /** Input kept for a paused or waiting connection before feed reports EOVERFLOW. */
  readonly MAX_PENDING_INPUT: number;
  readonly DEFAULT_MAX_QUEUED_BYTES: number;
  /** Events kept per stalled channel subscriber by default. */
  readonly DEFAULT_SUB_BUFFER: number;
  /** Recurring schedules an engine holds at most. */
  readonly MAX_SCHEDULES: number;
  /** Longest schedule spec in bytes. */
  readonly MAX_SCHEDULE_SPEC: number;
  readonly SUB_DROP_OLDEST: number;
  readonly SUB_DISCONNECT: number;
  readonly OVERSIZE_TRUNCATE: number;
  readonly OVERSIZE_REJECT: number;
  /** Status codes (`beuss_status`): 0 or negative. */
  readonly OK: number;
  readonly ENOMEM: number;
  readonly EINVAL: number;
  readonly ENOCONN: number;
  readonly EOVERFLOW: number;
}

/** What PUT does with a payload over the maximum message size. */
export type Oversize = 'truncate' | 'reject';

/** What a channel subscriber's full buffer does: drop its oldest event (counted, told with `DROPPED`), or close its connection. */
export type SubPolicy = 'drop-oldest' | 'disconnect';

/**
 * Returns the first Unix time in ms strictly after `afterMs` at which the
 * schedule `spec` fires, -1 when it never fires again, or a string saying
 * why `spec` is not understood. Called synchronously by the engine.
 */
export type NextFire = (spec: string, afterMs: number) => number | string;

/** Limits of an engine; every field is optional and defaults to the C defaults. */
export interface EngineConfig {
  /** Payload bytes kept per message, at least 1. */
  maxMessageSize?: number;
  /** `truncate` keeps the first bytes and replies `OK <stored>`; `reject` replies `ERR TOO_LARGE`. */
  oversize?: Oversize;
  /** Cap on payload bytes held in all queues; 0 means none. */
  maxQueuedBytes?: number;
  /** Longest header line in bytes, line end included. */
  maxLine?: number;
  /** Output bytes built for one connection in one call before the engine pauses it. */
  outputHighWater?: number;
  /** Drop a queue that holds nothing and serves no one after this many ms unused; 0 = off. */
  queueIdleMs?: number;
  /** Deliveries under a lease before a message goes to its dead-letter queue, at least 1 (default 5). */
  maxDeliver?: number;
  /** Events kept per channel subscriber whose connection cannot take more. */
  subBuffer?: number;
  /** What happens past `subBuffer`. */
  subPolicy?: SubPolicy;
  /** The schedule calculator for `SCHEDULE ADD`; without it, schedules are refused with `BAD_SCHEDULE`. */
  nextFire?: NextFire;
  /**
   * Return small outputs in one Buffer reused from call to call instead of
   * a new Buffer each time (no garbage per call). The caller must be done
   * with an output before the next call, or call `releaseOutput()` first
   * (e.g. when a socket kept a reference to it). Default false.
   */
  reuseOutput?: boolean;
}

/** A snapshot of the engine's counters (the same as the STATS command's). */
export interface EngineStats {
  connections: number;
  queues: number;
  messages: number;
  bytes: number;
  consumers: number;
  waiting: number;
  puts: number;
  taken: number;
  pushed: number;
  truncated: number;
  rejectedLarge: number;
  rejectedFull: number;
  protocolErrors: number;
  memory: number;
  /** Messages held under a lease (or a NACK delay) now. */
  leased: number;
  acked: number;
  nacked: number;
  expired: number;
  redelivered: number;
  deadLettered: number;
  channels: number;
  subscribers: number;
  published: number;
  eventsDelivered: number;
  eventsDropped: number;
  scheduled: number;
  scheduledBytes: number;
  schedules: number;
  scheduleFired: number;
  queuesRemovedIdle: number;
}

interface NativeEngine {
  index: Uint32Array;
  open(): number;
  close(id: number, now: number): Buffer | undefined;
  feed(id: number, chunk: Uint8Array, now: number, length?: number): Buffer | undefined;
  pause(id: number): Buffer | undefined;
  resume(id: number, now: number): Buffer | undefined;
  tick(now: number): Buffer | undefined;
  nextDeadline(): number;
  setWallClock(now: number, wallMs: number): void;
  stats(): EngineStats;
  releaseOutput(): void;
  free(): void;
}

interface NativeAddon {
  Engine: new (config: Record<string, number | boolean | NextFire>, now: number) => NativeEngine;
  strerror(status: number): string;
  keepFreedMemory(): boolean;
  returnFreedMemory(): boolean;
  constants: EngineConstants;
}

/** An error from the engine or its binding, with a stable `code`. */
export class EngineError extends Error {
  override readonly name = 'EngineError';
  /** The engine status (`ENOMEM`, `EINVAL`, `ENOCONN`, `EOVERFLOW`), or `ELOAD` when the addon cannot be loaded. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Returns the folder holding the beuss package.json, searched upwards from `start`. */
function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'beuss') return dir;
    } catch {
      // no package.json here, or not ours: keep climbing
    }
    if (path.dirname(dir) === dir) throw new EngineError('ELOAD', `cannot find the beuss package above ${start}`);
  }
}

/** Returns the folder of this compiled file. */
function thisDir(): string {
  // The CommonJS build has __dirname. The ES module build cannot name
  // import.meta (the same source compiles to CommonJS too), so it reads its
  // own file name from a V8 call site.
  if (typeof __dirname === 'string') return __dirname;
  const prev = Error.prepareStackTrace;
  try {
    Error.prepareStackTrace = (_e, sites) => sites;
    const sites = new Error().stack as unknown as NodeJS.CallSite[];
    const file = sites[0]?.getFileName() ?? '';
    return path.dirname(file.startsWith('file:') ? fileURLToPath(file) : file);
  } finally {
    Error.prepareStackTrace = prev;
  }
}

let root: string | undefined;

/** Returns the root folder of the beuss package (where package.json, build/ and prebuilds/ live). */
export function packageRoot(): string {
  root ??= findPackageRoot(thisDir());
  return root;
}

let addon: NativeAddon | undefined;

/** Returns the loaded addon, loading it on first use. Throws an `EngineError` with code `ELOAD` if it cannot be found or loaded. */
function load(): NativeAddon {
  if (addon) return addon;
  const dir = packageRoot();
  try {
    const nodeGypBuild = createRequire(path.join(dir, 'package.json'))('node-gyp-build') as (d: string) => NativeAddon;
    addon = nodeGypBuild(dir);
  } catch (err) {
    throw new EngineError(
      'ELOAD',
      `cannot load the beuss native engine from ${dir} (no prebuild for ${process.platform}-${process.arch}; ` +
        `build it with 'npm run build:native', which needs cmake and a C/C++ compiler): ${(err as Error).message}`,
    );
  }
  return addon;
}

/**
 * Makes the C library's allocator keep freed memory for reuse instead of
 * giving it back at once (glibc only; elsewhere a no-op returning false).
 * Affects the whole process: for beuss-server, which then calls
 * `returnFreedMemory()` when idle. Returns whether it applied.
 */
export function keepFreedMemory(): boolean {
  return load().keepFreedMemory();
}

/** Gives every free page of the C library's heap back to the system (glibc only); returns whether any was. */
export function returnFreedMemory(): boolean {
  return load().returnFreedMemory();
}

/** Returns the engine's constants (flags, defaults, limits, status codes). */
export function engineConstants(): EngineConstants {
  return load().constants;
}

function checkUint(name: string, v: unknown, min = 0): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new TypeError(`${name} must be an integer >= ${min}, got ${String(v)}`);
  }
}

function checkId(id: unknown): asserts id is number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
    throw new TypeError(`connection id must be an integer from 0 to 4294967295, got ${String(id)}`);
  }
}

function checkNow(now: unknown): asserts now is number {
  if (typeof now !== 'number' || !Number.isSafeInteger(now) || now < 0) {
    throw new TypeError(`now must be a non-negative integer of milliseconds, got ${String(now)}`);
  }
}

/**
 * The beuss queue engine: parses the wire protocol, holds the queues and
 * produces every connection's output. It does no I/O and reads no clock: the
 * caller feeds it bytes and the time (`now`, integer milliseconds on any
 * monotonic scale that never goes back).
 *
 * Every call that can change state (`close`, `feed`, `pause`, `resume`,
 * `tick`) returns the output produced by it, for any connection: one
 * `Buffer` holding every connection's output one after the other, or
 * `undefined` when there is none. The `index` property then describes it:
 * `index[0]` is the number of entries n, and entry i (0-based) is the four
 * words at `2 + 4 * i`: connection id, byte offset in the Buffer, byte
 * length (may be 0 when only the flags changed), flags (`OUT_*`). Read
 * `index` after each call: the array is replaced when it grows. `status`
 * holds the call's status (0, or a negative `beuss_status`): a call throws
 * an `EngineError` on `EINVAL` or `ENOCONN` (a misuse), and leaves `ENOMEM`
 * and `EOVERFLOW` in `status` without throwing, so that the output owed to
 * other connections is not lost.
 */
export class Engine {
  readonly #native: NativeEngine;
  /** The engine's constants. */
  readonly constants: EngineConstants;

  /** Creates an engine with the given limits, at time `now`. Throws a `TypeError` on a bad limit and an `EngineError` if the addon cannot be loaded. */
  constructor(config: EngineConfig = {}, now = 0) {
    const a = load();
    this.constants = a.constants;
    const k = a.constants;
    const c: Record<string, number | boolean | NextFire> = {};
    if (config.maxMessageSize !== undefined) {
      checkUint('maxMessageSize', config.maxMessageSize, 1);
      if (config.maxMessageSize > k.MAX_MAX_MESSAGE_SIZE) {
        throw new TypeError(`maxMessageSize must be at most ${k.MAX_MAX_MESSAGE_SIZE}, got ${config.maxMessageSize}`);
      }
      c.maxMessageSize = config.maxMessageSize;
    }
    if (config.oversize !== undefined) {
      if (config.oversize !== 'truncate' && config.oversize !== 'reject') {
        throw new TypeError(`oversize must be 'truncate' or 'reject', got ${String(config.oversize)}`);
      }
      c.oversize = config.oversize === 'reject' ? k.OVERSIZE_REJECT : k.OVERSIZE_TRUNCATE;
    }
    if (config.maxQueuedBytes !== undefined) {
      checkUint('maxQueuedBytes', config.maxQueuedBytes);
      c.maxQueuedBytes = config.maxQueuedBytes;
    }
    if (config.maxLine !== undefined) {
      checkUint('maxLine', config.maxLine, k.MIN_MAX_LINE);
      if (config.maxLine > k.MAX_MAX_LINE) throw new TypeError(`maxLine must be at most ${k.MAX_MAX_LINE}, got ${config.maxLine}`);
      c.maxLine = config.maxLine;
    }
    if (config.outputHighWater !== undefined) {
      checkUint('outputHighWater', config.outputHighWater, 1);
      c.outputHighWater = config.outputHighWater;
    }
    if (config.reuseOutput !== undefined) {
      if (typeof config.reuseOutput !== 'boolean') throw new TypeError(`reuseOutput must be a boolean, got ${String(config.reuseOutput)}`);
      c.reuseOutput = config.reuseOutput;
    }
    if (config.queueIdleMs !== undefined) {
      checkUint('queueIdleMs', config.queueIdleMs);
      c.queueIdleMs = config.queueIdleMs;
    }
    if (config.maxDeliver !== undefined) {
      checkUint('maxDeliver', config.maxDeliver, 1);
      if (config.maxDeliver > 0xffffffff) throw new TypeError(`maxDeliver must be at most 4294967295, got ${config.maxDeliver}`);
      c.maxDeliver = config.maxDeliver;
    }
    if (config.subBuffer !== undefined) {
      checkUint('subBuffer', config.subBuffer);
      if (config.subBuffer > 0xffffffff) throw new TypeError(`subBuffer must be at most 4294967295, got ${config.subBuffer}`);
      c.subBuffer = config.subBuffer;
    }
    if (config.subPolicy !== undefined) {
      if (config.subPolicy !== 'drop-oldest' && config.subPolicy !== 'disconnect') {
        throw new TypeError(`subPolicy must be 'drop-oldest' or 'disconnect', got ${String(config.subPolicy)}`);
      }
      c.subPolicy = config.subPolicy === 'disconnect' ? k.SUB_DISCONNECT : k.SUB_DROP_OLDEST;
    }
    if (config.nextFire !== undefined) {
      if (typeof config.nextFire !== 'function') throw new TypeError('nextFire must be a function');
      c.nextFire = config.nextFire;
    }
    checkNow(now);
    try {
      this.#native = new a.Engine(c, now);
    } catch (err) {
      throw new EngineError('EINVAL', `cannot create the engine: ${(err as Error).message}`);
    }
  }

  /** The output index of the last call (see the class description). */
  get index(): Uint32Array {
    return this.#native.index;
  }

  /** The status of the last state-changing call: 0, or a negative `beuss_status` such as `EOVERFLOW`. */
  get status(): number {
    return -this.#native.index[1]! | 0;
  }

  /** Returns a new connection's id (small integers, reused after `close`). */
  open(): number {
    try {
      return this.#native.open();
    } catch (err) {
      const st = (err as { status?: number }).status;
      throw new EngineError(st === this.constants.ENOMEM ? 'ENOMEM' : `E${-(st ?? 0)}`, `cannot open a connection: ${(err as Error).message}`);
    }
  }

  /** Forgets connection `id` (its subscriptions end, a waiting GET is dropped); returns the output produced for others. */
  close(id: number, now: number): Buffer | undefined {
    checkId(id);
    checkNow(now);
    return this.#check(this.#native.close(id, now), 'close', id);
  }

  /**
   * Runs every complete request in the first `length` bytes of `chunk` (all
   * of it by default), received from connection `id`; returns the output
   * produced. The chunk is read during the call only. A
   * `status` of `EOVERFLOW` or `ENOMEM` afterwards means this connection's
   * input could not be kept: close it.
   */
  feed(id: number, chunk: Uint8Array, now: number, length: number = chunk.length): Buffer | undefined {
    checkId(id);
    if (!(chunk instanceof Uint8Array)) throw new TypeError('chunk must be a Buffer or Uint8Array');
    checkNow(now);
    if (!Number.isInteger(length) || length < 0 || length > chunk.length) {
      throw new RangeError(`length must be an integer from 0 to the chunk's ${chunk.length} bytes, got ${length}`);
    }
    return this.#check(this.#native.feed(id, chunk, now, length), 'feed', id);
  }

  /** Stops pushing to connection `id` and running its requests (its socket is full); returns any output produced. */
  pause(id: number): Buffer | undefined {
    checkId(id);
    return this.#check(this.#native.pause(id), 'pause', id);
  }

  /** Undoes `pause` and an engine-made pause (`OUT_FULL`): pushes what is owed and runs kept input; returns the output. */
  resume(id: number, now: number): Buffer | undefined {
    checkId(id);
    checkNow(now);
    return this.#check(this.#native.resume(id, now), 'resume', id);
  }

  /** Runs what is due at `now` (expired GET WAITs, idle queues, delayed messages, schedules); returns the output. */
  tick(now: number): Buffer | undefined {
    checkNow(now);
    return this.#check(this.#native.tick(now), 'tick');
  }

  /** Returns the earliest time (ms) at which `tick` has work, or -1 when nothing is scheduled. */
  nextDeadline(): number {
    return this.#native.nextDeadline();
  }

  /** Tells the engine that engine time `now` is Unix time `wallMs` (for `PUT … AT` and schedules). */
  setWallClock(now: number, wallMs: number): void {
    checkNow(now);
    checkNow(wallMs);
    this.#native.setWallClock(now, wallMs);
  }

  /**
   * With `reuseOutput`, when the last call's output was in the reused
   * Buffer: lets that Buffer go, so that the next call returns a new one and
   * the last one stays valid for whoever still refers to it. A no-op
   * otherwise (an output in a Buffer of its own, no output, no reuse).
   */
  releaseOutput(): void {
    this.#native.releaseOutput();
  }

  /** Returns a snapshot of the engine's counters. */
  stats(): EngineStats {
    return this.#native.stats();
  }

  /** Releases the engine's memory now; any later call throws. */
  free(): void {
    this.#native.free();
  }

  // Returns out; throws on the statuses that mean a misuse (a bad argument,
  // an unknown connection). ENOMEM and EOVERFLOW are left in `status` for
  // the caller, since throwing would lose the output owed to others.
  #check(out: Buffer | undefined, what: string, id?: number): Buffer | undefined {
    const st = this.status;
    if (st === this.constants.EINVAL || st === this.constants.ENOCONN) this.#fail(st, what, id);
    return out;
  }

  #fail(st: number, what: string, id?: number): never {
    const k = this.constants;
    const code =
      st === k.ENOMEM ? 'ENOMEM' : st === k.EINVAL ? 'EINVAL' : st === k.ENOCONN ? 'ENOCONN' : st === k.EOVERFLOW ? 'EOVERFLOW' : `E${-st}`;
    throw new EngineError(code, `engine ${what}${id === undefined ? '' : ` (connection ${id})`}: ${load().strerror(st)}`);
  }
}
