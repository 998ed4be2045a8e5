// The public client: one connection, one method per protocol command.
import { Connection, type ClientCounters } from './connection.js';
import { Consumer, type ConsumeOptions, type ConsumerHost, DEFAULT_PREFETCH, type MessageHandler } from './consumer.js';
import { AlreadySubscribedError, type BeussError, ConnectionError, InvalidArgumentError, ProtocolError } from './errors.js';
import { toDelayMs, toUnixMs } from './duration.js';
import { LeasedMessage, Message } from './message.js';
import { type ConnectOptions, resolveOptions, type ResolvedOptions } from './options.js';
import type { Frame } from './parser.js';
import { checkMaxBuffered, type EventHandler, type SubscribeOptions, Subscription, type SubscriptionHost } from './subscription.js';
import { checkInt, checkQueue, toBytes } from './validate.js';

/** Options of {@link Client.put}: when the message becomes visible (at most one of them). */
export interface PutOptions {
  /** Keep the message invisible this long: milliseconds, or a duration such as `'30s'`, `'5m'`, `'1h30m'`. */
  delay?: number | string;
  /** Keep the message invisible until this time: a Date, a Unix time in ms, or an ISO-8601 string with a zone. */
  at?: Date | number | string;
}

/** One schedule of {@link Client.schedules}. */
export interface ScheduleInfo {
  /** The schedule's name. */
  name: string;
  /** The queue it puts its message on. */
  queue: string;
  /** When it fires next. */
  next: Date;
  /** Messages it has put so far. */
  fired: number;
  /** Its spec: a cron expression, a shortcut or `@every <duration>`, with an optional `TZ=<zone> ` prefix. */
  spec: string;
}

/** Options of {@link Client.get}. */
export interface GetOptions {
  /**
   * Milliseconds the server may wait for a message when the queue is empty
   * (`GET … WAIT <ms>`); 0 or absent answers at once. Replies to requests made
   * after this one wait for it too (replies come in order).
   */
  wait?: number;
}

/** Options of {@link Client.get} that take the message under a lease (at-least-once). */
export interface LeaseGetOptions extends GetOptions {
  /** Milliseconds the message stays this client's before it goes back to the head of its queue, unless acknowledged. */
  lease: number;
  /** Deliveries before the message goes to `<queue>.dead` instead of back to its queue (server default 5). */
  maxDeliver?: number;
}

/** Options of {@link Client.work}. */
export interface WorkOptions {
  /** Lease in milliseconds (default 30000): a handler running longer should call `msg.touch()`. */
  lease?: number;
  /** Unacknowledged messages held at once (default 1: the next waits on the server, not in this client). */
  prefetch?: number;
  /** Deliveries before a failing message goes to `<queue>.dead` (server default 5). */
  maxDeliver?: number;
  /** Milliseconds before a message whose handler threw is delivered again (default 0). */
  retryDelay?: number;
  /** Stop after this many messages. */
  max?: number;
  /** Called with what the handler threw and the message, which is NACKed (the consumer goes on). */
  onError?: (err: unknown, msg: LeasedMessage) => void;
}

/** Options of {@link Client.close}. */
export interface CloseOptions {
  /** Destroy the socket now and reject pending calls with ConnectionError instead of waiting for their replies. */
  force?: boolean;
}

/** One line of {@link Client.queues}. */
export interface QueueInfo {
  /** The queue name. */
  name: string;
  /** Messages ready in the queue. */
  ready: number;
  /** `ON` subscriptions on the queue. */
  consumers: number;
  /** Messages held under a lease (or a NACK delay) now. */
  leased: number;
  /** Delayed messages not yet due (`put` with `delay` or `at`). */
  scheduled: number;
  /** Messages in the queue's dead-letter queue (`<name>.dead`). */
  dead: number;
}

/** Server counters from {@link Client.stats}: numbers for numeric values, strings otherwise (e.g. `oversize`). */
export type ServerStats = Record<string, number | string>;

/** One queue's counts from {@link Client.stats} with a queue name (`STATS <queue>`); later servers may add keys. */
export interface QueueStats {
  ready: number;
  consumers: number;
  leased: number;
  scheduled: number;
  dead: number;
  waiting: number;
  bytes: number;
  /** The name of the queue's dead-letter queue. */
  dead_queue: string;
  [key: string]: number | string;
}

const DEFAULT_WORK_LEASE = 30_000;
const MAX_LEASE = 0xffffffff;

const MAX_WAIT_MS = 2 ** 53 - 1;
const MAX_PREFETCH = 1_000_000;
const U64 = /^\d{1,19}$/;

