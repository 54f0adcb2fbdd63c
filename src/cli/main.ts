#!/usr/bin/env node
/** The `flashmla` command line: info, demo, check, bench. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FlashMlaError } from '../errors.js';
import { benchCommand } from './bench.js';
import { checkCommand } from './check.js';
import { type Command, parseCommandArgs, UsageError } from './command.js';
import { demoCommand } from './demo.js';
import { infoCommand } from './info.js';

const commands: Command[] = [infoCommand, demoCommand, checkCommand, benchCommand];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: flashmla <command> [flags]

FlashMLA-class MLA decode attention for Node.js.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'flashmla <command> --help' for a command's flags.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command '${name}'`);
    const values = parseCommandArgs(command, rest);
    if (values.help) {
      console.log(command.help);
      return 0;
    }
    return await command.run(values);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(
        `flashmla: ${error.message}\nRun 'flashmla ${command ? `${command.name} ` : ''}--help' for usage.`,
      );
      return 2;
    }
    if (error instanceof FlashMlaError || isSystemError(error)) {
      // A library error or one from the operating system (a full disk, a file that vanished):
      // the user's to fix, told in one line. Anything else is a bug and keeps its stack trace.
      console.error(`flashmla: ${(error as Error).message}`);
      return 1;
    }
    throw error;
  }
}

/** An error Node made from a failed system call (`ENOSPC: no space left on device, write`). */
function isSystemError(error: unknown): boolean {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}

/**
 * Run only as the program itself (directly, or through npm's bin link, hence the realpath), so
 * tests can import main() without running it.
 */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv.slice(2));
