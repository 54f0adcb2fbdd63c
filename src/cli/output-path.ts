/**
 * Output paths of the CLI (`bench --plot FILE`, `bench --save DIR`), checked before any work so
 * that a typo costs no benchmark run: the directory is created now, one level at a time, and a
 * temporary directory is actually made (and removed) in it. Permission bits are not enough (root passes every access()
 * check, then cannot write in /proc), and a recursive mkdir under /proc never returns on some
 * Node versions, so neither is used.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from './command.js';

/** Makes `dir` (and its missing parents) a directory files can be written in, or throws UsageError. */
export function prepareOutputDirectory(flag: string, dir: string): void {
  const missing: string[] = [];
  let existing = resolve(dir);
  while (!existsSync(existing)) {
    missing.unshift(existing);
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  if (!statSync(existing).isDirectory()) {
    throw new UsageError(`--${flag}: ${existing} is not a directory`);
  }
  for (const path of missing) {
    attempt(flag, `cannot create directory ${path}`, () => mkdirSync(path));
  }
  attempt(flag, `cannot write in ${resolve(dir)}`, () =>
    rmdirSync(mkdtempSync(join(resolve(dir), '.flashmla-write-check-'))),
  );
}

/**
 * Makes sure `file` can be written: its directory as prepareOutputDirectory() makes it, and the
 * file itself, if it exists, a file open for writing (it is not truncated here).
 */
export function prepareOutputFile(flag: string, file: string): void {
  const path = resolve(file);
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UsageError(`--${flag}: ${path} is a directory, not a file`);
  }
  prepareOutputDirectory(flag, dirname(path));
  if (existsSync(path)) {
    attempt(flag, `cannot write ${path}`, () => closeSync(openSync(path, 'r+')));
  }
}

function attempt(flag: string, what: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new UsageError(`--${flag}: ${what} (${reason})`);
  }
}
