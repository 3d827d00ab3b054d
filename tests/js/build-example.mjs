// Bundle the example React page for one React version:
//   node build-example.mjs 18|19 OUTDIR   ->  OUTDIR/index.html and OUTDIR/app.js
// React comes from tests/js's node_modules ("react-18", "react-dom-18" for 18), and
// the client from the installed @dagstream/client, as in an app.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const ALIASES = { 18: { react: "react-18", "react-dom": "react-dom-18" }, 19: {} };
const [version, out] = process.argv.slice(2);
if (!(version in ALIASES) || !out) {
  console.error("usage: node build-example.mjs 18|19 OUTDIR");
  process.exit(2);
}
mkdirSync(resolve(out), { recursive: true });
await build({
  entryPoints: [join(here, "example", "main.tsx")],
  bundle: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  alias: ALIASES[version],
  nodePaths: [join(here, "node_modules")],
  define: { "process.env.NODE_ENV": '"development"' }, // strict mode's double mount
  outfile: join(resolve(out), "app.js"),
  logLevel: "warning",
});
copyFileSync(join(here, "example", "index.html"), join(resolve(out), "index.html"));
