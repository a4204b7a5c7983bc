// The bootstrap admin token: the first API token of a cluster, so that `distx up`, the demo and
// a fresh `distx scheduler` can be used at once. Kept in <dataDir>/admin.token (0600), where
// the CLI and the typed client look for it when no other token is given.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Logger } from "../../common/logger.js";
import { DEFAULT_TENANT } from "./principal.js";
import { hashSecret, issueToken, tokenId, TokenError, verifyToken, type TokenStore } from "./tokens.js";

export const adminTokenFile = (dataDir: string): string => path.join(dataDir, "admin.token");

async function readToken(file: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(file, "utf8")).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Makes sure <dataDir>/admin.token holds an admin token this store accepts:
 *  - valid there: kept;
 *  - revoked, expired or wrong: replaced by a new one;
 *  - unknown to the store (a fresh Redis, or another scheduler sharing this data dir wrote it):
 *    adopted, i.e. recorded in the store as it is. Whoever can write the data dir can already
 *    write tokens.json, so this trusts nobody new.
 *  - missing: issued and written with O_EXCL, so two schedulers starting together end with one.
 */
export async function ensureAdminToken(tokens: TokenStore, dataDir: string, log: Logger): Promise<string> {
  const file = adminTokenFile(dataDir);
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    const text = await readToken(file);
    if (text !== undefined) {
      const id = tokenId(text);
      if (id && text.startsWith("dxa_")) {
        const known = await tokens.get(id);
        if (!known) {
          await tokens.put({
            id,
            kind: "api",
            role: "admin",
            tenant: DEFAULT_TENANT,
            description: "bootstrap admin token (adopted from admin.token)",
            createdAtMs: Date.now(),
            secretHash: hashSecret(text.slice(`dxa_${id}_`.length)),
            last4: text.slice(-4),
          });
          log.info({ event: "admin_token_adopted", tokenId: id, file }, `using the admin token in ${file}`);
          return file;
        }
        try {
          const rec = await verifyToken(tokens, text, "api");
          if (rec.role === "admin") return file;
        } catch (err) {
          if (!(err instanceof TokenError)) throw err;
        }
      }
      // Unusable: replace it atomically.
      const { token, record } = await issueToken(tokens, { kind: "api", role: "admin", tenant: DEFAULT_TENANT, description: "bootstrap admin token" });
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, token + "\n", { mode: 0o600 });
      await fs.rename(tmp, file);
      log.warn({ event: "admin_token_replaced", tokenId: record.id, file }, `the admin token in ${file} was not valid here (revoked, expired or foreign); wrote a new one`);
      return file;
    }
    const { token, record } = await issueToken(tokens, { kind: "api", role: "admin", tenant: DEFAULT_TENANT, description: "bootstrap admin token" });
    try {
      await fs.writeFile(file, token + "\n", { mode: 0o600, flag: "wx" });
      log.info({ event: "admin_token_created", tokenId: record.id, file }, `wrote the bootstrap admin token to ${file}`);
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // Another scheduler wrote one first: drop ours, adopt theirs.
      await tokens.revoke(record.id, Date.now());
    }
  }
  throw new Error(`could not settle the admin token in ${file}`);
}
