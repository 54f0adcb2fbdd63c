/** The shape of a CLI command, and the usage error every command throws on bad flags. */
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
      args: argv,
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
