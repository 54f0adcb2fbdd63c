/**
 * Options objects are checked for their keys as well as their values: a misspelt key
 * (`{ casual: true }`) would otherwise be ignored and the call would silently run without it.
 */
import { OptionError } from './errors.js';

/**
 * Throws OptionError unless `options` is undefined or an object whose own keys are all in
 * `validKeys`; the message lists the valid keys.
 */
export function checkOptionKeys(
  argument: string,
  options: unknown,
  validKeys: ReadonlySet<string>,
): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new OptionError(argument, 'an options object', describeValue(options));
  }
  for (const key in options) {
    if (Object.hasOwn(options, key) && !validKeys.has(key)) {
      throw new OptionError(
        argument,
        `only the keys ${[...validKeys].join(', ')}`,
        `unknown key ${JSON.stringify(key)}`,
      );
    }
  }
}

/** A short description of a value for error messages: `1.5`, `"cuda"`, `a HostTensor`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name ? `a ${name}` : typeof value;
}
