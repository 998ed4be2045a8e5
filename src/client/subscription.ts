// A subscription to a fan-out channel (SUB/UNSUB): every message published
// to the channel after the SUB, read with `for await` or through a callback.
import { BeussError, InvalidArgumentError } from './errors.js';
import type { Frame } from './parser.js';
import { pushedIterator, runHandler } from './pushed.js';

/** A message published to a channel, as a {@link Subscription} receives it. */
export class ChannelEvent {
  /** Creates an event of `channel` holding `data`. */
  constructor(
    /** The channel it was published to. */
    readonly channel: string,
    /** The bytes, exactly as they were published. */
    readonly data: Buffer,
    /** Events of this channel lost just before this one (the subscriber did not keep up); usually 0. */
    readonly droppedBefore: number,
  ) {}

  /** Returns the bytes decoded as UTF-8. */
  text(): string {
    return this.data.toString('utf8');
  }

  /** Returns the bytes parsed as JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.data.toString('utf8')) as T;
  }
}

/** A callback that handles one event; the next one is handed over once its promise settles. */
export type EventHandler = (event: ChannelEvent) => void | Promise<void>;

/** Options of {@link Client.subscribe}. */
export interface SubscribeOptions {
  /**
   * Events kept in the client for a handler or loop that is slower than the
   * publishers, 1 to 10000000 (default 10000). Past it the oldest is dropped
   * and counted in {@link Subscription.dropped}, as the server does.
   */
  maxBuffered?: number;
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  request(header: string): Promise<Frame>;
  release(channel: string, sub: Subscription): void;
}

/** Default bound of a subscription's client-side buffer. */
export const DEFAULT_MAX_BUFFERED = 10_000;

/**
 * Subscription is one `SUB`. It is an AsyncIterable of {@link ChannelEvent}
 * (`break` out of the loop unsubscribes), or, made with a handler, it calls the
 * handler for each event in order, one at a time. Nothing published before
 * {@link ready} resolves is received: channels do not store messages.
 */
export class Subscription implements AsyncIterable<ChannelEvent> {
  /** Resolves once the server confirmed the `SUB`; rejects if it refused it. */
  readonly ready: Promise<void>;
  /**
   * Settles when the subscription is over: resolves after `close()`, `break`
   * or the client closed; rejects with the error that ended it.
   */
  readonly closed: Promise<void>;

  private open = true;
  private error: Error | null = null;
  private readonly buffer: ChannelEvent[] = [];
  private bufHead = 0;
  private waiter: { resolve(r: IteratorResult<ChannelEvent>): void; reject(e: Error): void } | null = null;
  private iterated = false;
  private received = 0;
  private lost = 0;
  private lostPending = 0;
  private settle!: { resolve(): void; reject(e: Error): void };
  private closing: Promise<void> | null = null;

  /** @internal Use {@link Client.subscribe}. */
  constructor(
    private readonly host: SubscriptionHost,
    /** The channel subscribed to. */
    readonly channel: string,
    private readonly maxBuffered: number,
    handler?: EventHandler,
  ) {
    const over = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    if (handler) {
      this.iterated = true;
      this.closed = runHandler(() => this.next(), handler, () => this.close());
    } else {
      this.closed = over;
    }
    this.closed.catch(() => {});
    over.catch(() => {});
    this.ready = this.host.request(`SUB ${channel}`).then(
      () => {},
      (err: Error) => {
        this.end(err);
        throw err;
      },
    );
    this.ready.catch(() => {});
  }

  /** Events received from the server so far. */
  get receivedCount(): number {
    return this.received;
  }

  /** Events lost so far: dropped by the server (reported with `DROPPED`) or by this client's buffer. */
  get dropped(): number {
    return this.lost;
  }

  /** Returns the async iterator of events; a subscription can be iterated once. */
  [Symbol.asyncIterator](): AsyncIterator<ChannelEvent> {
    if (this.iterated) throw new InvalidArgumentError('a subscription can be iterated only once, and not when it has a handler');
    this.iterated = true;
    return pushedIterator(() => this.next(), () => this.close());
  }

  /** Ends the subscription: sends `UNSUB`, drops events not handed out yet, resolves once the server confirmed. */
  close(): Promise<void> {
    if (!this.closing) {
      const unsub = this.host.request(`UNSUB ${this.channel}`).then(
        () => this.host.release(this.channel, this),
        () => this.host.release(this.channel, this),
      );
      this.buffer.length = 0;
      this.bufHead = 0;
      this.end(null);
      this.closing = unsub;
    }
    return this.closing;
  }

  private next(): Promise<IteratorResult<ChannelEvent>> {
    if (this.bufHead < this.buffer.length) {
      const e = this.buffer[this.bufHead++]!;
      if (this.bufHead === this.buffer.length) {
        this.buffer.length = 0;
        this.bufHead = 0;
      }
      return Promise.resolve({ done: false, value: e });
    }
    if (!this.open) return this.error ? Promise.reject(this.error) : Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** @internal Called by the client with each EVENT of this channel. */
  _event(data: Buffer): void {
    if (!this.open) return;
    this.received++;
    if (!this.waiter && this.buffer.length - this.bufHead >= this.maxBuffered) {
      // Drop the oldest; the event handed out next says so.
      const old = this.buffer[this.bufHead++]!;
      this.lost++;
      const carried = old.droppedBefore + 1;
      const next = this.buffer[this.bufHead];
      if (next) this.buffer[this.bufHead] = new ChannelEvent(next.channel, next.data, next.droppedBefore + carried);
      else this.lostPending += carried;
    }
    const ev = new ChannelEvent(this.channel, data, this.lostPending);
    this.lostPending = 0;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ done: false, value: ev });
      return;
    }
    this.buffer.push(ev);
  }

  /** @internal Called by the client with each DROPPED of this channel. */
  _dropped(n: number): void {
    this.lost += n;
    this.lostPending += n;
  }

  /** @internal Called by the client when the connection ended (err null: closed by the user). */
  _connectionEnded(err: BeussError | null): void {
    this.end(err);
  }

  private end(err: Error | null): void {
    if (!this.open) return;
    this.open = false;
    if (err) this.error = err;
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve();
    if (this.waiter && this.bufHead >= this.buffer.length) {
      const w = this.waiter;
      this.waiter = null;
      if (this.error) w.reject(this.error);
      else w.resolve({ done: true, value: undefined });
    }
    if (err) this.host.release(this.channel, this);
  }
}

/** Returns `maxBuffered` checked, or throws InvalidArgumentError. */
export function checkMaxBuffered(v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_BUFFERED;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 10_000_000) {
    throw new InvalidArgumentError(`maxBuffered must be an integer from 1 to 10000000, got ${String(v)}`);
  }
  return v;
}
