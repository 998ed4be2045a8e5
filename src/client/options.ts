// Connection options and their defaults: explicit option, then the BHOST/BPORT
// environment variables, then localhost:6552.
import { InvalidArgumentError } from './errors.js';

/** The port beuss-server listens on unless told otherwise. */
export const DEFAULT_PORT = 6552;
/** The host the client connects to unless told otherwise. */
export const DEFAULT_HOST = 'localhost';

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Server host name or address. Default: `BHOST`, then `localhost`. */
  host?: string;
  /** Server TCP port. Default: `BPORT`, then 6552. */
  port?: number;
  /** Milliseconds to wait for the TCP connection before failing with `ETIMEDOUT`. Default 10000; 0 waits forever. */
  connectTimeout?: number;
  /**
   * Bytes of pipelined requests after which the client writes to the socket at once
   * instead of at the end of the current tick. Default 65536.
   */
  flushThreshold?: number;
  /** Largest payload the client accepts in a reply, in bytes; a bigger one is a protocol violation. Default 1 GiB. */
  maxPayload?: number;
  /** Environment to read `BHOST`/`BPORT` from. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** Connection options with every default applied. */
export interface ResolvedOptions {
  /** Server host name or address. */
  host: string;
  /** Server TCP port. */
  port: number;
  /** Milliseconds allowed for the TCP connection; 0 waits forever. */
  connectTimeout: number;
  /** Bytes of pipelined requests that trigger an immediate socket write. */
  flushThreshold: number;
  /** Largest reply payload accepted, in bytes. */
  maxPayload: number;
}

/** Returns the port number in `text`, or throws InvalidArgumentError naming `what`. */
export function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text.trim())) throw new InvalidArgumentError(`${what} must be a port number from 1 to 65535, got '${text}'`);
  const n = Number(text.trim());
  if (n < 1 || n > 65535) throw new InvalidArgumentError(`${what} must be a port number from 1 to 65535, got '${text}'`);
  return n;
}

/** Returns the options with defaults applied and values checked. */
export function resolveOptions(opts: ConnectOptions = {}): ResolvedOptions {
  const env = opts.env ?? process.env;
  let host = opts.host;
  if (host === undefined || host === '') host = env.BHOST || DEFAULT_HOST;
  let port: number;
  if (opts.port !== undefined) {
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
      throw new InvalidArgumentError(`port must be an integer from 1 to 65535, got ${String(opts.port)}`);
    }
    port = opts.port;
  } else if (env.BPORT) {
    port = parsePort(env.BPORT, 'BPORT');
  } else {
    port = DEFAULT_PORT;
  }
  const connectTimeout = opts.connectTimeout ?? 10_000;
  if (!(connectTimeout >= 0)) throw new InvalidArgumentError(`connectTimeout must be >= 0, got ${String(connectTimeout)}`);
  const flushThreshold = opts.flushThreshold ?? 65_536;
  if (!(flushThreshold >= 1)) throw new InvalidArgumentError(`flushThreshold must be >= 1, got ${String(flushThreshold)}`);
  const maxPayload = opts.maxPayload ?? 1024 * 1024 * 1024;
  if (!(maxPayload >= 0)) throw new InvalidArgumentError(`maxPayload must be >= 0, got ${String(maxPayload)}`);
  return { host, port, connectTimeout, flushThreshold, maxPayload };
}
