// Appending a custom section to a WebAssembly module: how the grow-trap offsets (wasm-grow-traps.ts)
// and the trap source map (kernel-srcmap.ts) travel inside the module's own bytes.

/** `bytes` with a custom section appended: offsets of everything before it do not move. */
export function appendCustomSection(bytes: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const body = Buffer.concat([leb128(nameBytes.length), nameBytes, payload]);
  return Buffer.concat([bytes, Buffer.from([0x00]), leb128(body.length), body]);
}

/** Unsigned LEB128, as section sizes and name lengths are written. */
function leb128(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}
