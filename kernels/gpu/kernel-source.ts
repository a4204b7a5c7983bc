// The first wall of the GPU sandbox: a gpu.js kernel's source is parsed with acorn, checked
// against a small typed subset of JavaScript, and the text gpu.js compiles is GENERATED from
// the checked tree by the printer below. gpu.js never sees the client's text: it reads parts of
// a kernel with its own regular expressions (the parameter list) and pastes them into
// `new Function`, so any text our parser read differently (an HTML-like comment, a comment in
// the parameter list, a unicode escape) would otherwise reach it as code.
//
// What the printer emits: `function (p0, p1) { ... }` with generated names for parameters (p*),
// locals (v*) and module constants (this.constants.c*), numbers printed by us, every compound
// expression parenthesised, and nothing else — printable ASCII only, no comments, no strings.
//
// The subset is typed so that no value but a number or boolean ever exists: array arguments can
// only be indexed down to a number (never added, compared or passed), locals are numbers or
// small vector literals, calls are Math.<function> only, and `this` is only
// this.thread.{x,y,z} / this.output.{x,y,z} / this.constants.<declared>. So even in gpu.js cpu
// mode, where the kernel runs as JavaScript, it cannot name, build or reach an object.
import { Parser, type Node as AcornNode } from "acorn";

/** Module errors (GpuModuleError) are raised by the caller's factory so that one error type crosses the module boundary. */
export type KernelSourceErrorFactory = (message: string) => Error;

export interface KernelArgSpec {
  name: string;
  /** 0 for a scalar argument; the number of dimensions for an array argument. */
  depth: number;
}

export interface CompiledKernelSource {
  /** The canonical text handed to gpu.js: generated from the checked syntax tree only. */
  source: string;
  /** Generated parameter names, in argument order (p0, p1, ...). */
  params: string[];
  /** Declared constant name → generated name (this.constants.c0, ...). */
  constants: Map<string, string>;
}

export const MAX_KERNEL_NESTING = 64;
export const MAX_VECTOR_LENGTH = 4;

const MATH_FUNCTIONS = new Set([
  "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "cos", "cosh", "exp", "expm1",
  "floor", "fround", "log", "log10", "log1p", "log2", "max", "min", "pow", "random", "round", "sign", "sin", "sinh",
  "sqrt", "tan", "tanh", "trunc",
]);
const MATH_CONSTANTS = new Set(["E", "LN10", "LN2", "LOG10E", "LOG2E", "PI", "SQRT1_2", "SQRT2"]);
const BINARY_OPERATORS = new Set(["+", "-", "*", "/", "%", "**", "==", "!=", "===", "!==", "<", "<=", ">", ">=", "<<", ">>", ">>>", "&", "|", "^"]);
const LOGICAL_OPERATORS = new Set(["&&", "||"]);
const UNARY_OPERATORS = new Set(["-", "+", "!", "~"]);
const ASSIGNMENT_OPERATORS = new Set(["=", "+=", "-=", "*=", "/=", "%="]);
const AXES = new Set(["x", "y", "z"]);
/** Names a kernel may not bind: globals the subset gives a fixed meaning, and names JS treats specially. */
const RESERVED = new Set(["Math", "Infinity", "NaN", "undefined", "arguments", "eval"]);

type AnyNode = AcornNode & Record<string, unknown>;
/** What an expression evaluates to: a number/boolean (0), or an array with that many dimensions. */
type Depth = number;

interface Binding {
  generated: string;
  depth: Depth;
  /** Vector locals ([x, y]) and array arguments are never assigned. */
  assignable: boolean;
}

/**
 * Checks a kernel source and returns the canonical text generated from it. Throws (through
 * `error`) with the offset and the reason for anything outside the subset.
 */
