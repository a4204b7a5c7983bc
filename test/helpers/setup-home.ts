// Every test file gets a DISTX_HOME of its own: `distx up`, and schedulers and agents started
// without --data-dir, keep their CA, tokens and client profile there. One shared folder would let
// two files' schedulers create two CAs in it at once; the user's ~/.distx is never touched.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

process.env.DISTX_HOME = mkdtempSync(path.join(os.tmpdir(), "distx-test-home-"));
