// Placement fixtures shared by the placement unit tests.
import type { ResourceNeeds } from "../../scheduler/model.js";
import type { PlacementNode } from "../../scheduler/placement/index.js";

/** A ready WASM node with 12 slots at speed 1; `over` changes any field. */
export const placementNode = (id: string, over: Partial<PlacementNode> = {}): PlacementNode => ({
  id,
  ready: true,
  logicalCores: 8,
  memoryBytes: 16 * 2 ** 30,
  gpuCount: 0,
  kernelKinds: new Set(["KERNEL_KIND_WASM"]),
  labels: {},
  capacity: 12,
  assigned: 0,
  speed: 1,
  ...over,
});

export const wasmNeeds = (over: Partial<ResourceNeeds> = {}): ResourceNeeds => ({
  cores: 0,
  memoryBytes: 0,
  gpu: false,
  nodeSelector: {},
  kind: "KERNEL_KIND_WASM",
  ...over,
});
