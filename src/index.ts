// The public API of the 'beuss' package: the client library. The server and
// the CLI are executables (beuss-server, beuss), not part of this API.
export { connect, Client } from './client/client.js';
export type { GetOptions, CloseOptions, QueueInfo, ServerStats } from './client/client.js';
export { Consumer, DEFAULT_PREFETCH } from './client/consumer.js';
export type { ConsumeOptions, MessageHandler } from './client/consumer.js';
export { Message } from './client/message.js';
export type { ClientCounters } from './client/connection.js';
export { DEFAULT_HOST, DEFAULT_PORT } from './client/options.js';
export type { ConnectOptions } from './client/options.js';
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
} from './client/errors.js';
export type { ServerErrorCode } from './client/errors.js';
