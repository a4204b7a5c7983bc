// The admin HTTP server every daemon runs beside its gRPC port: /metrics (Prometheus text
// format), /healthz (the process is alive), /readyz (it can do its job) plus any extra routes
// a role adds (the scheduler's dashboard). Plain node:http: a handful of GET routes (and a POST action or two) needs no framework.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./logger.js";

export type AdminRoute = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>;

export interface AdminServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Readiness: a reason string when not ready, undefined when ready. */
  notReady: () => string | undefined;
  routes?: Record<string, AdminRoute>;
  /** Routes that change something: POST only (never a GET a link or an <img> could trigger). */
  postRoutes?: Record<string, AdminRoute>;
  log: Logger;
}

export class AdminServer {
  private readonly server: http.Server;
  address = "";

  constructor(private readonly options: AdminServerOptions) {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        options.log.error({ event: "admin_error", url: req.url, err: (err as Error).message }, "admin request failed");
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      });
    });
    // SSE streams stay open; they must not keep a stopping process alive.
    this.server.keepAliveTimeout = 5000;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin");
    const post = this.options.postRoutes?.[url.pathname];
    if (post) {
      if (req.method !== "POST") return void res.writeHead(405, { allow: "POST", "content-type": "text/plain" }).end("method not allowed: POST only\n");
      req.resume(); // the action is in the query; a body is not read
      return post(req, res, url);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    switch (url.pathname) {
      case "/metrics": {
        const body = await this.options.registry.metrics();
        res.writeHead(200, { "content-type": this.options.registry.contentType }).end(body);
        return;
      }
      case "/healthz":
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      case "/readyz": {
        const why = this.options.notReady();
        res.writeHead(why ? 503 : 200, { "content-type": "text/plain" }).end(why ? `not ready: ${why}\n` : "ready\n");
        return;
      }
    }
    const route = this.options.routes?.[url.pathname];
    if (route) return route(req, res, url);
    const extra = Object.keys(this.options.routes ?? {}).filter((r) => r !== "/");
    res.writeHead(404, { "content-type": "text/plain" }).end(`no route ${url.pathname}; try ${["/metrics", "/healthz", "/readyz", ...extra].join(", ")}\n`);
  }

  async start(): Promise<string> {
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`cannot listen for admin HTTP on ${host}:${port}: ${err.message}`));
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    const h = a.family === "IPv6" ? `[${a.address}]` : a.address;
    this.address = `${h}:${a.port}`;
    // Name only what this process serves: agents have no dashboard, and saying so sent operators to a 404.
    const served = ["/metrics", "/healthz", "/readyz", ...Object.keys(this.options.routes ?? {}).filter((r) => r.startsWith("/") && !r.startsWith("/api/") && r !== "/")];
    this.options.log.info({ event: "admin_listening", address: this.address, routes: served }, `admin HTTP (${served.join(", ")}) on http://${this.address}`);
    return this.address;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
