// A subscription to a queue by server push (ON/CREDIT/OFF), read with
// `for await` or through a callback, with credit-based flow control.
import type { BeussError } from './errors.js';
import { LeasedMessage, Message } from './message.js';
import type { Frame, LeaseInfo } from './parser.js';
import { Inbox } from './inbox.js';

/** Options of {@link Client.consume}. */
export interface ConsumeOptions {
  /**
   * How many messages may be pushed ahead of the handler (in flight or
   * buffered in the client), 1 to 1000000. Credit is granted back in batches of
   * half of it as messages are handled. Default 64.
   */
  prefetch?: number;
  /** Stop after this many messages; credit never exceeds what is left, so no message is taken beyond it. */
  max?: number;
  /**
   * Take messages under a lease of this many milliseconds (`ON … LEASE`): the
   * consumer yields {@link LeasedMessage}s to `ack()` or `nack()`; one not
   * settled in time, or still held when the connection ends, goes back to the
   * head of the queue. `prefetch` then bounds the unacknowledged messages: the
   * server gives credit back on each ACK/NACK. Messages dropped by `close()`
   * or pushed past `max` are NACKed at once.
   */
  lease?: number;
  /** With `lease`: deliveries before a message goes to `<queue>.dead` (server default 5). */
  maxDeliver?: number;
}

/** A callback that handles one message; the next one is handed over once its promise settles. */
export type MessageHandler<M extends Message = Message> = (msg: M) => void | Promise<void>;

/** What a consumer needs from its client. */
export interface ConsumerHost {
  request(header: string): Promise<Frame>;
  release(queue: string, consumer: Consumer<Message>): void;
  /** Returns the leased message of a push. */
  leased(queue: string, data: Buffer, lease: LeaseInfo): LeasedMessage;
}

/** Default prefetch of a consumer. */
export const DEFAULT_PREFETCH = 64;

/**
 * Consumer is one `ON` subscription. It is an AsyncIterable of {@link Message}
 * (`break` out of the loop ends the subscription), or, when made with a handler,
 * it calls the handler for each message in order, one at a time.
 *
 * Without `lease`, delivery is at-most-once: messages pushed but not yet
 * handled when the consumer is closed are dropped. Use a small `prefetch`, or
 * `max`, to bound that; messages still buffered when the connection ends are
 * handed out first. With `lease`, it is at-least-once: see
 * {@link ConsumeOptions.lease}.
 */
export class Consumer<M extends Message = Message> implements AsyncIterable<M> {
  /**
   * Settles when the subscription is over: resolves after `close()`, `break`,
   * `max` reached or the client closed; rejects with the error that ended it
   * (the server refused the `ON`, the connection was lost, the handler threw).
   */
  readonly closed: Promise<void>;

  private readonly inbox: Inbox<M>;
  private granted: number;
  private received = 0;
  private handledSinceGrant = 0;
  private offSent = false;
  private readonly batch: number;
  private closing: Promise<void> | null = null;

  /** @internal Use {@link Client.consume}. */
  constructor(
    private readonly host: ConsumerHost,
    /** The queue this consumer takes messages from. */
    readonly queue: string,
    private readonly prefetch: number,
    private readonly max: number,
    handler?: MessageHandler<M>,
    private readonly lease = 0,
    maxDeliver?: number,
  ) {
    this.batch = Math.max(1, Math.floor(prefetch / 2));
    this.granted = Math.min(prefetch, max);
    this.inbox = new Inbox(handler, () => this.close(), () => this.handled());
    this.closed = this.inbox.closed;
    let on = `ON ${queue} CREDIT ${this.granted}`;
    if (lease > 0) on += maxDeliver === undefined ? ` LEASE ${lease}` : ` LEASE ${lease} MAXDELIVER ${maxDeliver}`;
    this.host.request(on).then(
      () => {},
      (err: Error) => this.end(err, true),
    );
  }

  /** How many messages the server pushed to this consumer so far. */
  get receivedCount(): number {
    return this.received;
  }

  /** Returns the async iterator of messages; a consumer can be iterated once. */
  [Symbol.asyncIterator](): AsyncIterator<M> {
    return this.inbox.iterator('a consumer');
  }

  /**
   * Ends the subscription: sends `OFF`, drops messages not yet handed out and
   * resolves once the server confirmed. Safe to call more than once.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  /**
   * Ends the subscription without dropping anything: sends `OFF`, keeps
   * handing out every message the server pushed before confirming it, and
   * resolves once they have all been handed out (with a handler: handled).
   */
  async drain(): Promise<void> {
    if (this.inbox.isOpen && !this.offSent) {
      await this.sendOff();
      this.end(null, false);
    }
    await this.closed.catch(() => {});
  }

  private async doClose(): Promise<void> {
    const off = this.sendOff();
    this.end(null, true);
    await off;
  }

  private sendOff(): Promise<void> {
    if (this.offSent) return Promise.resolve();
    this.offSent = true;
    return this.host.request(`OFF ${this.queue}`).then(
      () => this.host.release(this.queue, this),
      () => this.host.release(this.queue, this),
    );
  }

  // Counts one message as handled and grants credit back in batches.
  private handled(): void {
    // Under a lease the server gives credit back on ACK/NACK: granting here would exceed the prefetch.
    if (this.lease > 0) return;
    this.handledSinceGrant++;
    if (!this.inbox.isOpen || this.offSent || this.handledSinceGrant < this.batch) return;
    const n = Math.min(this.handledSinceGrant, this.max - this.granted);
    this.handledSinceGrant = 0;
    if (n <= 0) return;
    this.granted += n;
    this.host.request(`CREDIT ${this.queue} ${n}`).catch(() => {
      // NOT_SUBSCRIBED after a concurrent close, or a lost connection, which ends the consumer anyway.
    });
  }

  /** @internal Called by the client with each PUSH for this queue. */
  _push(data: Buffer, lease?: LeaseInfo): void {
    if (!this.inbox.isOpen) {
      // Past max or after close: give a leased message back now rather than when its lease runs out.
      if (lease) this.host.leased(this.queue, data, lease).nack().catch(() => {});
      return;
    }
    this.received++;
    const msg = (lease ? this.host.leased(this.queue, data, lease) : new Message(this.queue, data)) as M;
    this.inbox.push(msg);
    if (this.received >= this.max) {
      void this.sendOff();
      this.end(null, false);
    }
  }

  /** @internal Called by the client when the connection ended (err null: closed by the user). */
  _connectionEnded(err: BeussError | null): void {
    this.end(err, false);
  }

  // Stops the subscription; with drop, messages not handed out yet are discarded (leased ones given back).
  private end(err: Error | null, drop: boolean): void {
    if (drop && !err) {
      // Latest first: each NACK puts its message at the head, so they keep their order there.
      for (const m of this.inbox.buffered().reverse()) {
        if (m instanceof LeasedMessage && !m.settled) m.nack().catch(() => {});
      }
    }
    if (this.inbox.end(err, drop) && err) this.host.release(this.queue, this);
  }
}
