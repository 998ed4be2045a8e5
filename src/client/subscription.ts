// A subscription to a fan-out channel (SUB/UNSUB): every message published
// to the channel after the SUB, read with `for await` or through a callback.
import { BeussError, InvalidArgumentError } from './errors.js';
import type { Frame } from './parser.js';
import { Inbox } from './inbox.js';

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

  private readonly inbox: Inbox<ChannelEvent>;
  private received = 0;
  private lost = 0;
  private lostPending = 0;
  private closing: Promise<void> | null = null;

  /** @internal Use {@link Client.subscribe}. */
  constructor(
    private readonly host: SubscriptionHost,
    /** The channel subscribed to. */
    readonly channel: string,
    private readonly maxBuffered: number,
    handler?: EventHandler,
  ) {
    this.inbox = new Inbox(handler, () => this.close());
    this.closed = this.inbox.closed;
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
    return this.inbox.iterator('a subscription');
  }

  /** Ends the subscription: sends `UNSUB`, drops events not handed out yet, resolves once the server confirmed. */
  close(): Promise<void> {
    if (!this.closing) {
      const unsub = this.host.request(`UNSUB ${this.channel}`).then(
        () => this.host.release(this.channel, this),
        () => this.host.release(this.channel, this),
      );
      this.inbox.end(null, true);
      this.closing = unsub;
    }
    return this.closing;
  }

  /** @internal Called by the client with each EVENT of this channel. */
  _event(data: Buffer): void {
    if (!this.inbox.isOpen) return;
    this.received++;
    // A full buffer has no reader waiting (maxBuffered is at least 1).
    if (this.inbox.size >= this.maxBuffered) {
      // Drop the oldest; the event handed out next says so.
      const carried = this.inbox.dropOldest()!.droppedBefore + 1;
      this.lost++;
      const told = this.inbox.updateOldest((next) => new ChannelEvent(next.channel, next.data, next.droppedBefore + carried));
      if (!told) this.lostPending += carried;
    }
    this.inbox.push(new ChannelEvent(this.channel, data, this.lostPending));
    this.lostPending = 0;
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
    if (this.inbox.end(err, false) && err) this.host.release(this.channel, this);
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