export function compileKernelSource(
  source: string,
  args: readonly KernelArgSpec[],
  constantNames: readonly string[],
  error: KernelSourceErrorFactory,
): CompiledKernelSource {
  checkCharacters(source, error);
  let program: AnyNode;
  try {
    // Wrapped in parentheses so that only one expression parses; the newline keeps the closing
    // parenthesis out of a trailing line comment (comments are refused anyway, below).
    program = Parser.parse(`(${source}\n)`, {
      ecmaVersion: 2020,
      sourceType: "script",
      allowHashBang: false,
      allowReserved: false,
      onComment: (_block: boolean, _text: string, start: number) => {
        throw error(`kernel source, offset ${Math.max(0, start - 1)}: comments are not allowed in gpu kernel source (\`distx kernel build\` removes them)`);
      },
    }) as unknown as AnyNode;
  } catch (err) {
    if (err instanceof Error && !(err instanceof SyntaxError) && !(err instanceof RangeError)) throw err;
    throw error(`kernel source does not parse: ${(err as Error).message}`);
  }
  const body = program.body as AnyNode[];
  const fn = body.length === 1 && body[0]!.type === "ExpressionStatement" ? (body[0]!.expression as AnyNode) : undefined;
  if (!fn || fn.type !== "FunctionExpression") throw error("kernel source must be exactly one `function (...) { ... }` expression");
  if (fn.async || fn.generator) throw error("kernel function must not be async or a generator");
  const c = new Checker(args, constantNames, error);
  const out = c.kernel(fn);
  // The generated text must be a fixed point of the same checker: what gpu.js reads is exactly
  // what we checked (a printer bug shows up here, not in gpu.js).
  if (!c.selfCheck) return out;
  const again = new Checker(
    args.map((a, i) => ({ name: out.params[i]!, depth: a.depth })),
    [...out.constants.values()],
    error,
    false,
  );
  const reparsed = Parser.parse(`(${out.source}\n)`, { ecmaVersion: 2020, sourceType: "script" }) as unknown as AnyNode;
  const second = again.kernel((reparsed.body as AnyNode[])[0]!.expression as AnyNode);
  if (second.source !== out.source) throw error("internal: the generated kernel text does not reproduce itself");
  return out;
}

