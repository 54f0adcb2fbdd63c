/**
 * The shape of a CLI command, the usage error every command throws on bad flags, and what the
 * commands share: flag parsing and a progress bar.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  summary: string;
  /** Full help text: usage line, description, flags. */
  help: string;
  options: OptionSpec;
  run(values: Record<string, string | boolean | undefined>): Promise<number>;
}

/** Bad flags or values: printed with a hint to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseCommandArgs(
  command: Command,
  argv: string[],
): Record<string, string | boolean | undefined> {
  try {
    const { values, positionals } = parseArgs({
      args: joinNegativeValues(command.options, argv),
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    return values as Record<string, string | boolean | undefined>;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}

/**
 * Node's parser takes `--count -1` for two flags (and refuses it as ambiguous): a value that
 * looks like a negative number is joined to its flag (`--count=-1`), so the flag's own check
 * says what is wrong with it.
 */
function joinNegativeValues(options: OptionSpec, argv: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : undefined;
    const next = argv[i + 1];
    if (
      name !== undefined &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      /^-\.?\d/.test(next)
    ) {
      joined.push(`${argv[i]}=${next}`);
      i++;
    } else {
      joined.push(argv[i]);
    }
  }
  return joined;
}

/** Parses an integer flag value, or throws a UsageError naming the flag. */
export function intFlag(
  name: string,
  value: string | boolean | undefined,
  fallback: number,
  min = 0,
): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== 'string' || !Number.isSafeInteger(parsed) || parsed < min) {
    throw new UsageError(`--${name} expects an integer >= ${min}, got '${String(value)}'`);
  }
  return parsed;
}

/** Parses a comma-separated list of integers (e.g. --heads 16,128). */
export function intListFlag(
  name: string,
  value: string | boolean | undefined,
  fallback: number[],
  min = 0,
): number[] {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim() === '')
    throw new UsageError(`--${name} expects a comma-separated list of integers`);
  return value.split(',').map((part) => intFlag(name, part.trim(), 0, min));
}

/** Parses a flag that must be one of a few words. */
export function choiceFlag<T extends string>(
  name: string,
  value: string | boolean | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw new UsageError(`--${name} expects one of ${choices.join(', ')}, got '${String(value)}'`);
  }
  return value as T;
}

/** Parses --backend: undefined when absent, so that the default (FLASHMLA_BACKEND, else auto) applies. */
export function backendFlag(
  value: string | boolean | undefined,
): 'auto' | 'cuda' | 'cpu' | undefined {
  return value === undefined
    ? undefined
    : choiceFlag('backend', value, ['auto', 'cuda', 'cpu'] as const, 'auto');
}

/** Parses a flag that names a file or folder: a non-empty string, or undefined when absent. */
export function pathFlag(name: string, value: string | boolean | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '')
    throw new UsageError(`--${name} expects a path`);
  return value;
}

/**
 * A one-line progress bar on stderr, redrawn in place. Only on an interactive terminal and
 * never under CI: in a log file, carriage-return redraws are noise.
 */
export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private readonly stream: NodeJS.WriteStream;
  readonly enabled: boolean;
  private shown = false;

  constructor(total: number, label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.total = total;
    this.label = label;
    this.stream = stream;
    this.enabled = stream.isTTY === true && !process.env.CI;
  }

  /** Redraws the bar: `done` of `total` finished, `detail` says what runs now. */
  update(done: number, detail = ''): void {
    if (!this.enabled) return;
    const width = 30;
    const filled = Math.round((width * done) / Math.max(this.total, 1));
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${detail}`;
    // A terminal that reports no width (0) gets 80 columns.
    const columns = this.stream.columns || 80;
    this.stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
    this.shown = true;
  }

  /** Erases the bar, so ordinary output can follow on a clean line. */
  clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}