function num(frame: Frame, what: string): number {
  if (frame.type !== 'OK' || frame.args.length < 1 || !U64.test(frame.args[0])) {
    throw new ProtocolError(`unexpected reply to ${what}: ${describe(frame)}`);
  }
  return Number(frame.args[0]);
}

function describe(frame: Frame): string {
  return frame.type === 'OK' ? ['OK', ...frame.args].join(' ') : frame.type;
}

function parseDoc(text: string): ServerStats {
  const out: ServerStats = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const sp = t.search(/[ \t]/);
    const key = sp < 0 ? t : t.slice(0, sp);
    const value = sp < 0 ? '' : t.slice(sp + 1).trim();
    out[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return out;
}

function message(frame: Frame, what: string): Buffer | null {
  if (frame.type === 'MSG') return frame.data;
  if (frame.type === 'EMPTY') return null;
  throw new ProtocolError(`unexpected reply to ${what}: ${describe(frame)}`);
}

function data(frame: Frame, what: string): string {
  if (frame.type !== 'DATA') throw new ProtocolError(`unexpected reply to ${what}: ${describe(frame)}`);
  return frame.data.toString('utf8');
}

/**
 * Client is a connection to a beuss server. Calls are pipelined: calls made
 * without awaiting go out together in one socket write, and their promises
 * settle in call order. Make one with {@link connect}.
 */
export class Client {
  private readonly consumers = new Map<string, Consumer>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly host: ConsumerHost;
  private readonly subHost: SubscriptionHost;
  private readonly endPromise: Promise<BeussError | null>;
  private userClosed = false;

  private constructor(
    private readonly conn: Connection,
    /** The options in use, defaults applied. */
    readonly options: Readonly<ResolvedOptions>,
  ) {
    let resolveEnd!: (err: BeussError | null) => void;
    this.endPromise = new Promise((resolve) => (resolveEnd = resolve));
    conn.onPush = (queue, bytes, lease) => this.consumers.get(queue)?._push(bytes, lease);
    conn.onEvent = (channel, bytes) => this.subscriptions.get(channel)?._event(bytes);
    conn.onDropped = (channel, n) => this.subscriptions.get(channel)?._dropped(n);
    conn.onEnd = (err) => {
      const reason = this.userClosed ? null : err;
      for (const c of [...this.consumers.values()]) c._connectionEnded(reason);
      this.consumers.clear();
      for (const sub of [...this.subscriptions.values()]) sub._connectionEnded(reason);
      this.subscriptions.clear();
      resolveEnd(reason);
    };
    this.host = {
      request: (header) => this.conn.request(header),
      release: (queue, consumer) => {
        if (this.consumers.get(queue) === consumer) this.consumers.delete(queue);
      },
      leased: (queue, data, lease) => new LeasedMessage(queue, data, lease.id, lease.deliveries, this.settle),
    };
    this.subHost = {
      request: (header) => this.conn.request(header),
      release: (channel, sub) => {
        if (this.subscriptions.get(channel) === sub) this.subscriptions.delete(channel);
      },
    };
  }

  /** Returns a connected client; rejects with ConnectionError when the server cannot be reached. */
  static async connect(opts: ConnectOptions = {}): Promise<Client> {
    const resolved = resolveOptions(opts);
    const conn = await Connection.open(resolved);
    return new Client(conn, resolved);
  }

  /**
   * Appends `data` to `queue` (created on the fly) and resolves with the number
   * of bytes the server stored: less than `data`'s length when the server
   * truncated an oversized message. Rejects with TooLargeError when the server
   * refuses oversized messages, FullError when its memory cap is reached.
   * With `opts.delay` or `opts.at` the message stays invisible (not taken, not
   * counted by `len`) until then, and joins the queue at that time.
   */
  async put(queue: string, data: Buffer | Uint8Array | string, opts: PutOptions = {}): Promise<number> {
    checkQueue(queue);
    const bytes = toBytes(data);
    if (opts.delay !== undefined && opts.at !== undefined) throw new InvalidArgumentError('put: give delay or at, not both');
    let when = '';
    if (opts.delay !== undefined) when = ` DELAY ${toDelayMs(opts.delay)}`;
    else if (opts.at !== undefined) when = ` AT ${toUnixMs(opts.at)}`;
    return num(await this.conn.request(`PUT ${queue} ${bytes.length}${when}`, bytes), 'PUT');
  }

  /**
   * Sends `data` to every current subscriber of `channel` and resolves with how
   * many there were. Nothing is kept when nobody listens (the result is then 0).
   */
  async publish(channel: string, data: Buffer | Uint8Array | string): Promise<number> {
    checkQueue(channel);
    const bytes = toBytes(data);
    return num(await this.conn.request(`PUB ${channel} ${bytes.length}`, bytes), 'PUB');
  }

  /**
   * Returns a {@link Subscription} to `channel` (`SUB`): iterate it with
   * `for await`, or pass a `handler` called for each event in order. Every
   * subscriber receives every message published after its subscription is
   * {@link Subscription.ready | ready}. One subscription per channel per
   * client: a second one throws AlreadySubscribedError.
   */
  subscribe(channel: string, opts?: SubscribeOptions): Subscription;
  subscribe(channel: string, handler: EventHandler, opts?: SubscribeOptions): Subscription;
  subscribe(channel: string, a?: EventHandler | SubscribeOptions, b?: SubscribeOptions): Subscription {
    checkQueue(channel);
    if (a !== undefined && typeof a !== 'function' && typeof a !== 'object') {
      throw new InvalidArgumentError('subscribe(channel, handler?, options?): handler must be a function');
    }
    const handler = typeof a === 'function' ? a : undefined;
    const opts = (typeof a === 'function' ? b : a) ?? {};
    const maxBuffered = checkMaxBuffered(opts.maxBuffered);
    if (this.conn.isClosed) throw new ConnectionError('CONNECTION_CLOSED', 'the client is closed', this.options.host, this.options.port);
    if (this.subscriptions.has(channel)) {
      throw new AlreadySubscribedError('ALREADY_SUBSCRIBED', `this client already subscribes to '${channel}'; close that subscription first`);
    }
    const sub = new Subscription(this.subHost, channel, maxBuffered, handler);
    this.subscriptions.set(channel, sub);
    return sub;
  }

  /**
   * Adds (or replaces) the schedule `name`, which puts `data` on `queue` at
   * every tick of `spec` (a 5- or 6-field cron expression, `@hourly`-style
   * shortcut or `@every 5m`, in UTC unless prefixed with `TZ=<zone> `); resolves
   * with its first fire time. Rejects with BadScheduleError when the server
   * does not understand `spec`.
   */
  async scheduleAdd(name: string, queue: string, spec: string, data: Buffer | Uint8Array | string = ''): Promise<Date> {
    checkQueue(name);
    checkQueue(queue);
    if (typeof spec !== 'string' || spec.trim() === '' || /[\r\n]/.test(spec) || Buffer.byteLength(spec) > 200) {
      throw new InvalidArgumentError('schedule spec must be a one-line string of 1 to 200 bytes');
    }
    const payload = Buffer.concat([Buffer.from(`${spec.trim()}\n`, 'utf8'), toBytes(data)]);
    return new Date(num(await this.conn.request(`SCHEDULE ADD ${name} ${queue} ${payload.length}`, payload), 'SCHEDULE ADD'));
  }

  /** Resolves with the server's schedules, sorted by name. */
  async schedules(): Promise<ScheduleInfo[]> {
    const text = data(await this.conn.request('SCHEDULE LS'), 'SCHEDULE LS');
    const out: ScheduleInfo[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const m = /^(\S+) (\S+) (\d{1,19}) (\d{1,19}) (.+)$/.exec(line);
      if (!m) throw new ProtocolError(`bad line in SCHEDULE LS reply: '${line}'`);
      out.push({ name: m[1]!, queue: m[2]!, next: new Date(Number(m[3])), fired: Number(m[4]), spec: m[5]! });
    }
    return out;
  }

  /** Removes the schedule `name`; rejects with NoScheduleError when there is none. */
  async scheduleRemove(name: string): Promise<void> {
    checkQueue(name);
    const f = await this.conn.request(`SCHEDULE RM ${name}`);
    if (f.type !== 'OK') throw new ProtocolError(`unexpected reply to SCHEDULE RM: ${describe(f)}`);
  }

  // Sends ACK/NACK/TOUCH for a LeasedMessage; resolves on OK.
  private readonly settle = async (header: string): Promise<void> => {
    const f = await this.conn.request(header);
    if (f.type !== 'OK') throw new ProtocolError(`unexpected reply to ${header.split(' ')[0]}: ${describe(f)}`);
  };

  /**
   * Takes the message at the head of `queue` and resolves with its bytes, or
   * with null when the queue is empty (after waiting up to `opts.wait` ms on the
   * server, if given). With `opts.lease` it takes the message under a lease
   * (at-least-once) and resolves with a {@link LeasedMessage} to `ack()`.
   */
  get(queue: string, opts: LeaseGetOptions): Promise<LeasedMessage | null>;
  get(queue: string, opts?: GetOptions): Promise<Buffer | null>;
  async get(queue: string, opts: GetOptions & Partial<LeaseGetOptions> = {}): Promise<Buffer | LeasedMessage | null> {
    checkQueue(queue);
    const wait = opts.wait ?? 0;
    checkInt(wait, 'wait (milliseconds)', 0, MAX_WAIT_MS);
    let header = wait > 0 ? `GET ${queue} WAIT ${wait}` : `GET ${queue}`;
    if (opts.lease !== undefined) {
      header += ` LEASE ${checkInt(opts.lease, 'lease (milliseconds)', 1, MAX_LEASE)}`;
      if (opts.maxDeliver !== undefined) header += ` MAXDELIVER ${checkInt(opts.maxDeliver, 'maxDeliver', 1, MAX_LEASE)}`;
    } else if (opts.maxDeliver !== undefined) {
      throw new InvalidArgumentError('maxDeliver needs lease');
    }
    const frame = await this.conn.request(header);
    if (opts.lease === undefined) return message(frame, 'GET');
    if (frame.type === 'EMPTY') return null;
    if (frame.type !== 'MSG' || !frame.lease) throw new ProtocolError(`unexpected reply to GET … LEASE: ${describe(frame)}`);
    return new LeasedMessage(queue, frame.data, frame.lease.id, frame.lease.deliveries, this.settle);
  }

  /** Resolves with the bytes of the message at the head of `queue` without taking it, or null when empty. */
  async peek(queue: string): Promise<Buffer | null> {
    checkQueue(queue);
    return message(await this.conn.request(`PEEK ${queue}`), 'PEEK');
  }

  /** Resolves with the number of messages ready in `queue` (0 for a queue that does not exist). */
  async len(queue: string): Promise<number> {
    checkQueue(queue);
    return num(await this.conn.request(`LEN ${queue}`), 'LEN');
  }

  /** Deletes every message of `queue`; resolves with how many were deleted. */
  async purge(queue: string): Promise<number> {
    checkQueue(queue);
    return num(await this.conn.request(`PURGE ${queue}`), 'PURGE');
  }

  /** Resolves with the server's queues, sorted by name. */
  async queues(): Promise<QueueInfo[]> {
    const text = data(await this.conn.request('QUEUES'), 'QUEUES');
    const out: QueueInfo[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      // Protocol 1 servers send three fields: the others are then 0.
      const [name, ready, consumers, leased = '0', scheduled = '0', dead = '0'] = line.trim().split(/[ \t]+/);
      if (![ready, consumers, leased, scheduled, dead].every((v) => U64.test(v ?? ''))) {
        throw new ProtocolError(`bad line in QUEUES reply: '${line}'`);
      }
      out.push({
        name,
        ready: Number(ready),
        consumers: Number(consumers),
        leased: Number(leased),
        scheduled: Number(scheduled),
        dead: Number(dead),
      });
    }
    return out;
  }

  /**
   * Resolves with the server's counters (see docs/PROTOCOL.md, STATS, for the
   * keys), or with one queue's counts when `queue` is given (`STATS <queue>`).
   */
  stats(): Promise<ServerStats>;
  stats(queue: string): Promise<QueueStats>;
  async stats(queue?: string): Promise<ServerStats | QueueStats> {
    if (queue === undefined) return parseDoc(data(await this.conn.request('STATS'), 'STATS'));
    checkQueue(queue);
    return parseDoc(data(await this.conn.request(`STATS ${queue}`), 'STATS')) as QueueStats;
  }

  /** Resolves with the round-trip time in milliseconds of a PING. */
  async ping(): Promise<number> {
    const t0 = process.hrtime.bigint();
    const frame = await this.conn.request('PING');
    if (frame.type !== 'PONG') throw new ProtocolError(`unexpected reply to PING: ${describe(frame)}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }

  /**
   * Returns a {@link Consumer} of `queue` fed by server push (`ON`): iterate it
   * with `for await`, or pass a `handler` called for each message in order (the
   * next one waits for its promise). Credit is granted back as messages are
   * handled, so at most `prefetch` messages are pushed ahead of the handler.
   * One consumer per queue per client: a second one throws AlreadySubscribedError.
   */
  consume(queue: string, opts: ConsumeOptions & { lease: number }): Consumer<LeasedMessage>;
  consume(queue: string, handler: MessageHandler<LeasedMessage>, opts: ConsumeOptions & { lease: number }): Consumer<LeasedMessage>;
  consume(queue: string, opts?: ConsumeOptions): Consumer;
  consume(queue: string, handler: MessageHandler, opts?: ConsumeOptions): Consumer;
  consume(queue: string, a?: MessageHandler<never> | ConsumeOptions, b?: ConsumeOptions): Consumer<Message> {
    checkQueue(queue);
    const handler = typeof a === 'function' ? a : undefined;
    const opts = (typeof a === 'function' ? b : a) ?? {};
    if (a !== undefined && typeof a !== 'function' && typeof a !== 'object') {
      throw new InvalidArgumentError('consume(queue, handler?, options?): handler must be a function');
    }
    const prefetch = checkInt(opts.prefetch ?? DEFAULT_PREFETCH, 'prefetch', 1, MAX_PREFETCH);
    const max = opts.max === undefined ? Infinity : checkInt(opts.max, 'max', 1, Number.MAX_SAFE_INTEGER);
    const lease = opts.lease === undefined ? 0 : checkInt(opts.lease, 'lease (milliseconds)', 1, MAX_LEASE);
    const maxDeliver = opts.maxDeliver === undefined ? undefined : checkInt(opts.maxDeliver, 'maxDeliver', 1, MAX_LEASE);
    if (maxDeliver !== undefined && lease === 0) throw new InvalidArgumentError('maxDeliver needs lease');
    if (this.conn.isClosed) throw new ConnectionError('CONNECTION_CLOSED', 'the client is closed', this.options.host, this.options.port);
    if (this.consumers.has(queue)) {
      throw new AlreadySubscribedError('ALREADY_SUBSCRIBED', `this client already consumes '${queue}'; close that consumer first`);
    }
    const c = new Consumer<Message>(this.host, queue, prefetch, max, handler as MessageHandler | undefined, lease, maxDeliver);
    this.consumers.set(queue, c);
    return c;
  }

  /**
   * Returns a consumer of `queue` that runs `handler` for each message, one at
   * a time, at least once: the message is taken under a lease, acknowledged
   * when the handler resolves, and given back (NACK, after `opts.retryDelay`)
   * when it throws, so another try gets it; after `maxDeliver` tries it goes
   * to `<queue>.dead`. A handler may settle the message itself. The consumer
   * goes on after a failure; `close()` it to stop.
   */
  work(queue: string, handler: (msg: LeasedMessage) => unknown, opts: WorkOptions = {}): Consumer<LeasedMessage> {
    if (typeof handler !== 'function') throw new InvalidArgumentError('work(queue, handler, options?): handler must be a function');
    const retryDelay = opts.retryDelay === undefined ? 0 : checkInt(opts.retryDelay, 'retryDelay', 0, MAX_WAIT_MS);
    const run = async (msg: LeasedMessage): Promise<void> => {
      try {
        await handler(msg);
      } catch (err) {
        if (!msg.settled) msg.nack({ delay: retryDelay }).catch(() => {});
        opts.onError?.(err, msg);
        return;
      }
      // Not awaited: the ACK is pipelined ahead of anything sent later, and a lost
      // connection gives the message back, which at-least-once allows.
      if (!msg.settled) msg.ack().catch(() => {});
    };
    return this.consume(queue, run, {
      lease: opts.lease ?? DEFAULT_WORK_LEASE,
      prefetch: opts.prefetch ?? 1,
      max: opts.max,
      maxDeliver: opts.maxDeliver,
    });
  }

  /**
   * Closes the client. By default it waits for the replies of every call made
   * before, then closes the connection. With `{ force: true }` it closes at once
   * and pending calls reject with ConnectionError (code CONNECTION_CLOSED).
   */
  async close(opts: CloseOptions = {}): Promise<void> {
    this.userClosed = true;
    await this.conn.close(opts.force === true);
  }

  /**
   * Resolves when the connection has ended: with null after {@link close}, or
   * with the ConnectionError (or server error) that ended it.
   */
  closed(): Promise<BeussError | null> {
    return this.endPromise;
  }

  /** True once the client is closing or closed, or its connection was lost. */
  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /**
   * Returns a snapshot of socket-level counters: `socketWrites` shows pipelining
   * at work (10,000 `put`s made in one tick take a handful of writes).
   */
  counters(): ClientCounters {
    return this.conn.counters();
  }
}

/** Returns a connected {@link Client}; host and port default to `BHOST`/`BPORT`, then localhost:6552. */
export function connect(opts: ConnectOptions = {}): Promise<Client> {
  return Client.connect(opts);
}
