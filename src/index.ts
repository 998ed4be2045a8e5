/**
 * The Node.js client of beuss, a small in-memory FIFO message bus. The server
 * and the CLI are executables (`beuss-server`, `beuss`), not part of this API.
 *
 * @example
 * ```ts
 * import { connect } from 'beuss';          // or: const { connect } = require('beuss')
 * const client = await connect();           // BHOST/BPORT, then localhost:6552
 * await client.put('jobs', 'hello');        // resolves with the bytes stored
 * const msg = await client.get('jobs', { wait: 5000 }); // Buffer, or null when empty
 * for await (const m of client.consume('jobs', { prefetch: 64 })) {
 *   console.log(m.text());
 *   break;                                  // ends the subscription
 * }
 * await client.put('jobs', 'later', { delay: '30s' });  // invisible for 30 s
 * const news = client.subscribe('news');    // every subscriber gets every message
 * await news.ready;
 * await client.publish('news', 'hi');       // resolves with the number of subscribers
 * await client.scheduleAdd('nightly', 'jobs', '0 3 * * *', 'run'); // cron, UTC
 * // At-least-once: acknowledged when the handler resolves, retried when it throws.
 * client.work('jobs', async (m) => { await handle(m.json()); }, { lease: 30_000 });
 * await client.close();
 * ```
 *
 * @packageDocumentation
 */
export { connect, Client } from './client/client.js';
export type { GetOptions, LeaseGetOptions, CloseOptions, QueueInfo, QueueStats, ServerStats, WorkOptions, PutOptions, ScheduleInfo } from './client/client.js';
export { Subscription, ChannelEvent, DEFAULT_MAX_BUFFERED } from './client/subscription.js';
export type { SubscribeOptions, EventHandler } from './client/subscription.js';
export { Consumer, DEFAULT_PREFETCH } from './client/consumer.js';
export type { ConsumeOptions, MessageHandler } from './client/consumer.js';
export { Message, LeasedMessage } from './client/message.js';
export type { NackOptions } from './client/message.js';
export type { ClientCounters } from './client/connection.js';
export { DEFAULT_HOST, DEFAULT_PORT } from './client/options.js';
export type { ConnectOptions, ResolvedOptions } from './client/options.js';
export { MAX_QUEUE_NAME, queueNameProblem } from './client/validate.js';
export {
  BeussError,
  ServerError,
  ConnectionError,
  ProtocolError,
  InvalidArgumentError,
  LineTooLongError,
  BadFrameError,
  BadNumberError,
  UnknownCommandError,
  BadArgsError,
  BadQueueNameError,
  TooLargeError,
  FullError,
  NotSubscribedError,
  AlreadySubscribedError,
  TooManyConnectionsError,
  ShuttingDownError,
  InternalServerError,
  BadScheduleError,
  NoScheduleError,
  UnknownLeaseError,
} from './client/errors.js';
export type { ServerErrorCode } from './client/errors.js';
