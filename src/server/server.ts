// The beuss server: TCP sockets in front of one native engine. JavaScript
// moves chunks, never single messages: a socket's chunk goes to
// engine.feed() in one call, and the engine's output for every connection
// comes back as one Buffer plus an index (see src/native.ts), which is
// written to the sockets concerned. This file also owns backpressure, the
// engine's timer, the connection cap and the graceful stop.
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Engine, returnFreedMemory, type EngineStats } from '../native.js';
import { DEFAULTS, type ServerConfig } from './config.js';
import { createNextFire } from './schedule.js';

/** The longest delay setTimeout honours (2^31-1 ms); longer ones fire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

/** Returns the engine's clock: monotonic integer milliseconds. */
function now(): number {
  return Math.floor(performance.now());
}

// Socket errors that only mean the peer went away: not worth a log line.
const QUIET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

// Output the engine builds for one connection in one call before it pauses
// that connection (OUT_FULL). With the socket's own buffer and the input the
// engine keeps for a paused connection, this bounds what one client that
// pipelines requests and does not read can make the server hold, to about
// 350 KiB; the engine's default (1 MiB) measured no faster here.
const OUTPUT_HIGH_WATER = 256 * 1024;

// A connection waiting in a GET WAIT keeps being read (and its input kept
// by the engine) up to this many bytes, although the engine asks not to
// read it: reading is how Node notices that a client went away, and a
// waiter that left should be forgotten before a message is handed to it.
// Past it the socket is paused, well below the engine's bound on kept input.
const WAIT_READ_LIMIT = 64 * 1024;

// A socket we ended is destroyed if its peer has not closed LINGER_MS after
// it read the last byte, or LINGER_MAX_MS after the end whatever happens, so
// a client that stops reading or never closes cannot pin it; a slow reader
// still gets a large last reply.
const LINGER_MS = 10_000;
const LINGER_MAX_MS = 60_000;

// Every connection is read into one shared buffer (Node's onread): the
// engine copies what it keeps before feed() returns, so the buffer is free
// again for the next read, whichever socket it comes from. Without it Node
// allocates a new buffer per read, and a burst of input leaves tens of MB
// of them to the garbage collector, in RSS until it runs.
const READ_BUFFER_SIZE = 64 * 1024;

// Memory freed while clients are active is kept for reuse (see
// keepFreedMemory in src/native.ts); once no input has come for
// config.memoryReturnMs, every free page goes back to the system. Each read
// notes its time (the one it feeds the engine anyway); a timer looks at it
// every tick.
const MEMORY_RETURN_TICK_MAX_MS = 1000;
const MEMORY_RETURN_TICK_MIN_MS = 250;

/** One client connection and the state that decides whether we read it. */
class Conn {
  /** socket.write() returned false: wait for 'drain'. */
  writeBlocked = false;
  /** The engine side is paused (by us on writeBlocked, or by the engine with OUT_FULL) and needs resume(). */
  engineHeld = false;
  /** The connection waits in a GET WAIT (OUT_WAITING): read at most WAIT_READ_LIMIT bytes. */
  waiting = false;
  /** The client half-closed its side: finish once nothing more is owed. */
  readEnded = false;
  /** We ended the socket and closed the engine connection. */
  done = false;
  /** A resume is scheduled with setImmediate. */
  resumeScheduled = false;
  /** Bytes read while waiting (see WAIT_READ_LIMIT). */
  readWhileWaiting = 0;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
  ) {}
}