/** Printable ASCII, tabs and newlines; no backslash (unicode escapes) and no backtick (template literals). */
function checkCharacters(source: string, error: KernelSourceErrorFactory): void {
  for (let i = 0; i < source.length; i++) {
    const code = source.charCodeAt(i);
    const ok = code === 9 || code === 10 || code === 13 || (code >= 0x20 && code <= 0x7e && code !== 0x5c && code !== 0x60);
    if (!ok) {
      const what = code === 0x5c ? "a backslash (escapes are not allowed)" : code === 0x60 ? "a backtick (template literals are not allowed)" : `character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
      throw error(`kernel source, offset ${i}: ${what}; kernel source may use only printable ASCII, tabs and newlines`);
    }
  }
}

// This file is longer than 350 lines because the checker and the printer are one walk over the
// tree: every node kind is printed by the same method that checked it. Split, a reader would have
// to hold two files to see that nothing reaches gpu.js unchecked.
class Checker {
  private readonly bindings = new Map<string, Binding>();
  private readonly constants = new Map<string, string>();
  private depth = 0;
  private locals = 0;

  constructor(
    private readonly args: readonly KernelArgSpec[],
    constantNames: readonly string[],
    private readonly error: KernelSourceErrorFactory,
    readonly selfCheck = true,
  ) {
    constantNames.forEach((n, i) => this.constants.set(n, `c${i}`));
  }

  private fail(node: AnyNode, why: string): never {
    // Offsets are into the client's source (the parse wrapped it in one parenthesis).
    throw this.error(`kernel source, offset ${Math.max(0, (node.start as number) - 1)}: ${why}`);
  }

  /** Guards every recursion: a deeply nested kernel is refused, not a stack overflow. */
  private nested<T>(node: AnyNode, f: () => T): T {
    if (++this.depth > MAX_KERNEL_NESTING) this.fail(node, `nesting deeper than ${MAX_KERNEL_NESTING} levels`);
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  kernel(fn: AnyNode): CompiledKernelSource {
    const params = (fn.params as AnyNode[]).map((p) => {
      if (p.type !== "Identifier") this.fail(p, "kernel parameters must be plain names (no defaults, destructuring or rest)");
      return p.name as string;
    });
    const names = this.args.map((a) => a.name);
    for (const n of names) if (RESERVED.has(n)) throw this.error(`argument name ${n} is reserved`);
    if (params.join(",") !== names.join(",")) {
      throw this.error(`kernel parameters (${params.join(", ")}) must match args (${names.join(", ")}) in order`);
    }
    const generatedParams = this.args.map((a, i) => {
      const generated = `p${i}`;
      this.bindings.set(a.name, { generated, depth: a.depth, assignable: a.depth === 0 });
      return generated;
    });
    const fnBody = fn.body as AnyNode;
    this.declareLocals(fnBody);
    const text = `function (${generatedParams.join(", ")}) ${this.block(fnBody, "")}`;
    return { source: text, params: generatedParams, constants: new Map(this.constants) };
  }

  /** Function-wide declarations first (gpu.js gives locals function scope), each renamed once. */
  private declareLocals(root: AnyNode): void {
    const visit = (node: unknown, level: number): void => {
      if (!node || typeof node !== "object") return;
      if (level > MAX_KERNEL_NESTING * 4) this.fail(root, `nesting deeper than ${MAX_KERNEL_NESTING} levels`);
      if (Array.isArray(node)) {
        for (const n of node) visit(n, level + 1);
        return;
      }
      const n = node as AnyNode;
      if (typeof n.type !== "string") return;
      if (n.type === "FunctionExpression" || n.type === "ArrowFunctionExpression" || n.type === "FunctionDeclaration") return; // refused later
      if (n.type === "VariableDeclarator") {
        const id = n.id as AnyNode;
        if (id.type !== "Identifier") this.fail(n, "destructuring is not supported");
        const name = id.name as string;
        if (RESERVED.has(name)) this.fail(n, `${name} cannot be declared in a kernel`);
        const init = n.init as AnyNode | null;
        const depth = init?.type === "ArrayExpression" ? 1 : 0;
        const prior = this.bindings.get(name);
        if (prior) {
          if (this.args.some((a) => a.name === name)) this.fail(n, `local ${name} redeclares a kernel argument`);
          if (prior.depth !== depth) this.fail(n, `local ${name} is declared both as a number and as a vector`);
        } else {
          this.bindings.set(name, { generated: `v${this.locals++}`, depth, assignable: depth === 0 });
        }
      }
      for (const [key, value] of Object.entries(n)) {
        if (key === "type" || key === "start" || key === "end" || key === "loc" || key === "range") continue;
        if (value && typeof value === "object") visit(value, level + 1);
      }
    };
    visit(root, 0);
  }

  // ───────── statements ─────────

  private block(node: AnyNode, indent: string): string {
    if (node.type !== "BlockStatement") this.fail(node, "expected a block");
    const inner = indent + "  ";
    const lines = (node.body as AnyNode[]).map((s) => inner + this.statement(s, inner));
    return lines.length === 0 ? "{}" : `{\n${lines.join("\n")}\n${indent}}`;
  }

  /** A statement as the body of if/for/while: blocks stay blocks, anything else goes on the same line. */
  private sub(node: AnyNode, indent: string): string {
    return node.type === "BlockStatement" ? this.block(node, indent) : this.statement(node, indent);
  }

  private statement(node: AnyNode, indent: string): string {
    return this.nested(node, () => {
      switch (node.type) {
        case "BlockStatement":
          return this.block(node, indent);
        case "EmptyStatement":
          return ";";
        case "ExpressionStatement":
          return `${this.expression(node.expression as AnyNode).text};`;
        case "VariableDeclaration":
          return `${this.declaration(node)};`;
        case "ReturnStatement": {
          const arg = node.argument as AnyNode | null;
          if (!arg) return "return;";
          if (arg.type === "ArrayExpression") return `return ${this.vector(arg)};`;
          return `return ${this.scalar(arg)};`;
        }
        case "IfStatement": {
          const test = this.scalar(node.test as AnyNode);
          const alt = node.alternate as AnyNode | null;
          const cons = node.consequent as AnyNode;
          // With an else branch the consequent is always braced: no dangling-else ambiguity.
          const consText = alt && cons.type !== "BlockStatement" ? `{\n${indent}  ${this.statement(cons, indent + "  ")}\n${indent}}` : this.sub(cons, indent);
          return alt ? `if (${test}) ${consText} else ${this.sub(alt, indent)}` : `if (${test}) ${consText}`;
        }
        case "ForStatement": {
          const init = node.init as AnyNode | null;
          const initText = !init ? "" : init.type === "VariableDeclaration" ? this.declaration(init) : this.expression(init).text;
          const test = node.test ? this.scalar(node.test as AnyNode) : "";
          const update = node.update ? this.expression(node.update as AnyNode).text : "";
          return `for (${initText}; ${test}; ${update}) ${this.sub(node.body as AnyNode, indent)}`;
        }
        case "WhileStatement":
          return `while (${this.scalar(node.test as AnyNode)}) ${this.sub(node.body as AnyNode, indent)}`;
        case "DoWhileStatement":
          return `do ${this.block(node.body as AnyNode, indent)} while (${this.scalar(node.test as AnyNode)});`;
        case "BreakStatement":
        case "ContinueStatement":
          if (node.label) this.fail(node, "labels are not allowed");
          return node.type === "BreakStatement" ? "break;" : "continue;";
        case "FunctionDeclaration":
          return this.fail(node, "nested functions are not allowed");
        default:
          return this.fail(node, `${node.type} is not allowed in a gpu kernel`);
      }
    });
  }

  private declaration(node: AnyNode): string {
    const kind = node.kind as string;
    if (kind !== "let" && kind !== "const" && kind !== "var") this.fail(node, `${kind} declarations are not allowed`);
    const parts = (node.declarations as AnyNode[]).map((d) => {
      const b = this.bindings.get((d.id as AnyNode).name as string)!;
      const init = d.init as AnyNode | null;
      if (!init) return b.generated;
      const value = init.type === "ArrayExpression" ? this.vector(init) : this.scalar(init);
      return `${b.generated} = ${value}`;
    });
    return `${kind} ${parts.join(", ")}`;
  }

  /** A gpu.js vector value [a, b(, c, d)]: only as a declared value or a return value. */
  private vector(node: AnyNode): string {
    const elements = node.elements as (AnyNode | null)[];
    if (elements.length < 2 || elements.length > MAX_VECTOR_LENGTH) this.fail(node, `vector literals have 2 to ${MAX_VECTOR_LENGTH} elements`);
    return `[${elements
      .map((e) => {
        if (!e) return this.fail(node, "holes are not allowed in vector literals");
        return this.scalar(e);
      })
      .join(", ")}]`;
  }

  // ───────── expressions ─────────

  private scalar(node: AnyNode): string {
    const r = this.expression(node);
    if (r.depth !== 0) this.fail(node, "an array is used as a number (index it down to one element)");
    return r.text;
  }

  private expression(node: AnyNode): { text: string; depth: Depth } {
    return this.nested(node, () => this.expressionInner(node));
  }

  private expressionInner(node: AnyNode): { text: string; depth: Depth } {
    const num = (text: string) => ({ text, depth: 0 });
    switch (node.type) {
      case "Literal": {
        const v = node.value;
        if (typeof v === "boolean") return num(v ? "true" : "false");
        if (typeof v !== "number" || typeof node.bigint === "string") return this.fail(node, "only number and boolean literals are allowed");
        return num(printNumber(v, () => this.fail(node, "number literals must be finite")));
      }
      case "Identifier": {
        const name = node.name as string;
        if (name === "Infinity" || name === "NaN") return num(name);
        if (name === "Math") return this.fail(node, "Math may only be used as Math.<name>");
        const b = this.bindings.get(name);
        if (!b) return this.fail(node, `unknown name ${name} (kernels may use only their arguments and locals)`);
        return { text: b.generated, depth: b.depth };
      }
      case "BinaryExpression": {
        const op = node.operator as string;
        if (!BINARY_OPERATORS.has(op)) return this.fail(node, `operator ${op} is not allowed`);
        return num(`(${this.scalar(node.left as AnyNode)} ${op} ${this.scalar(node.right as AnyNode)})`);
      }
      case "LogicalExpression": {
        const op = node.operator as string;
        if (!LOGICAL_OPERATORS.has(op)) return this.fail(node, `operator ${op} is not allowed`);
        return num(`(${this.scalar(node.left as AnyNode)} ${op} ${this.scalar(node.right as AnyNode)})`);
      }
      case "UnaryExpression": {
        const op = node.operator as string;
        if (!UNARY_OPERATORS.has(op)) return this.fail(node, `operator ${op} is not allowed`);
        return num(`(${op}${this.scalar(node.argument as AnyNode)})`);
      }
      case "UpdateExpression": {
        const target = this.target(node.argument as AnyNode);
        const op = node.operator as string;
        return num(node.prefix ? `(${op}${target})` : `(${target}${op})`);
      }
      case "AssignmentExpression": {
        const op = node.operator as string;
        if (!ASSIGNMENT_OPERATORS.has(op)) return this.fail(node, `operator ${op} is not allowed`);
        const target = this.target(node.left as AnyNode);
        return num(`(${target} ${op} ${this.scalar(node.right as AnyNode)})`);
      }
      case "ConditionalExpression":
        return num(`(${this.scalar(node.test as AnyNode)} ? ${this.scalar(node.consequent as AnyNode)} : ${this.scalar(node.alternate as AnyNode)})`);
      case "CallExpression": {
        const callee = node.callee as AnyNode;
        const ok =
          callee.type === "MemberExpression" &&
          !callee.computed &&
          !callee.optional &&
          !node.optional &&
          (callee.object as AnyNode).type === "Identifier" &&
          (callee.object as AnyNode).name === "Math" &&
          (callee.property as AnyNode).type === "Identifier" &&
          MATH_FUNCTIONS.has((callee.property as AnyNode).name as string);
        if (!ok) return this.fail(node, "only Math.* functions may be called");
        const args = (node.arguments as AnyNode[]).map((a) => (a.type === "SpreadElement" ? this.fail(a, "spread arguments are not allowed") : this.scalar(a)));
        return num(`Math.${(callee.property as AnyNode).name as string}(${args.join(", ")})`);
      }
      case "MemberExpression":
        return this.member(node);
      case "ThisExpression":
        return this.fail(node, "`this` may only be used as this.thread/output/constants");
      case "ArrayExpression":
        return this.fail(node, "array literals may only be returned or assigned to a new variable");
      case "FunctionExpression":
      case "ArrowFunctionExpression":
        return this.fail(node, "nested functions are not allowed");
      default:
        return this.fail(node, `${node.type} is not allowed in a gpu kernel`);
    }
  }

  /** The target of an assignment or ++/--: a numeric local or scalar argument, by name. */
  private target(node: AnyNode): string {
    if (node.type !== "Identifier") return this.fail(node, "only numeric locals and scalar arguments may be assigned");
    const b = this.bindings.get(node.name as string);
    if (!b) return this.fail(node, `unknown name ${node.name as string} (kernels may use only their arguments and locals)`);
    if (!b.assignable) return this.fail(node, `${node.name as string} is an array and cannot be assigned`);
    return b.generated;
  }

  private member(node: AnyNode): { text: string; depth: Depth } {
    if (node.optional) return this.fail(node, "optional chaining is not allowed");
    const obj = node.object as AnyNode;
    const prop = node.property as AnyNode;
    if (node.computed) {
      // Array indexing: a[i], a[i][j]; never on `this` or Math, and only on arrays.
      if (obj.type === "ThisExpression" || (obj.type === "Identifier" && obj.name === "Math")) return this.fail(node, "computed access on this/Math is not allowed");
      if (obj.type === "MemberExpression" && !obj.computed) return this.fail(node, "indexing is only allowed on arguments and locals");
      const target = this.expression(obj);
      const index = this.scalar(prop);
      if (target.depth === 0) this.fail(node, "only array arguments and vector locals may be indexed");
      return { text: `${target.text}[${index}]`, depth: target.depth - 1 };
    }
    if (prop.type !== "Identifier") return this.fail(node, "private names are not allowed");
    const name = prop.name as string;
    if (obj.type === "Identifier" && obj.name === "Math") {
      if (MATH_CONSTANTS.has(name)) return { text: `Math.${name}`, depth: 0 };
      if (MATH_FUNCTIONS.has(name)) return this.fail(node, `Math.${name} may only be called`);
      return this.fail(node, `Math.${name} is not allowed`);
    }
    if (obj.type === "ThisExpression") {
      if (!["thread", "output", "constants"].includes(name)) return this.fail(node, `this.${name} is not allowed`);
      return this.fail(node, `this.${name} must be followed by .<name>`);
    }
    if (obj.type === "MemberExpression" && !obj.computed && !obj.optional && (obj.object as AnyNode).type === "ThisExpression") {
      const groupNode = obj.property as AnyNode;
      const group = groupNode.name as string;
      if (group === "constants") {
        const generated = this.constants.get(name);
        if (!generated) return this.fail(node, `this.constants.${name} is not declared in the module's constants`);
        return { text: `this.constants.${generated}`, depth: 0 };
      }
      if (group === "thread" || group === "output") {
        if (!AXES.has(name)) return this.fail(node, `this.${group}.${name} is not allowed`);
        return { text: `this.${group}.${name}`, depth: 0 };
      }
      return this.fail(obj, `this.${group} is not allowed`);
    }
    return this.fail(node, `property access .${name} is not allowed`);
  }
}

/** Numbers as we print them: finite, in the shortest round-trip decimal form, never negative (unary minus is its own node). */
function printNumber(v: number, notFinite: () => never): string {
  if (!Number.isFinite(v) || v < 0) notFinite();
  const text = String(v);
  if (!/^\d+(\.\d+)?(e[+-]\d+)?$/.test(text)) notFinite();
  return text;
}
