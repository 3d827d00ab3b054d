// Type-check the client's JavaScript (strict, through its JSDoc) and emit its
// declarations: one .d.ts for each of its .js modules, from the modules alone.
//
//   node build-types.mjs          check, and write the .d.ts files beside the modules
//   node build-types.mjs OUTDIR   check, and write them to OUTDIR instead (the tests compare)
//
// The modules are checked from a copy without their .d.ts files: beside them, the
// committed declarations would stand in for the code they are made from.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const client = resolve(here, "../../dagstream_app/static/dagstream_app/client");
const MODULES = readdirSync(client).filter((name) => name.endsWith(".js"));
const work = join(here, "build", "types");
const outDir = process.argv[2] ? resolve(process.argv[2]) : client;

rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, "src"), { recursive: true });
for (const name of [...MODULES, "protocol.d.ts"])
  cpSync(join(client, name), join(work, "src", name));
const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
const args = ["-p", join(here, "tsconfig.client.json"), "--rootDir", join(work, "src")];
try {
  execFileSync(process.execPath, [tsc, ...args, "--outDir", join(work, "out")], {
    stdio: "inherit",
  });
} catch {
  process.exit(1); // tsc printed the errors
}
mkdirSync(outDir, { recursive: true });
for (const name of readdirSync(join(work, "out")))
  cpSync(join(work, "out", name), join(outDir, name));