/** A beuss-server: listens, serves the wire protocol, stops gracefully. */
export class BeussServer {
  readonly #config: ServerConfig;
  readonly #log: (line: string) => void;
  readonly #engine: Engine;
  readonly #server: net.Server;
  // Indexed by engine connection id (small integers, reused after close).
  readonly #conns: Array<Conn | undefined> = [];
  #count = 0;
  // The read buffer every connection shares (see READ_BUFFER_SIZE).
  #readBuffer: Buffer | undefined;
  readonly #readMode: 'shared' | 'data';
  // Every socket not yet closed, served or refused: the stop waits for them.
  readonly #sockets = new Set<net.Socket>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = -1;
  // Re-reads the wall clock now and then, so that a stepped system clock
  // reaches PUT … AT and schedules without waiting for the next tick.
  #wallClock: NodeJS.Timeout | undefined;
  // When the last input was read, and when freed memory was last returned.
  #lastInput = 0;
  #returnedAt = 0;
  readonly #memoryReturnMs: number;
  #idleReturn: NodeJS.Timeout | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #onAllClosed: (() => void) | undefined;
  #final: EngineStats | undefined;
  readonly #OUT_CLOSE: number;
  readonly #OUT_FULL: number;
  readonly #OUT_WAITING: number;

  /** Creates a server with its engine; `log` receives one line per unexpected error. Throws if the engine cannot be created. */
  constructor(config: ServerConfig, log: (line: string) => void) {
    this.#config = config;
    this.#log = log;
    this.#readMode = config.readMode ?? 'shared';
    this.#engine = new Engine(
      {
        maxMessageSize: config.maxMessageSize,
        oversize: config.oversize,
        maxQueuedBytes: config.maxQueuedBytes,
        maxLine: config.maxLine,
        maxDeliver: config.maxDeliver,
        outputHighWater: OUTPUT_HIGH_WATER,
        queueIdleMs: config.queueIdleMs,
        subBuffer: config.subBuffer,
        subPolicy: config.subPolicy,
        nextFire: createNextFire(),
        reuseOutput: true,
      },
      now(),
    );
    this.#engine.setWallClock(now(), Date.now());
    this.#wallClock = setInterval(() => this.#engine.setWallClock(now(), Date.now()), 60_000).unref();
    this.#memoryReturnMs = config.memoryReturnMs ?? DEFAULTS.memoryReturnSeconds * 1000;
    const tick = Math.min(MEMORY_RETURN_TICK_MAX_MS, Math.max(MEMORY_RETURN_TICK_MIN_MS, this.#memoryReturnMs / 4));
    this.#idleReturn = setInterval(() => this.#onIdleCheck(), tick).unref();
    const k = this.#engine.constants;
    this.#OUT_CLOSE = k.OUT_CLOSE;
    this.#OUT_FULL = k.OUT_FULL;
    this.#OUT_WAITING = k.OUT_WAITING;
    // allowHalfOpen: a client may send its requests, shut down its side and
    // still read every reply it is owed.
    // pauseOnConnect: nothing is read before the socket is rewrapped with onread.
    this.#server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) => this.#onConnection(s));
  }

  /** Returns the bound address once the server listens on the configured host and port. */
  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ host: this.#config.host, port: this.#config.port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#log(`server error: ${err.message}`));
        resolve(this.#server.address() as net.AddressInfo);
      });
    });
  }

  /**
   * Stops the server: refuses new connections, stops reading requests,
   * writes what is owed (replies to requests already read; a GET still
   * waiting gets `ERR SHUTTING_DOWN`), ends every socket, and resolves once
   * all are closed or `shutdownTimeoutMs` has passed (the rest are
   * destroyed). Calling it again returns the same promise.
   */
  stop(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopping = true;
    this.#server.close();
    this.#stopped = new Promise<void>((resolve) => {
      const hard = setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, this.#config.shutdownTimeoutMs);
      this.#onAllClosed = () => {
        clearTimeout(hard);
        if (this.#timer) clearTimeout(this.#timer);
        this.#final = this.#engine.stats();
        clearInterval(this.#wallClock);
        clearInterval(this.#idleReturn);
        this.#engine.free();
        resolve();
      };
      for (const c of this.#conns) if (c) this.#settle(c);
      this.#checkAllClosed();
    });
    return this.#stopped;
  }

  /** Returns the engine's counters (after a stop: as they were when it completed). */
  stats(): EngineStats {
    return this.#final ?? this.#engine.stats();
  }

  #checkAllClosed(): void {
    if (this.#onAllClosed === undefined || this.#sockets.size > 0) return;
    // On the next turn: the last socket's other 'close' listeners still
    // need the engine to unregister it.
    setImmediate(() => {
      if (this.#onAllClosed === undefined || this.#sockets.size > 0) return;
      const f = this.#onAllClosed;
      this.#onAllClosed = undefined;
      f();
    });
  }

  #onConnection(accepted: net.Socket): void {
    const refuse = (line: string) => {
      this.#track(accepted);
      accepted.on('error', () => {});
      accepted.end(line);
      this.#linger(accepted);
    };
    if (this.#stopping) return refuse('ERR SHUTTING_DOWN the server is stopping\r\n');
    if (this.#count >= this.#config.maxConnections) {
      return refuse(`ERR TOO_MANY_CONNECTIONS the server serves at most ${this.#config.maxConnections} connections\r\n`);
    }
    let id: number;
    try {
      id = this.#engine.open();
    } catch (err) {
      this.#log(`cannot register a connection: ${(err as Error).message}`);
      return refuse('ERR INTERNAL the server is out of memory\r\n');
    }
    // Set once the socket exists: the read callback is made before it.
    let c: Conn | undefined;
    // The hot path: no closure per read, unlike #guard.
    const onRead = (n: number, buf: Buffer): boolean => {
      if (c === undefined) return true;
      try {
        this.#socketOnData(c, buf, n);
      } catch (err) {
        this.#fail(c, err);
      }
      return true;
    };
    const socket = this.#withSharedBuffer(accepted, onRead);
    const conn = new Conn(id, socket);
    c = conn;
    this.#track(socket);
    this.#conns[id] = conn;
    this.#count++;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    if (socket === accepted) {
      socket.on('data', (chunk: Buffer) => this.#guard(conn, () => this.#socketOnData(conn, chunk, chunk.length)));
    }
    socket.on('drain', () => this.#guard(conn, () => this.#socketOnDrain(conn)));
    socket.on('end', () => this.#guard(conn, () => this.#socketOnEnd(conn)));
    socket.on('error', (err: NodeJS.ErrnoException) => this.#socketOnError(conn, err));
    socket.on('close', () => this.#guard(conn, () => this.#socketOnClose(conn)));
    socket.resume();
  }

  /** Counts a socket until it closes: the stop waits for every one. */
  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#checkAllClosed();
    });
  }

  /**
   * Returns a socket over the accepted connection that reads into the
   * shared buffer (see READ_BUFFER_SIZE), or the accepted socket itself
   * where that cannot be done. net.Server has no onread option, only
   * net.Socket has: the accepted socket, still paused, hands its handle to
   * a new net.Socket made with onread. The handle is Node's private
   * `_handle`, there since Node 0.x; if a runtime lacks it the server
   * reads with 'data' events as before, only with more garbage.
   */
  #withSharedBuffer(accepted: net.Socket, callback: (n: number, buf: Buffer) => boolean): net.Socket {
    if (this.#readMode === 'data') return accepted;
    const a = accepted as net.Socket & { _handle?: unknown };
    const handle = a._handle;
    if (handle === null || typeof handle !== 'object' || accepted.readableFlowing === true) return accepted;
    const buffer = (this.#readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE));
    const opts = { handle, allowHalfOpen: true, onread: { buffer, callback } } as net.SocketConstructorOpts;
    let socket: net.Socket;
    try {
      socket = new net.Socket(opts);
    } catch {
      return accepted;
    }
    socket.pause();
    a._handle = null;
    // Releases the server's count of the old socket; it owns nothing now.
    accepted.destroy();
    return socket;
  }

  /** Runs f; an unexpected failure (a bug, not a client's doing) costs this connection only, with one log line. */
  #guard(c: Conn, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.#fail(c, err);
    }
  }

  /** Closes c after an unexpected failure, with one log line. */
  #fail(c: Conn, err: unknown): void {
    this.#log(`connection ${c.id}: unexpected error, closing it: ${(err as Error).stack ?? String(err)}`);
    c.socket.destroy();
    if (this.#conns[c.id] === c) {
      this.#conns[c.id] = undefined;
      this.#count--;
      try {
        this.#run(this.#engine.close(c.id, now()));
      } catch {
        // already reported above
      }
    }
  }

  #socketOnData(c: Conn, chunk: Buffer, n: number): void {
    if (c.done) return;
    const t = now();
    this.#lastInput = t;
    if (c.waiting) {
      c.readWhileWaiting += n;
      if (c.readWhileWaiting >= WAIT_READ_LIMIT) c.socket.pause();
    }
    const out = this.#engine.feed(c.id, chunk, t, n);
    const st = this.#engine.status;
    this.#run(out);
    if (st !== 0) {
      // The engine could not keep this connection's input (out of memory,
      // or input past its bound while paused): it has lost sync and marked
      // it closing (already handled by #run); make sure it goes.
      this.#log(`connection ${c.id}: dropped, engine status ${st === this.#engine.constants.ENOMEM ? 'ENOMEM' : 'EOVERFLOW'}`);
      if (!c.done) this.#finish(c, false);
    }
  }

  /** Gives freed memory back to the system once no input has come for memoryReturnMs after some did. */
  #onIdleCheck(): void {
    const t = now();
    if (this.#lastInput > this.#returnedAt && t - this.#lastInput >= this.#memoryReturnMs) {
      this.#returnedAt = t;
      returnFreedMemory();
    }
  }

  #socketOnDrain(c: Conn): void {
    if (c.done) return;
    c.writeBlocked = false;
    this.#resumeEngine(c);
    this.#settle(c);
  }

  #socketOnEnd(c: Conn): void {
    c.readEnded = true;
    this.#settle(c);
  }

  #socketOnError(c: Conn, err: NodeJS.ErrnoException): void {
    if (!QUIET_ERRORS.has(err.code ?? '')) this.#log(`connection ${c.id}: ${err.message}`);
    // 'close' follows and unregisters.
  }

  #socketOnClose(c: Conn): void {
    if (!c.done) this.#unregister(c);
  }

  /** Writes the engine's output to the sockets concerned and acts on its flags, then re-arms the timer. */
  #run(out: Buffer | undefined): void {
    if (out !== undefined) this.#dispatch(out);
    this.#armTimer();
  }

  #dispatch(out: Buffer): void {
    const ix = this.#engine.index;
    const n = ix[0]!;
    // Connections whose state changed: handled after the loop, since that
    // calls the engine again, which rewrites the index and the output.
    let todo: Conn[] | undefined;
    let lent = false;
    for (let i = 0, p = 2; i < n; i++, p += 4) {
      const c = this.#conns[ix[p]!];
      if (c === undefined || c.done) continue;
      const off = ix[p + 1]!;
      const len = ix[p + 2]!;
      const flags = ix[p + 3]!;
      let changed = flags !== 0;
      if (len > 0) {
        const data = off === 0 && len === out.length ? out : out.subarray(off, off + len);
        if (!c.socket.write(data) && !c.writeBlocked) {
          c.writeBlocked = true;
          changed = true;
        }
        // The engine reuses its output Buffer (reuseOutput): a write that
        // did not complete at once still refers to it, so the engine must
        // take a new one for its next output.
        if (!lent && c.socket.writableLength > 0) lent = true;
      }
      const waiting = (flags & this.#OUT_WAITING) !== 0;
      if (waiting !== c.waiting) {
        c.waiting = waiting;
        c.readWhileWaiting = 0;
        changed = true;
      }
      if (flags & this.#OUT_FULL) c.engineHeld = true;
      if (flags & this.#OUT_CLOSE) {
        (todo ??= []).push(c);
        c.readEnded = true;
        c.done = true; // set now so that nothing more is written to it
        continue;
      }
      if (changed) (todo ??= []).push(c);
    }
    if (lent) this.#engine.releaseOutput();
    if (todo === undefined) return;
    for (const c of todo) {
      if (c.done) {
        if (this.#conns[c.id] === c) this.#finish(c, false);
        continue;
      }
      this.#settle(c);
    }
  }

  /** Brings a connection in line with its state: engine paused while its socket is full, reading only when nothing holds it, finished when owed nothing more. */
  #settle(c: Conn): void {
    if (c.done) return;
    if (c.writeBlocked && !c.engineHeld) {
      c.engineHeld = true;
      this.#run(this.#engine.pause(c.id));
      if (c.done) return;
    } else if (c.engineHeld && !c.writeBlocked && !c.resumeScheduled) {
      // An engine-made pause (OUT_FULL) whose data the socket took at once:
      // resume on the next turn, so other sockets get their turn first.
      c.resumeScheduled = true;
      setImmediate(() =>
        this.#guard(c, () => {
          c.resumeScheduled = false;
          if (!c.done && !c.writeBlocked) this.#resumeEngine(c);
          this.#settle(c);
        }),
      );
    }
    if (this.#stopping || c.readEnded) {
      // Nothing more will be read. A GET still waiting at a stop is answered
      // with SHUTTING_DOWN. A client that shut its side while waiting is
      // taken as gone (a half-close and a close look alike here), so that
      // no message is handed to a vanished client. Otherwise finish once
      // the engine holds nothing more for this connection.
      if (c.waiting) {
        if (this.#stopping) c.socket.write('ERR SHUTTING_DOWN the server is stopping\r\n');
        this.#finish(c, false);
      } else if (!c.engineHeld) {
        this.#finish(c, false);
      } else if (!c.socket.isPaused()) {
        c.socket.pause();
      }
      return;
    }
    const read = !c.writeBlocked && !c.engineHeld && !(c.waiting && c.readWhileWaiting >= WAIT_READ_LIMIT);
    if (read) {
      if (c.socket.isPaused()) c.socket.resume();
    } else if (!c.socket.isPaused()) {
      c.socket.pause();
    }
  }

  #resumeEngine(c: Conn): void {
    if (!c.engineHeld || c.done) return;
    c.engineHeld = false;
    this.#run(this.#engine.resume(c.id, now()));
  }

  /** Ends (or destroys) a connection's socket after what was written, and closes its engine connection. */
  #finish(c: Conn, destroy: boolean): void {
    c.done = true;
    if (destroy) {
      c.socket.destroy();
    } else {
      c.socket.end();
      this.#linger(c.socket);
    }
    this.#unregister(c);
  }

  #unregister(c: Conn): void {
    c.done = true;
    if (this.#conns[c.id] !== c) return;
    this.#conns[c.id] = undefined;
    this.#count--;
    // Closing may hand a waiting consumer's turn to others: write that.
    this.#run(this.#engine.close(c.id, now()));
  }

  #linger(socket: net.Socket): void {
    // Read and discard whatever the client still sends until it closes:
    // closing with unread input would reset the connection, and the client
    // could lose the last reply (an ERR that explains the close).
    socket.resume();
    // At a stop, the stop's own hard timeout applies.
    if (this.#stopping) return;
    const timers = [setTimeout(() => socket.destroy(), LINGER_MAX_MS).unref()];
    const afterFlush = () => timers.push(setTimeout(() => socket.destroy(), LINGER_MS).unref());
    if (socket.writableFinished) afterFlush();
    else socket.once('finish', afterFlush);
    socket.once('close', () => timers.forEach(clearTimeout));
  }

  /** Arms the single engine timer at engine.nextDeadline(). */
  #armTimer(): void {
    if (this.#stopped && this.#onAllClosed === undefined) return;
    const at = this.#engine.nextDeadline();
    if (at === this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at < 0) return;
    // +1: setTimeout may fire a little early relative to our floored clock.
    // Node turns a delay over 2^31-1 ms into 1 ms, so a far deadline (GET
    // WAIT of weeks) is reached in steps: a timer that fires early finds
    // nothing due in tick() and arms the next step.
    this.#timer = setTimeout(() => this.#onTimer(), Math.min(MAX_TIMER_DELAY, Math.max(0, at - now()) + 1));
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = -1;
    const t = now();
    // Delayed messages (AT) and schedules speak Unix time: keep the
    // engine's view of the wall clock fresh where it matters.
    this.#engine.setWallClock(t, Date.now());
    this.#run(this.#engine.tick(t));
  }
}
