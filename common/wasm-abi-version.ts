// Reads the ABI version a kernel declares, from its bytes, without running any of its code: the
// scheduler must refuse a version the agents do not speak at RegisterKernel (else every task
// fails INVALID_KERNEL later), and it never instantiates untrusted modules. Every SDK's
// distx_abi_version() is a constant function, which compiles to `i32.const N [return] end`;
// that is the form the ABI requires (kernels/README.md, "ABI versions").

/** The constant `distx_abi_version` (or `exportName`) returns, or a reason it is not one. */
export function readAbiVersion(bytes: Uint8Array, exportName = "distx_abi_version"): { version: number } | { reason: string } {
  const r = new Reader(bytes);
  r.pos = 8;
  let importedFuncs = 0;
  let funcIndex: number | undefined;
  let code: { start: number; end: number } | undefined;
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > bytes.length) return { reason: "truncated section" };
    if (id === 2) {
      // imports: count the functions, which come first in the function index space
      for (let n = r.u32(); n > 0; n--) {
        r.skipName();
        r.skipName();
        const kind = r.byte();
        if (kind === 0) {
          r.u32();
          importedFuncs++;
        } else if (kind === 1) {
          r.byte();
          r.limits();
        } else if (kind === 2) r.limits();
        else if (kind === 3) r.pos += 2;
        else if (kind === 4) {
          r.byte();
          r.u32();
        } else return { reason: `unknown import kind ${kind}` };
      }
    } else if (id === 7) {
      for (let n = r.u32(); n > 0; n--) {
        const name = r.name();
        const kind = r.byte();
        const index = r.u32();
        if (kind === 0 && name === exportName) funcIndex = index;
      }
    } else if (id === 10) code = { start: r.pos, end };
    r.pos = end;
  }
  if (funcIndex === undefined) return { reason: `no exported function ${exportName}` };
  if (funcIndex < importedFuncs) return { reason: `${exportName} is an imported function` };
  if (!code) return { reason: "no code section" };
  r.pos = code.start;
  const count = r.u32();
  const wanted = funcIndex - importedFuncs;
  if (wanted >= count) return { reason: "function index past the code section" };
  for (let i = 0; i < wanted; i++) {
    const size = r.u32();
    r.pos += size;
  }
  const bodySize = r.u32();
  const bodyEnd = r.pos + bodySize;
  for (let n = r.u32(); n > 0; n--) {
    r.u32();
    r.byte();
  }
  // i32.const N, then `end`, or `return end`
  if (r.byte() !== 0x41) return { reason: `${exportName} does not return a constant` };
  const version = r.s32();
  const rest = Array.from(bytes.subarray(r.pos, bodyEnd));
  if (!(rest.length === 1 && rest[0] === 0x0b) && !(rest.length === 2 && rest[0] === 0x0f && rest[1] === 0x0b)) {
    return { reason: `${exportName} does not return a constant` };
  }
  return { version };
}

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  byte(): number {
    if (this.pos >= this.b.length) throw new RangeError("truncated module");
    return this.b[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const x = this.byte();
      result += (x & 0x7f) * 2 ** shift;
      if (!(x & 0x80)) return result;
      shift += 7;
      if (shift > 35) throw new RangeError("bad LEB128");
    }
  }
  s32(): number {
    let result = 0;
    let shift = 0;
    let x: number;
    do {
      x = this.byte();
      result |= (x & 0x7f) << shift;
      shift += 7;
    } while (x & 0x80 && shift < 35);
    if (shift < 32 && x & 0x40) result |= -1 << shift;
    return result | 0;
  }
  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
  }
  name(): string {
    const len = this.u32();
    const s = Buffer.from(this.b.subarray(this.pos, this.pos + len)).toString("utf8");
    this.pos += len;
    return s;
  }
  skipName(): void {
    const len = this.u32();
    this.pos += len;
  }
}
