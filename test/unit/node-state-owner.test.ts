// One owner for node state: the registry (scheduler/registry.ts) is the only module that writes
// a NodeEntry field, including the fields it has as a PlacementNode. Placement decides where
// tasks go; the registry counts them (addTask). This scans every file in scheduler/ with the
// TypeScript type checker, so a write through any name (node, n, best, a generic N) is found.
//
// The one allowed writer outside registry.ts is countPlacedOnViews (placement/constraints.ts),
// which counts placements on a simulator's or a test's own node views; the second test checks
// that nothing in scheduler/ outside placement/ reaches it (or the placeBatch calls that use it).
import { readdirSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../common/paths.js";

const root = repoRoot();
const schedulerDir = path.join(root, "scheduler");
const OWNER = path.join(schedulerDir, "registry.ts");
const OWNED_INTERFACES = new Set(["NodeEntry", "PlacementNode"]);
const VIEW_COUNTER = "countPlacedOnViews";
/** Methods that change the collection a field holds (node.tasks.add(…) writes node.tasks). */
const MUTATING_METHODS = new Set(["add", "delete", "clear", "set", "push", "pop", "shift", "unshift", "splice"]);

function schedulerFiles(dir = schedulerDir): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...schedulerFiles(p));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function program(files: string[]): ts.Program {
  const configPath = path.join(root, "tsconfig.json");
  const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  return ts.createProgram(files, { ...parsed.options, noEmit: true });
}

/** Whether the property an access names is declared by NodeEntry or PlacementNode. */
function isOwnedField(checker: ts.TypeChecker, access: ts.PropertyAccessExpression): boolean {
  const symbol = checker.getSymbolAtLocation(access.name);
  for (const decl of symbol?.declarations ?? []) {
    const parent = decl.parent;
    if (ts.isInterfaceDeclaration(parent) && OWNED_INTERFACES.has(parent.name.text)) return true;
  }
  return false;
}

function enclosingFunctionName(node: ts.Node): string | undefined {
  for (let n: ts.Node | undefined = node.parent; n; n = n.parent) {
    if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name) return n.name.getText();
  }
  return undefined;
}

interface Write {
  file: string;
  line: number;
  text: string;
  fn: string | undefined;
}

/** Every write to a NodeEntry / PlacementNode field in the given files. */
function ownedFieldWrites(files: string[]): Write[] {
  const prog = program(files);
  const checker = prog.getTypeChecker();
  const writes: Write[] = [];
  for (const file of files) {
    const sf = prog.getSourceFile(file);
    if (!sf) throw new Error(`not in the program: ${file}`);
    const record = (target: ts.Node, whole: ts.Node) => {
      if (!ts.isPropertyAccessExpression(target) || !isOwnedField(checker, target)) return;
      const { line } = sf.getLineAndCharacterOfPosition(whole.getStart(sf));
      writes.push({ file: path.relative(root, file), line: line + 1, text: whole.getText(sf), fn: enclosingFunctionName(whole) });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isBinaryExpression(node) && node.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && node.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
        record(node.left, node);
      } else if ((ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) && (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken)) {
        record(node.operand, node);
      } else if (ts.isDeleteExpression(node)) {
        record(node.expression, node);
      } else if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && MUTATING_METHODS.has(node.expression.name.text)) {
        record(node.expression.expression, node);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return writes;
}

describe("node state has one owner", () => {
  it("no file in scheduler/ but registry.ts writes a NodeEntry field", () => {
    const writes = ownedFieldWrites(schedulerFiles());
    // The scan must see the registry's own writes, or it is not looking at all.
    expect(writes.some((w) => w.file === path.relative(root, OWNER) && w.text.includes("assigned"))).toBe(true);
    const foreign = writes.filter((w) => w.file !== path.relative(root, OWNER) && w.fn !== VIEW_COUNTER);
    expect(foreign.map((w) => `${w.file}:${w.line}: ${w.text}`)).toEqual([]);
  }, 120_000);

  it("the scheduler outside placement/ never counts placements on nodes itself (no placeBatch, no countPlacedOnViews)", () => {
    const outside = schedulerFiles().filter((f) => !f.startsWith(path.join(schedulerDir, "placement") + path.sep));
    const calls: string[] = [];
    for (const file of outside) {
      const sf = ts.createSourceFile(file, ts.sys.readFile(file) ?? "", ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (ts.isCallExpression(node)) {
          const callee = node.expression;
          const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : "";
          if (name === "placeBatch" || name === VIEW_COUNTER) calls.push(`${path.relative(root, file)}: ${node.getText(sf)}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    expect(calls).toEqual([]);
  });
});
