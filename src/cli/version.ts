// The package version, read from package.json at run time so it never drifts.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Returns the version in the package's package.json, or 'unknown' if it cannot be read. */
export function version(): string {
  // The CLI runs from dist/cjs/cli/; in an ESM build __dirname does not exist, so fall back on bin/beuss.js's place.
  const here = typeof __dirname === 'string' ? __dirname : path.dirname(fs.realpathSync(process.argv[1] ?? '.'));
  for (let dir = here, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'beuss' && pkg.version) return pkg.version;
    } catch {
      // Not here: look one level up.
    }
  }
  return 'unknown';
}
