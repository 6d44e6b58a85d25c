// Copies the pinned onnxruntime-web files the page needs into featherface/web/vendor/: the
// WebAssembly-only ES-module bundle and its SIMD+threads binary, stored gzip-compressed (the
// server sends it with Content-Encoding: gzip; `featherface web --write` unpacks it).
// Run after `npm ci`: `npm run vendor`. VERSION.json records the version and the sha256 of each
// file as npm shipped it, which the Python tests check against package-lock.json.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules", "onnxruntime-web", "dist");
const out = join(here, "..", "featherface", "web", "vendor");
const version = JSON.parse(readFileSync(join(here, "node_modules", "onnxruntime-web", "package.json"))).version;
const FILES = ["ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"];

mkdirSync(out, { recursive: true });
const files = {};
for (const name of FILES) {
  const data = readFileSync(join(dist, name));
  files[name] = createHash("sha256").update(data).digest("hex");
  if (name.endsWith(".wasm")) {
    // mtime 0 in the gzip header: the same input always gives the same bytes
    writeFileSync(join(out, name + ".gz"), gzipSync(data, { level: 9 }));
  } else {
    writeFileSync(join(out, name), data);
  }
}
writeFileSync(join(out, "VERSION.json"), JSON.stringify({ package: "onnxruntime-web", version, files }, null, 2) + "\n");
console.log(`vendored onnxruntime-web ${version} into ${out}`);
