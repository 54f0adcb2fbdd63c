#!/usr/bin/env node
// Says whether two cubins hold the same machine code, kernel by kernel: the bytes of each
// `.text.<kernel>` section, read from the ELF section headers (no CUDA tools needed). Line
// tables, source hashes and other metadata may differ. A change that leaves every kernel's code
// identical (a refactor, a comment) keeps the GPU measurements of the code it started from, which
// makes this the check for kernel-source edits made where no GPU can test them:
//   cp dist/kernels/decode_seesaw_sm90.cubin /tmp/before.cubin
//   (edit, npm run build)
//   node scripts/same-machine-code.mjs /tmp/before.cubin dist/kernels/decode_seesaw_sm90.cubin
// Exit code 0 when every kernel's code is identical, 1 otherwise.
import { readFileSync } from 'node:fs';

/** The `.text.*` sections of an ELF64 little-endian file, by name. */
function textSections(path) {
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
    throw new Error(`${path}: not a 64-bit little-endian ELF file`);
  }
  const headersAt = Number(elf.readBigUInt64LE(0x28));
  const headerSize = elf.readUInt16LE(0x3a);
  const count = elf.readUInt16LE(0x3c);
  const namesIndex = elf.readUInt16LE(0x3e);
  const header = (i) => {
    const at = headersAt + i * headerSize;
    return {
      name: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
    };
  };
  const names = header(namesIndex);
  const nameOf = (offset) => {
    const start = names.offset + offset;
    return elf.toString('latin1', start, elf.indexOf(0, start));
  };
  const sections = new Map();
  for (let i = 0; i < count; i++) {
    const h = header(i);
    const name = nameOf(h.name);
    if (name.startsWith('.text.')) sections.set(name, elf.subarray(h.offset, h.offset + h.size));
  }
  return sections;
}

const [before, after] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: node scripts/same-machine-code.mjs BEFORE.cubin AFTER.cubin');
  process.exit(2);
}
const a = textSections(before);
const b = textSections(after);
let same = true;
for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
  const x = a.get(name);
  const y = b.get(name);
  const verdict = !x
    ? 'only in the second'
    : !y
      ? 'only in the first'
      : x.equals(y)
        ? 'identical'
        : 'different';
  if (verdict !== 'identical') same = false;
  console.log(`${name.slice('.text.'.length)}: ${verdict}`);
}
process.exit(same ? 0 : 1);
