// The page's pure functions (featherface/web/featherface.js) against vectors the Python package
// wrote (tests/apps/test_page_functions.py sets FEATHERFACE_VECTORS): resize, priors, decoding,
// NMS, box voting, detection passes, mask geometry and the landmarks' second look, without a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const page = createRequire(import.meta.url)("../../featherface/web/featherface.js");
const V = JSON.parse(readFileSync(process.env.FEATHERFACE_VECTORS, "utf8"));

function close(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol) assert.fail(`${what}[${i}]: ${actual[i]} != ${expected[i]} (tol ${tol})`);
  }
}

test("inputSize and toTensorData: the resize and mean subtraction of preprocess", () => {
  // The same sample positions and weights; the package rounds in Pillow's fixed point and the page
  // in floating point, so a pixel may differ by one grey level (OpenCV's own fixed point differs
  // from both by as much). A wrong sample position or channel order would differ by far more.
  for (const c of V.resize) {
    const [nh, nw] = page.inputSize(c.h, c.w, c.longSide);
    assert.deepEqual([nh, nw], c.size);
    const t = page.toTensorData(Uint8ClampedArray.from(c.rgba), c.h, c.w, nh, nw, V.mean);
    close(t, c.tensor, c.size[0] === c.h && c.size[1] === c.w ? 1e-4 : 1 + 1e-4, "tensor");
    const meanDiff = t.reduce((s, v, i) => s + Math.abs(v - c.tensor[i]), 0) / t.length;
    assert.ok(meanDiff < 0.6, `mean difference ${meanDiff}`);
  }
});

test("priors: pixel_priors", () => {
  for (const c of V.priors) close(page.priors(c.h, c.w, V.anchors), c.priors, 1e-4, `priors ${c.h}x${c.w}`);
});

test("postprocess: postprocess_image (threshold, top-k, decoding, NMS, voting, clipping)", () => {
  for (const c of V.postprocess) {
    const faces = page.postprocess(c.loc, c.conf, c.landms, c.nh, c.nw, c.scale[0], c.scale[1], c.cfg, V.anchors);
    assert.equal(faces.length, c.boxes.length, `voting ${c.cfg.boxVoting}: number of faces`);
    close(faces.flatMap((f) => f.box), c.boxes.flat(), 1e-3, "boxes");
    close(faces.map((f) => f.score), c.scores, 1e-5, "scores");
    close(faces.flatMap((f) => f.landmarks.flat()), c.landmarks.flat(2), 1e-3, "landmarks");
  }
});

test("greedyNms: nms", () => {
  const faces = V.nms.boxes.map((box) => ({ box }));
  assert.deepEqual(page.greedyNms(faces, V.nms.iou), V.nms.keep);
});

test("anonymizePasses and passPlan: anonymize_passes and FaceDetector.pass_plan", () => {
  for (const c of V.passes) assert.deepEqual(page.anonymizePasses(c.h, c.w, c.first, c.second, V.settings.passes), c.sides);
  for (const c of V.plans) {
    const plan = page.passPlan(c.h, c.w, c.sides, V.settings.detector, V.settings.passes);
    assert.deepEqual(plan.map((p) => [p.longSide, p.topK, p.keepTopK]), c.plan.map((p) => p.slice(0, 3)));
    close(plan.map((p) => p.minFace), c.plan.map((p) => p[3]), 1e-9, "minFace");
  }
});

test("maskRegion: mask_regions", () => {
  for (const c of V.masks) {
    const r = page.maskRegion(c.box, c.pad, c.W, c.H);
    assert.deepEqual([r.cx1, r.cy1, r.cx2, r.cy2, r.gx1, r.gy1, r.gx2, r.gy2], c.region);
  }
});

test("faceSquares, cutSquare and mergeLooks: the second look (face_squares, cut_square, merge_looks)", () => {
  const L = V.look;
  assert.deepEqual(page.faceSquares(L.boxes, L.context), L.squares);
  for (const c of L.cuts) {
    const cut = page.cutSquare(Uint8ClampedArray.from(L.image.rgba), L.image.h, L.image.w, c.x0, c.y0, c.side, c.mirror);
    assert.deepEqual(Array.from(cut), c.pixels, `cut ${c.x0},${c.y0},${c.side} mirror ${c.mirror}`);
  }
  const merged = page.mergeLooks(L.faces, L.squares.slice(0, 3), L.looks, L.rules, V.anchors.mirrorOrder);
  close(merged.flatMap((f) => f.landmarks.flat()), L.merged.flat(2), 1e-3, "landmarks");
  close(merged.flatMap((f) => f.box), L.faces.flatMap((f) => f.box), 0, "boxes unchanged");
});
