// Builds the web app and the creator studio into server/web/dist/ with esbuild: ES modules split per page (the player's
// libraries load only on an episode page), minified, every file named by a hash of its content, and
// dist/manifest.json naming the entry files (logical name -> hashed name) for the server.
// Run by `npm run build` (./run demo, ./run serve and ./run tests do it after `npm ci`).
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const dist = resolve(here, "../dist");

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const result = await build({
  entryPoints: {
    app: join(here, "app.js"), "app-style": join(here, "app.css"),
    studio: join(here, "studio.js"), "studio-style": join(here, "studio.css"),
  },
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: ["chrome109", "firefox115", "safari15.4"],
  outdir: dist,
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
});

const manifest = {};
for (const [path, output] of Object.entries(result.metafile.outputs)) {
  const entry = output.entryPoint && basename(output.entryPoint);
  if (["app.js", "app.css", "studio.js", "studio.css"].includes(entry)) manifest[entry] = basename(path);
}

// hls.js runs its transmuxer and decrypter in a worker: served from this origin as a file of ours
// (worker-src 'self'), not made from a blob: URL, so the pages' CSP needs no blob: workers.
const worker = join(root, "node_modules/hls.js/dist/hls.worker.js");
const hash = createHash("sha256").update(readFileSync(worker)).digest("hex").slice(0, 8).toUpperCase();
manifest["hls.worker.js"] = `hls.worker-${hash}.js`;
copyFileSync(worker, join(dist, manifest["hls.worker.js"]));

writeFileSync(join(dist, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
const sizes = Object.entries(result.metafile.outputs).map(([p, o]) => `${basename(p)} ${(o.bytes / 1024).toFixed(1)} KiB`);
console.log(`web app built into ${dist}: ${sizes.join(", ")}`);
