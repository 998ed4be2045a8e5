// One error class per condition, each with a stable `code` and a `name`, so
// callers branch on `err.code` or `instanceof` and never on message text.

/** The codes the server sends in `ERR <CODE> <text>` (docs/PROTOCOL.md). */
export type ServerErrorCode =
  | 'LINE_TOO_LONG'
  | 'BAD_FRAME'
  | 'BAD_NUMBER'
  | 'UNKNOWN_COMMAND'
  | 'BAD_ARGS'
  | 'BAD_QUEUE_NAME'
  | 'TOO_LARGE'
  | 'FULL'
  | 'NOT_SUBSCRIBED'
  | 'ALREADY_SUBSCRIBED'
  | 'TOO_MANY_CONNECTIONS'
  | 'SHUTTING_DOWN'
  | 'INTERNAL'
  | 'BAD_SCHEDULE'
  | 'NO_SCHEDULE'
  | 'UNKNOWN_LEASE';

/** Base class of every error this library raises; `code` is stable, `message` is for people. */
export class BeussError extends Error {
  /** A stable machine-readable code. */
  readonly code: string;

  /** Creates an error with the given code and message. */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Base class of the errors the server answered with (`ERR <CODE> <text>`).
 * `serverText` is the server's human text, without the code.
 */
export class ServerError extends BeussError {
  /** The text the server sent after the code. */
  readonly serverText: string;

  /** Creates an error for a server `ERR` reply. */
  constructor(code: string, serverText: string) {
    super(code, serverText ? `${code}: ${serverText}` : code);
    this.serverText = serverText;
  }
}

/** The server got a header line longer than its limit; it closes the connection. */
export class LineTooLongError extends ServerError {}
/** A payload was not followed by a line end; the server closes the connection. */
export class BadFrameError extends ServerError {}
/** A number in a request was not 1-19 decimal digits. */
export class BadNumberError extends ServerError {}
/** The server does not know the verb. */
export class UnknownCommandError extends ServerError {}
/** Too few or too many arguments, or an unknown option. */
export class BadArgsError extends ServerError {}
/**
 * A queue name breaks the protocol's rules (1-255 bytes, printable ASCII or bytes >= 128).
 * Raised by the server, and by this client before sending anything.
 */
export class BadQueueNameError extends ServerError {}
/** A payload over the server's maximum message size, with the server in `--oversize reject` mode. */
export class TooLargeError extends ServerError {}
/** The server's cap on queued bytes would be exceeded; nothing was stored. */
export class FullError extends ServerError {}
/** `CREDIT`/`OFF` without a prior `ON` for that queue on this connection. */
export class NotSubscribedError extends ServerError {}
/** A second `ON` for the same queue on one connection. */
export class AlreadySubscribedError extends ServerError {}
/** The server's connection cap is reached; it closes the connection. */
export class TooManyConnectionsError extends ServerError {}
/** The server is stopping; it closes the connection. */
export class ShuttingDownError extends ServerError {}
/** The server ran out of memory running the request; nothing was changed. */
export class InternalServerError extends ServerError {}
/** `BAD_SCHEDULE`: a schedule spec the server does not understand, or one that never fires. */
export class BadScheduleError extends ServerError {}
/** `NO_SCHEDULE`: no schedule has that name. */
export class NoScheduleError extends ServerError {}
/** ACK, NACK or TOUCH of a lease this connection does not hold (settled, expired, or another connection's). */
export class UnknownLeaseError extends ServerError {}

const SERVER_ERRORS: Record<ServerErrorCode, new (code: string, text: string) => ServerError> = {
  LINE_TOO_LONG: LineTooLongError,
  BAD_FRAME: BadFrameError,
  BAD_NUMBER: BadNumberError,
  UNKNOWN_COMMAND: UnknownCommandError,
  BAD_ARGS: BadArgsError,
  BAD_QUEUE_NAME: BadQueueNameError,
  TOO_LARGE: TooLargeError,
  FULL: FullError,
  NOT_SUBSCRIBED: NotSubscribedError,
  ALREADY_SUBSCRIBED: AlreadySubscribedError,
  TOO_MANY_CONNECTIONS: TooManyConnectionsError,
  SHUTTING_DOWN: ShuttingDownError,
  INTERNAL: InternalServerError,
  BAD_SCHEDULE: BadScheduleError,
  NO_SCHEDULE: NoScheduleError,
  UNKNOWN_LEASE: UnknownLeaseError,
};

/**
 * Returns the error object for a server `ERR <code> <text>` reply: the class of
 * that code, or a plain ServerError for a code this client does not know yet.
 */
export function serverError(code: string, text: string): ServerError {
  const Ctor = (SERVER_ERRORS as Record<string, (new (code: string, text: string) => ServerError) | undefined>)[code];
  return Ctor ? new Ctor(code, text) : new ServerError(code, text);
}

/**
 * The connection to the server could not be opened or was lost, or the client
 * was closed. `code` is `CONNECTION_CLOSED`, or the system error code when there
 * is one (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `ENOTFOUND`, ...).
 * `host` and `port` say which server.
 */
export class ConnectionError extends BeussError {
  /** The host the client was connected (or connecting) to. */
  readonly host: string;
  /** The port the client was connected (or connecting) to. */
  readonly port: number;

  /** Creates a connection error for host:port. */
  constructor(code: string, message: string, host: string, port: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.host = host;
    this.port = port;
  }
}

/** The server sent bytes that do not follow the protocol; the client closes the connection. Code `PROTOCOL_VIOLATION`. */
export class ProtocolError extends BeussError {
  /** Creates a protocol violation error. */
  constructor(message: string) {
    super('PROTOCOL_VIOLATION', message);
  }
}

/** An argument given to a client method is invalid; nothing was sent. Code `INVALID_ARGUMENT`. */
export class InvalidArgumentError extends BeussError {
  /** Creates an invalid argument error. */
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}
