// The transport: one TCP socket, an outbound buffer that batches pipelined
// requests into few writes, and the FIFO of callers waiting for replies.
import * as net from 'node:net';
import { BeussError, ConnectionError, ProtocolError, ServerError, serverError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { type Frame, type LeaseInfo, ReplyParser } from './parser.js';

/** Socket-level counters of a client, for tests and monitoring. */
export interface ClientCounters {
  /** Calls to `socket.write`: pipelined requests share one write. */
  socketWrites: number;
  /** Bytes handed to the socket. */
  bytesWritten: number;
  /** `data` events received from the socket. */
  socketReads: number;
  /** Bytes received from the socket. */
  bytesRead: number;
  /** Requests sent (or queued to send). */
  requests: number;
  /** Replies received. */
  replies: number;
  /** Messages pushed by the server to `consume` subscriptions. */
  pushes: number;
  /** Channel messages pushed by the server to `subscribe` subscriptions. */
  events: number;
  /** Requests still waiting for their reply. */
  pending: number;
  /**
   * Request bytes not yet taken by the kernel (the client's batch plus the
   * socket's queue). It grows when calls outpace the server: a producer that
   * does not await its calls can watch it and slow down.
   */
  bufferedBytes: number;
}

interface Waiter {
  resolve(frame: Frame): void;
  reject(err: Error): void;
}

// Codes after which the server closes the connection: remembered so that the
// connection error says why the connection went away.
const CLOSING_CODES = new Set(['LINE_TOO_LONG', 'BAD_FRAME', 'TOO_MANY_CONNECTIONS', 'SHUTTING_DOWN']);

/**
 * Connection is one socket to a beuss server. `request` queues a header line
 * (and payload) and returns a promise for the matching reply: replies come in
 * request order, so waiters are a plain FIFO.
 */
export class Connection {
  /** Called with every PUSH frame, in arrival order (`lease` for a leased push). */
  onPush: (queue: string, data: Buffer, lease?: LeaseInfo) => void = () => {};
  /** Called with every EVENT frame (a channel message), in arrival order. */
  onEvent: (channel: string, data: Buffer) => void = () => {};
  /** Called with every DROPPED frame (events a subscription lost). */
  onDropped: (channel: string, count: number) => void = () => {};
  /** Called once when the connection ends; `err` is null after a clean close. */
  onEnd: (err: BeussError | null) => void = () => {};

  private readonly socket: net.Socket;
  private readonly parser: ReplyParser;
  private readonly waiters: Waiter[] = [];
  private waitHead = 0;
  private out: Buffer | null = null;
  private outLen = 0;
  private flushQueued = false;
  private ended: BeussError | null = null;
  private endedClean = false;
  private closing = false;
  private socketError: NodeJS.ErrnoException | null = null;
  private fatalServerError: ServerError | null = null;
  private readonly endPromise: Promise<void>;
  private resolveEnd!: () => void;
  private readonly c: ClientCounters = {
    socketWrites: 0,
    bytesWritten: 0,
    socketReads: 0,
    bytesRead: 0,
    requests: 0,
    replies: 0,
    pushes: 0,
    events: 0,
    pending: 0,
    bufferedBytes: 0,
  };

  private constructor(
    socket: net.Socket,
    private readonly opts: ResolvedOptions,
  ) {
    this.socket = socket;
    this.parser = new ReplyParser((f) => this.onFrame(f), opts.maxPayload);
    this.endPromise = new Promise((resolve) => (this.resolveEnd = resolve));
    socket.on('data', (chunk: Buffer) => this.socketOnData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.socketError = err;
    });
    socket.on('close', () => this.socketOnClose());
  }

  /** Returns an open connection to opts.host:opts.port, or rejects with ConnectionError. */
  static open(opts: ResolvedOptions): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const where = `${opts.host}:${opts.port}`;
      const socket = net.connect({ host: opts.host, port: opts.port });
      let timer: NodeJS.Timeout | undefined;
      const onError = (err: NodeJS.ErrnoException) => {
        if (timer) clearTimeout(timer);
        socket.destroy();
        reject(new ConnectionError(err.code ?? 'CONNECTION_CLOSED', `cannot connect to ${where}: ${err.message}`, opts.host, opts.port, { cause: err }));
      };
      socket.once('error', onError);
      if (opts.connectTimeout > 0) {
        timer = setTimeout(() => {
          const err: NodeJS.ErrnoException = new Error(`no answer in ${opts.connectTimeout} ms`);
          err.code = 'ETIMEDOUT';
          onError(err);
        }, opts.connectTimeout);
      }
      socket.once('connect', () => {
        if (timer) clearTimeout(timer);
        socket.removeListener('error', onError);
        // Requests are small and batched by this class already: Nagle would only add latency.
        socket.setNoDelay(true);
        resolve(new Connection(socket, opts));
      });
    });
  }

  /** Returns a snapshot of the counters. */
  counters(): ClientCounters {
    return {
      ...this.c,
      pending: this.waiters.length - this.waitHead,
      bufferedBytes: this.outLen + (this.socket.destroyed ? 0 : this.socket.writableLength),
    };
  }

  /** True once the connection has ended or is closing. */
  get isClosed(): boolean {
    return this.ended !== null || this.endedClean || this.closing;
  }

  /** Resolves when the socket has closed. */
  whenEnded(): Promise<void> {
    return this.endPromise;
  }

  /**
   * Returns a promise for the reply to `header` (a request line without its line
   * end) followed by `payload` if given. Requests made in the same tick go out
   * in one socket write.
   */
  request(header: string, payload?: Buffer): Promise<Frame> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.endedClean || this.closing) {
      return Promise.reject(this.closedError('the client is closed'));
    }
    return new Promise<Frame>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.append(header, payload);
    });
  }

  /**
   * Closes the connection: sends QUIT after every request already made, waits
   * for their replies, then for the socket to close. With `force`, destroys the
   * socket at once and rejects every pending request with ConnectionError.
   */
  async close(force = false): Promise<void> {
    if (force) {
      this.closing = true;
      this.fail(this.closedError('closed by the client (force) before the reply arrived'));
      this.socket.destroy();
      return this.endPromise;
    }
    if (this.closing || this.ended || this.endedClean) return this.endPromise;
    const quit = this.request('QUIT');
    this.closing = true;
    try {
      await quit;
    } catch {
      // The connection went away first: every pending call got that error already.
    }
    this.endedClean = true;
    this.socket.end();
    // A server that never closes after QUIT must not keep us waiting forever.
    const t = setTimeout(() => this.socket.destroy(), 2000);
    await this.endPromise;
    clearTimeout(t);
  }

  private closedError(message: string): ConnectionError {
    return new ConnectionError('CONNECTION_CLOSED', message, this.opts.host, this.opts.port);
  }

  private append(header: string, payload?: Buffer): void {
    const headerMax = header.length * 3 + 2;
    const need = headerMax + (payload ? payload.length + 2 : 0);
    this.ensure(need);
    const out = this.out!;
    this.outLen += out.write(header, this.outLen, 'utf8');
    out[this.outLen++] = 13;
    out[this.outLen++] = 10;
    if (payload) {
      // Copied now, so a caller may reuse its buffer as soon as the call returns.
      payload.copy(out, this.outLen);
      this.outLen += payload.length;
      out[this.outLen++] = 13;
      out[this.outLen++] = 10;
    }
    this.c.requests++;
    if (this.outLen >= this.opts.flushThreshold) {
      this.flush();
    } else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  private ensure(need: number): void {
    if (this.out && this.outLen + need <= this.out.length) return;
    // Start small (Node pools allocations under 4 KiB, so one request per tick costs no malloc)
    // and double: a batch of any size is copied O(1) times per byte on average.
    const size = Math.max(1024, this.outLen + need, this.out ? this.out.length * 2 : 0);
    const next = Buffer.allocUnsafe(size);
    if (this.out && this.outLen > 0) this.out.copy(next, 0, 0, this.outLen);
    this.out = next;
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.outLen === 0 || !this.out) return;
    const data = this.out.subarray(0, this.outLen);
    // The socket owns the written bytes until they are sent: start a new buffer.
    this.out = null;
    this.outLen = 0;
    if (this.socket.destroyed) return;
    this.c.socketWrites++;
    this.c.bytesWritten += data.length;
    this.socket.write(data);
  }

  private socketOnData(chunk: Buffer): void {
    this.c.socketReads++;
    this.c.bytesRead += chunk.length;
    try {
      this.parser.feed(chunk);
    } catch (err) {
      const e = err instanceof BeussError ? err : new ProtocolError(String(err));
      this.fail(e);
      this.socket.destroy();
    }
  }

  private onFrame(frame: Frame): void {
    if (frame.type === 'PUSH') {
      this.c.pushes++;
      this.onPush(frame.queue, frame.data, frame.lease);
      return;
    }
    if (frame.type === 'EVENT') {
      this.c.events++;
      this.onEvent(frame.channel, frame.data);
      return;
    }
    if (frame.type === 'DROPPED') {
      this.onDropped(frame.channel, frame.count);
      return;
    }
    this.c.replies++;
    if (this.waitHead >= this.waiters.length) {
      if (frame.type === 'ERR') {
        // An error nobody asked for: the server refuses the whole connection (e.g. TOO_MANY_CONNECTIONS).
        const err = serverError(frame.code, frame.text);
        this.fatalServerError = err;
        this.fail(err);
        this.socket.destroy();
        return;
      }
      throw new ProtocolError(`reply '${frame.type}' received with no request waiting`);
    }
    const w = this.waiters[this.waitHead];
    this.waitHead++;
    if (this.waitHead > 1024 && this.waitHead * 2 > this.waiters.length) {
      this.waiters.splice(0, this.waitHead);
      this.waitHead = 0;
    }
    if (frame.type === 'ERR') {
      const err = serverError(frame.code, frame.text);
      if (CLOSING_CODES.has(frame.code)) this.fatalServerError = err;
      w.reject(err);
    } else {
      w.resolve(frame);
    }
  }

  private socketOnClose(): void {
    if (this.endedClean && this.waitHead >= this.waiters.length) {
      this.finish(null);
    } else {
      const why = this.fatalServerError
        ? `after ERR ${this.fatalServerError.code}`
        : this.socketError
          ? `(${this.socketError.message})`
          : 'by the server';
      const err = new ConnectionError(
        this.socketError?.code ?? 'CONNECTION_CLOSED',
        `connection to ${this.opts.host}:${this.opts.port} was closed ${why}`,
        this.opts.host,
        this.opts.port,
        { cause: this.fatalServerError ?? this.socketError ?? undefined },
      );
      this.fail(err);
    }
    this.resolveEnd();
  }

  // Rejects every pending request with err and reports the end once.
  private fail(err: BeussError): void {
    if (this.ended) return;
    this.ended = err;
    const waiting = this.waiters.slice(this.waitHead);
    this.waiters.length = 0;
    this.waitHead = 0;
    this.out = null;
    this.outLen = 0;
    for (const w of waiting) w.reject(err);
    this.onEnd(err);
  }

  private finish(err: BeussError | null): void {
    if (this.ended) return;
    if (err) this.fail(err);
    else this.onEnd(null);
  }
}
