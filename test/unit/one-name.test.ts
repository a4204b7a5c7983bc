// One name per concept: no two modules of the shipped code export a type, interface, class or
// enum under the same name (two AlertEvents and two TaskQueues meant different things).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const SHIPPED = ["agent", "scheduler", "common", "client", "cli"];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [full] : [];
  });
}

it("no exported type name is declared in two modules", () => {
  const where = new Map<string, string[]>();
  for (const file of SHIPPED.flatMap((d) => sources(path.join(ROOT, d)))) {
    for (const m of readFileSync(file, "utf8").matchAll(/^export (?:declare )?(?:abstract )?(?:interface|class|type|enum) ([A-Za-z0-9_]+)/gm)) {
      const name = m[1]!;
      where.set(name, [...(where.get(name) ?? []), path.relative(ROOT, file)]);
    }
  }
  const twice = [...where].filter(([, files]) => files.length > 1).map(([name, files]) => `${name}: ${files.join(", ")}`);
  expect(twice).toEqual([]);
});
