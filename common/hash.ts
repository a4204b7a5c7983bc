import { createHash } from "node:crypto";

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export const isKernelId = (id: string): boolean => /^[0-9a-f]{64}$/.test(id);
