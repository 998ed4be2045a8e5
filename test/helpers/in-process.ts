// Runs the real BeussServer inside the test process, for the tests that need
// what a separate process hides: its JavaScript heap, or a read path chosen
// by configuration rather than by the runtime.
import { afterAll, beforeAll } from 'vitest';
import { engineConstants } from '../../src/native';
import { type ServerConfig, parseArgs } from '../../src/server/config';
import { BeussServer } from '../../src/server/server';

/** A BeussServer shared by the tests of a file or describe block, usable once beforeAll has run. */
export interface InProcessServer {
  /** The server itself. */
  readonly server: BeussServer;
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Every line the server logged, in order. */
  readonly logged: string[];
}

/**
 * Returns the in-process server that beforeAll starts on 127.0.0.1 and an
 * OS-chosen port, with the defaults changed by `config`, and afterAll stops.
 * Its server and port throw outside tests and hooks.
 */
export function useInProcessServer(config: Partial<ServerConfig> = {}): InProcessServer {
  let running: { server: BeussServer; port: number } | undefined;
  const logged: string[] = [];
  const get = () => {
    if (!running) throw new Error('the in-process server is not listening: use it from a test or a hook');
    return running;
  };
  beforeAll(async () => {
    const parsed = parseArgs(['--host', '127.0.0.1', '--port', '0'], {}, engineConstants());
    if (parsed.action !== 'run') throw new Error(`unexpected action ${parsed.action}`);
    const server = new BeussServer({ ...parsed.config, ...config }, (line) => logged.push(line));
    running = { server, port: (await server.listen()).port };
  });
  afterAll(async () => {
    await running?.server.stop();
  });
  return {
    get server() {
      return get().server;
    },
    get port() {
      return get().port;
    },
    logged,
  };
}
