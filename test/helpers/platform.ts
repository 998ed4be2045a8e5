// What the test machine's platform offers, in one place, for the tests that
// cannot hold everywhere the CI runs them (Linux, macOS, Windows).
import { expect } from 'vitest';

/** True on Linux: /proc/<pid>/status and /proc/<pid>/fd exist (RSS and open-file checks). */
export const onLinux = process.platform === 'linux';

/**
 * True on Windows: no `sh`/`bash` or /bin/sh for shell scripts and `--exec`,
 * no symlinks without privileges, and `kill()` with any signal terminates the
 * process without running its handler, so there is no graceful stop and no
 * exit code 0 after SIGTERM/SIGINT, and no process groups.
 */
export const onWindows = process.platform === 'win32';

/**
 * Asserts that a server stopped with stop() (SIGTERM by default) exited with code 0;
 * skipped on Windows, where the signal terminates the process without its handler.
 */
export function expectCleanExit(r: { code: number | null } | undefined): void {
  if (!onWindows) expect(r?.code).toBe(0);
}
