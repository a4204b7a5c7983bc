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

/** True when the request may see the dashboard; otherwise false, and the refusal was already sent. */
export function dashboardGate(tokens: TokenStore) {
  return async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> => {
    const { token, fromQuery } = presented(req, url);
    if (!token) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end("the dashboard needs an API token: open /dashboard?token=<token> or send Authorization: Bearer <token>\n");
      return false;
    }
    try {
      // The dashboard shows every tenant's jobs and every node: admin only.
      const record = await verifyToken(tokens, token, "api");
      if (record.role !== "admin") {
        res.writeHead(403, { "content-type": "text/plain" }).end(`token ${record.id} has role ${record.role}; the dashboard shows the whole cluster and needs an admin token\n`);
        return false;
      }
    } catch (err) {
      res.writeHead(401, { "content-type": "text/plain" }).end(`token refused: ${err instanceof TokenError ? err.message : "error"}\n`);
      return false;
    }
    if (fromQuery) res.setHeader("set-cookie", `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
    return true;
  };
}
