// The agent's per-worker input ring: regions never overlap while held, free from the front in
// reply order, wrap around, and refuse (so the pool packs the input instead) when full.
import { describe, expect, it } from "vitest";
import { InputRing, type RingRegion } from "../../agent/pool/input-ring.js";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const overlaps = (a: RingRegion, b: RingRegion) => a.start < b.end && b.start < a.end;

describe("input ring", () => {
  it("copies each input into its own region of one SharedArrayBuffer", () => {
    const ring = new InputRing(100);
    const a = ring.put(bytes(30, 1))!;
    const b = ring.put(bytes(30, 2))!;
    expect(ring.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(overlaps(a, b)).toBe(false);
    const view = new Uint8Array(ring.buffer!);
    expect([...view.subarray(a.start, a.end)].every((x) => x === 1)).toBe(true);
    expect([...view.subarray(b.start, b.end)].every((x) => x === 2)).toBe(true);
  });

  it("refuses what does not fit while regions are held, and takes it once they are released", () => {
    const ring = new InputRing(100);
    const a = ring.put(bytes(40, 1))!;
    const b = ring.put(bytes(40, 2))!;
    expect(ring.put(bytes(40, 3))).toBeUndefined();
    ring.release(a);
    // Wraps to the start, before b: the 40 bytes a held.
    const c = ring.put(bytes(40, 3))!;
    expect(c.start).toBe(0);
    expect(overlaps(c, b)).toBe(false);
    expect(ring.put(bytes(1, 4))).toBeUndefined(); // 80 of 100 held, but no gap is free: 40..80 is b, 0..40 is c, 80..100 lies past the wrap
    ring.release(b);
    expect(ring.put(bytes(60, 5))!.start).toBe(40);
  });

  it("frees from the front only: a region released out of order stays held until those before it are", () => {
    const ring = new InputRing(90);
    const a = ring.put(bytes(30, 1))!;
    const b = ring.put(bytes(30, 2))!;
    ring.put(bytes(30, 3));
    ring.release(b);
    expect(ring.put(bytes(30, 4))).toBeUndefined(); // b's bytes are behind a, still held
    ring.release(a);
    expect(ring.put(bytes(60, 4))!.start).toBe(0);
  });

  it("never hands out overlapping regions over many wraps (a random run against a model)", () => {
    const ring = new InputRing(1000);
    const held: { region: RingRegion; fill: number }[] = [];
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 5000; i++) {
      if (held.length > 0 && rand(3) === 0) {
        ring.release(held.shift()!.region);
        continue;
      }
      const fill = 1 + (i % 250);
      const region = ring.put(bytes(1 + rand(300), fill));
      if (!region) continue;
      for (const h of held) expect(overlaps(h.region, region)).toBe(false);
      held.push({ region, fill });
      // Every held region still reads what was put there.
      const view = new Uint8Array(ring.buffer!);
      for (const h of held) expect(view.subarray(h.region.start, h.region.end).every((x) => x === h.fill)).toBe(true);
    }
  });

  it("starts every region at a multiple of 8 and copies an input that sits at any offset", () => {
    const ring = new InputRing(1000);
    // Views at every alignment of one buffer, as inputs decoded from one session message are.
    const source = new Uint8Array(400).map((_, i) => (i * 7 + 3) & 0xff);
    for (let off = 0; off < 16; off++) {
      const input = source.subarray(off, off + 21 + off);
      const region = ring.put(input)!;
      expect(region.start % 8).toBe(0);
      expect([...new Uint8Array(ring.buffer!, region.start, input.byteLength)]).toEqual([...input]);
      ring.release(region);
    }
  });

  it("takes no empty input and none larger than the ring", () => {
    const ring = new InputRing(100);
    expect(ring.put(new Uint8Array(0))).toBeUndefined();
    expect(ring.put(bytes(101, 1))).toBeUndefined();
    expect(ring.buffer).toBeUndefined(); // nothing allocated until an input goes in
  });
});
