// Who is calling. Every RPC is authenticated into one Principal before a handler runs:
// clients by an API token (gRPC metadata `authorization: Bearer <token>`), agents by the node
// certificate they present in mutual TLS. `--insecure` clusters have one principal for everyone.

/** Client roles, in rising power: each role may do everything the ones before it may. */
export const ROLES = ["read", "submit", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Jobs, results and kernels belong to a tenant; a token sees only its own tenant's (admin: all). */
export const DEFAULT_TENANT = "default";
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export type Principal =
  | { readonly kind: "client"; readonly tokenId: string; readonly role: Role; readonly tenant: string }
  /**
   * `certDer`: the certificate presented (its key seals the node's Kafka assignments);
   * `certNotAfterMs`: when it expires (a session it opened ends then: agent-service.ts).
   */
  | { readonly kind: "node"; readonly nodeId: string; readonly certSerial: string; readonly certDer?: Buffer; readonly certNotAfterMs?: number }
  /** A cluster started with --insecure: no identity at all, everything allowed, as in tenant "default". */
  | { readonly kind: "insecure" };

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
