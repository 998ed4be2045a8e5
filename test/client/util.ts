// Test helpers for the client suite.

/** Resolves once check() returns true, polling every 10 ms at most `tries` times; throws with `what` otherwise. */
export async function until(check: () => boolean | Promise<boolean>, what: string, tries = 1000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}
