/** What the CLI tests share: running the real program, and a strict-enough XML reader. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `flashmla <args>` in a child process (exit codes are real); FLASHMLA_BACKEND is unset
 * unless `env` sets it.
 */
export function runCli(args: string[], env: Record<string, string> = {}): CliResult {
  const result = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FLASHMLA_BACKEND: '', CI: '1', ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/**
 * Parses the XML subset an SVG writer produces (elements, attributes in double quotes, text,
 * the five predefined entities), throwing on anything malformed: unbalanced or crossed tags,
 * a raw `<` or `&` in text, duplicate or unquoted attributes, content after the root.
 */
export function parseXml(source: string): XmlElement {
  const root: XmlElement = { name: '#document', attributes: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const token = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  const entity = /&(?!(?:amp|lt|gt|quot|apos);)/;
  let at = 0;
  while (at < source.length) {
    token.lastIndex = at;
    const match = token.exec(source);
    if (!match) throw new Error(`malformed XML at offset ${at}: ${source.slice(at, at + 40)}`);
    at = token.lastIndex;
    const [, closing, name, attributeText, selfClosing, text] = match;
    const parent = stack[stack.length - 1];
    if (text !== undefined) {
      if (entity.test(text)) throw new Error(`raw & in text: ${text}`);
      if (text.trim() !== '' && parent === root) throw new Error(`text outside the root: ${text}`);
      parent.text += text;
      continue;
    }
    if (closing) {
      if (parent.name !== name) throw new Error(`</${name}> closes <${parent.name}>`);
      stack.pop();
      continue;
    }
    if (parent === root && root.children.length > 0) throw new Error('a second root element');
    const attributes: Record<string, string> = {};
    for (const [, key, value] of attributeText.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
      if (key in attributes) throw new Error(`duplicate attribute ${key} on <${name}>`);
      if (entity.test(value)) throw new Error(`raw & in attribute ${key}`);
      attributes[key] = value;
    }
    const element: XmlElement = { name, attributes, children: [], text: '' };
    parent.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1) throw new Error(`<${stack[stack.length - 1].name}> is never closed`);
  if (root.children.length !== 1) throw new Error('no root element');
  return root.children[0];
}

/** Every element under `element` (itself included), depth first. */
export function allElements(element: XmlElement): XmlElement[] {
  return [element, ...element.children.flatMap(allElements)];
}
