// Kept for kernels written against the old layout (`import ... from "../distx"`): the SDK is now
// the package's own `distributex/kernel` (kernel/index.ts), which new kernels import.
export * from "../../kernel/index";
