// Builds the browser client with esbuild.
//   node build.mjs            → ../src/wavry/web/static/ (served by `wavry host --web` and the gateway)
//   node build.mjs --tests    → dist-test/*.test.mjs (run with `node --test dist-test/`)
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outArg = args.indexOf("--outdir");
const outdir = outArg >= 0 ? args[outArg + 1] : join(here, "..", "src", "wavry", "web", "static");

if (args.includes("--tests")) {
  const tests = (await readdir(join(here, "test"))).filter((f) => f.endsWith(".test.ts"));
  await rm(join(here, "dist-test"), { recursive: true, force: true });
  await build({
    entryPoints: tests.map((f) => join(here, "test", f)),
    outdir: join(here, "dist-test"),
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    logLevel: "warning",
  });
} else {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: {
      app: join(here, "src", "app", "main.ts"),
      "audio-worklet": join(here, "src", "app", "audio-worklet.ts"),
      "net-worker": join(here, "src", "app", "net-worker.ts"),
    },
    outdir,
    bundle: true,
    format: "esm",
    target: ["chrome110", "safari16", "firefox115"],
    minify: true,
    sourcemap: true,
    legalComments: "linked",
    logLevel: "warning",
  });
  for (const f of ["index.html", "style.css"]) await copyFile(join(here, "src", f), join(outdir, f));
}
