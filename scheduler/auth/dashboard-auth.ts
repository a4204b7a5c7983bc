// The dashboard off loopback needs an admin API token (it shows every tenant's jobs and every node). A browser brings it
// once as /dashboard?token=…, which sets an HttpOnly, SameSite=Strict cookie for the page's own
// requests (/api/state, /api/events); tools send `Authorization: Bearer …`. On loopback only
// local users reach it, as before. /metrics and the health probes stay open for scrapers.
import type http from "node:http";
import { TokenError, verifyToken, type TokenStore } from "./tokens.js";

const COOKIE = "distx_dashboard";

export const isLoopbackHost = (host: string): boolean => /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/.test(host);

function presented(req: http.IncomingMessage, url: URL): { token?: string; fromQuery: boolean } {
  const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
  if (auth) return { token: auth, fromQuery: false };
  const q = url.searchParams.get("token");
  if (q) return { token: q, fromQuery: true };
  const cookie = (req.headers.cookie ?? "").split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`));
  return { token: cookie?.slice(COOKIE.length + 1), fromQuery: false };
}

/** Whether `token` is a live admin API token; a refusal (401 unknown/expired/revoked, 403 another role) is sent otherwise. */
async function requireAdmin(tokens: TokenStore, token: string, res: http.ServerResponse, why: string): Promise<boolean> {
  try {
    const record = await verifyToken(tokens, token, "api");
    if (record.role === "admin") return true;
    res.writeHead(403, { "content-type": "text/plain" }).end(`token ${record.id} has role ${record.role}; ${why}\n`);
  } catch (err) {
    res.writeHead(401, { "content-type": "text/plain" }).end(`token refused: ${err instanceof TokenError ? err.message : "error"}\n`);
  }
  return false;
}

/** True when the request may see the dashboard; otherwise false, and the refusal was already sent. */
export function dashboardGate(tokens: TokenStore) {
  return async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> => {
    const { token, fromQuery } = presented(req, url);
    if (!token) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end("the dashboard needs an API token: open /dashboard?token=<token> or send Authorization: Bearer <token>\n");
      return false;
    }
    // The dashboard shows every tenant's jobs and every node: admin only.
    if (!(await requireAdmin(tokens, token, res, "the dashboard shows the whole cluster and needs an admin token"))) return false;
    if (fromQuery) res.setHeader("set-cookie", `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
    return true;
  };
}

/**
 * The gate of the dashboard's actions (drain a node), on every admin host, loopback included:
 * the same rule as the admin RPCs (policy.ts: an admin API token). The token must come in the
 * Authorization header, never from the cookie or the query, so another site cannot make a
 * browser send it (CSRF): a cross-origin page cannot set that header without a CORS preflight,
 * which this server never grants. With --insecure there are no tokens (as for the RPCs) and any
 * caller may act, but the request must still carry the dashboard's own header for the same reason.
 * True when the request may act; otherwise the refusal was already sent.
 */
export function dashboardActionGate(tokens: TokenStore | undefined) {
  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> => {
    if (!tokens) {
      if (req.headers["x-distx-dashboard"] === "1") return true;
      res.writeHead(403, { "content-type": "text/plain" }).end("a dashboard action needs the X-Distx-Dashboard: 1 header\n");
      return false;
    }
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!token) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end("a dashboard action needs an admin API token in the Authorization header (a cookie is not enough)\n");
      return false;
    }
    return requireAdmin(tokens, token, res, "this action needs an admin token");
  };
}
