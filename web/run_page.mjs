// Drives the FeatherFace page in headless Chromium (Debian's chromium, through playwright-core):
//   node run_page.mjs URL [--threads N] [--repeat N] [--options JSON] [--anonymize OUT_DIR] [--screenshot PNG] [--ui FILE] IMAGE...
// Each IMAGE is handed to window.featherface.detect as a data: URL (with --options, e.g.
// '{"refineLandmarks": false}'). Prints one JSON object:
// {threads, isolated, load_ms, results: [{image, faces, ms: [...]}], anonymized: [...], ui}.
// --ui FILE (repeatable): the page's controls as a user works them: the first IMAGE and each FILE
// opened at once, captions in both modes, a threshold out of range, the webcam (a fake one) on and off.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TYPES = { ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".bmp": "image/bmp" };

const args = process.argv.slice(2);
const url = args.shift();
const opts = { threads: undefined, repeat: 1, anonymize: null, screenshot: null, ui: [], options: {} };
const images = [];
while (args.length) {
  const a = args.shift();
  if (a === "--threads") opts.threads = Number(args.shift());
  else if (a === "--repeat") opts.repeat = Number(args.shift());
  else if (a === "--anonymize") opts.anonymize = args.shift();
  else if (a === "--screenshot") opts.screenshot = args.shift();
  else if (a === "--ui") opts.ui.push(args.shift());
  else if (a === "--options") opts.options = JSON.parse(args.shift());
  else images.push(a);
}

// --ui: a fake webcam, allowed without a prompt
const FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: [...CHROMIUM_ARGS, ...(opts.ui.length ? FAKE_CAMERA : [])],
  headless: true,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(opts.threads ? `${url}?threads=${opts.threads}` : url);
  const t0 = Date.now();
  const loaded = await page.evaluate(() => window.featherface.load()
    .then((m) => ({ threads: m.threads, model: m.model, isolated: self.crossOriginIsolated })));
  const load_ms = Date.now() - t0;
  const results = [];
  const anonymized = [];
  for (const image of images) {
    const dataUrl = `data:${TYPES[extname(image).toLowerCase()] || "image/jpeg"};base64,${readFileSync(image).toString("base64")}`;
    const r = await page.evaluate(async ({ dataUrl, repeat, options }) => {
      const ms = [];
      let faces;
      for (let i = 0; i < repeat; i++) {
        const t = performance.now();
        faces = await window.featherface.detect(dataUrl, options);
        ms.push(performance.now() - t);
      }
      return { faces, ms };
    }, { dataUrl, repeat: opts.repeat, options: opts.options });
    results.push({ image, ...r });
    if (opts.anonymize) {
      mkdirSync(opts.anonymize, { recursive: true });
      // the faces anonymize masks (its default threshold), then the masked image as a PNG Blob
      const { faces, b64 } = await page.evaluate(async (dataUrl) => {
        const canvas = await window.featherface.anonymize(dataUrl);
        const blob = await window.featherface.anonymize(dataUrl, { output: "blob", type: "image/png", faces: canvas.faces });
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let s = "";
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return { faces: canvas.faces, b64: btoa(s) };
      }, dataUrl);
      const out = join(opts.anonymize, basename(image, extname(image)) + ".png");
      writeFileSync(out, Buffer.from(b64, "base64"));
      anonymized.push({ image, path: out, faces });
    }
  }
  if (opts.screenshot && images.length) {
    // the page itself, as a user sees it, with the first photo opened through its file input
    await page.setInputFiles("#files", images[0]);
    await page.waitForFunction(() => document.querySelector("#results figcaption") !== null, null, { timeout: 60000 });
    await page.screenshot({ path: opts.screenshot, fullPage: false });
  }
  let ui = null;
  if (opts.ui.length && images.length) {
    const status = () => page.textContent("#status");
    const captions = () => page.$$eval("#results figcaption", (els) => els.map((e) => e.textContent));
    const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: 60000 });
    ui = {};
    await page.setInputFiles("#files", [images[0], ...opts.ui]);
    await until(() => /opened/.test(document.querySelector("#status").textContent));
    ui.opened = { status: await status(), captions: await captions() };
    await page.selectOption("#mode", "detect");
    await until(() => /face\(s\)/.test(document.querySelector("#results figcaption")?.textContent));
    ui.detect = await captions();
    await page.fill("#threshold", "1.5");
    await page.dispatchEvent("#threshold", "change");
    await until(() => /threshold/.test(document.querySelector("#status").textContent));
    ui.badThreshold = { status: await status(), captions: await captions() };
    await page.fill("#threshold", "0.9");
    await page.dispatchEvent("#threshold", "change");
    await until(() => document.querySelector("#status").textContent === "updated");
    ui.goodThreshold = { status: await status(), captions: await captions() };
    await page.click("#camera");
    await until(() => document.querySelector("#camera").textContent !== "Webcam");
    ui.cameraOn = { button: await page.textContent("#camera"), status: await status() };
    await page.click("#camera");
    await until(() => document.querySelector("#camera").textContent === "Webcam");
    ui.cameraOff = { button: await page.textContent("#camera"), status: await status() };
  }
  console.log(JSON.stringify({ ...loaded, load_ms, results, anonymized, errors, ui }));
} finally {
  await browser.close();
}
