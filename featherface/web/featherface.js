/*
 * FeatherFace in the browser: face detection and anonymisation on the user's own device.
 *
 * A classic script: it defines `window.featherface` as soon as it runs and loads onnxruntime-web
 * (vendored in ./vendor, never from a CDN) and the model on the first call.
 *
 *   featherface.detect(source, options)    -> Promise<[{box: [x1, y1, x2, y2], score, landmarks: [[x, y] x5]}]>
 *     (landmarks read again in a second look at each face, as the package does; options.refineLandmarks
 *     false: the first look's, faster)
 *   featherface.anonymize(source, options) -> Promise<HTMLCanvasElement | Blob>
 *   featherface.load(options)              -> Promise<{model, threads, threshold, version}>  (optional warm-up)
 *
 * `source`: an <img>, ImageBitmap, <canvas>, OffscreenCanvas, <video>, Blob/File, ImageData, or a URL
 * string (data: URLs included). Coordinates are pixels of the source image, x to the right, y down,
 * (0, 0) the top-left corner of the top-left pixel. Landmarks: left eye, right eye, nose, left and
 * right mouth corner ("left" = image left).
 *
 * The pre- and post-processing are the Python package's (featherface/core): long side resized to
 * 640 by bilinear interpolation with half-pixel centres (OpenCV's INTER_LINEAR), BGR minus the
 * mean (104, 117, 123), the same priors and variances, score threshold from the model's metadata
 * (served as config.json), greedy NMS at IoU 0.4 and score-weighted box voting.
 */
(function () {
  "use strict";

  // in a page: this script's folder; under Node (tests of the pure functions below) there is none
  const here = typeof document === "undefined" ? null
    : new URL(".", document.currentScript ? document.currentScript.src : location.href);
  // the anchors' contract (featherface/core/constants.py: minSizes, steps, variances), from config.json
  let ANCHORS = null;
  // The defaults (detector, anonymize, passes) are the Python package's, declared once in
  // featherface/core/settings.py and served in config.json; `threshold` comes from the model.
  let SETTINGS = null;

  let runtime = null;  // onnxruntime-web, config.json and the thread count: set up once per page
  const sessions = new Map();  // model name -> Promise of its loaded session

  function setUp(options) {
    if (runtime) return runtime;
    runtime = (async () => {
      const config = await (await fetch(new URL("config.json", here))).json();
      const ort = await import(new URL("vendor/ort.wasm.bundle.min.mjs", here).href);
      // the bundle carries its JavaScript glue; only the binary is a separate file
      ort.env.wasm.wasmPaths = { wasm: new URL("vendor/ort-wasm-simd-threaded.wasm", here).href };
      // Threads need SharedArrayBuffer, i.e. a cross-origin-isolated page (COOP/COEP headers).
      // The count is fixed when the runtime starts: options.threads of the first call, or the
      // page's ?threads= parameter, or up to 4 where the page is isolated.
      const asked = options.threads ?? Number(new URLSearchParams(location.search).get("threads") || 0);
      const threads = self.crossOriginIsolated ? (asked || Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
      ort.env.wasm.numThreads = threads;
      SETTINGS = config.settings;
      ANCHORS = config.anchors;
      return { ort, config, threads };
    })();
    runtime.catch(() => { runtime = null; });
    return runtime;
  }

  /** Load onnxruntime-web and a model (options.model: "nano", the default, or "nano-int8"). */
  async function load(options = {}) {
    const { ort, config, threads } = await setUp(options);
    const name = options.model || config.default_model;
    const entry = config.models[name];
    if (!entry) throw new Error(`unknown model ${JSON.stringify(name)}; have ${Object.keys(config.models).join(", ")}`);
    if (!sessions.has(name)) {
      const session = ort.InferenceSession.create(new URL(entry.url, here).href,
                                                  { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      session.catch(() => sessions.delete(name));
      sessions.set(name, session);
    }
    const session = await sessions.get(name);
    return { ort, session, model: name, threads, threshold: entry.score_threshold, mean: entry.mean,
             version: config.version };
  }

  // ------------------------------------------------------------------ sources

  /** Any supported source -> ImageBitmap (decoded without colour management, as OpenCV decodes). */
  async function toBitmap(source) {
    const opts = { colorSpaceConversion: "none", premultiplyAlpha: "none" };
    if (typeof source === "string") {
      const response = await fetch(source);
      if (!response.ok) throw new Error(`could not fetch ${source.slice(0, 80)}: HTTP ${response.status}`);
      return createImageBitmap(await response.blob(), opts);
    }
    if (source instanceof HTMLImageElement && !source.complete) await source.decode();
    return createImageBitmap(source, opts);
  }

  /** RGBA pixels of the whole source at its own size. */
  function pixelsOf(bitmap) {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    return ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  }

  function inputSize(h, w, longSide) {
    if (!longSide) return [h, w];
    const s = longSide / Math.max(h, w);
    return [Math.max(1, Math.round(h * s)), Math.max(1, Math.round(w * s))];
  }

  /**
   * Bilinear resize with half-pixel centres (OpenCV INTER_LINEAR, no antialiasing) of RGBA pixels
   * straight into the network input: NCHW float32, BGR order, mean subtracted.
   */
  function toTensorData(rgba, h, w, nh, nw, mean) {
    const out = new Float32Array(3 * nh * nw);
    const plane = nh * nw;
    const sx = w / nw, sy = h / nh;
    const xs0 = new Int32Array(nw), xs1 = new Int32Array(nw), fx = new Float32Array(nw);
    for (let x = 0; x < nw; x++) {
      let src = (x + 0.5) * sx - 0.5;
      if (src < 0) src = 0;
      let x0 = Math.floor(src);
      if (x0 > w - 1) x0 = w - 1;
      xs0[x] = x0; xs1[x] = Math.min(x0 + 1, w - 1); fx[x] = Math.min(src - x0, 1);
    }
    for (let y = 0; y < nh; y++) {
      let src = (y + 0.5) * sy - 0.5;
      if (src < 0) src = 0;
      let y0 = Math.floor(src);
      if (y0 > h - 1) y0 = h - 1;
      const y1 = Math.min(y0 + 1, h - 1), fy = Math.min(src - y0, 1);
      const r0 = y0 * w * 4, r1 = y1 * w * 4;
      for (let x = 0; x < nw; x++) {
        const a = r0 + xs0[x] * 4, b = r0 + xs1[x] * 4, c = r1 + xs0[x] * 4, d = r1 + xs1[x] * 4;
        const wx = fx[x], w00 = (1 - wx) * (1 - fy), w01 = wx * (1 - fy), w10 = (1 - wx) * fy, w11 = wx * fy;
        const i = y * nw + x;
        for (let ch = 0; ch < 3; ch++) {  // output channel ch: B, G, R = RGBA offset 2, 1, 0
          const k = 2 - ch;
          const v = rgba[a + k] * w00 + rgba[b + k] * w01 + rgba[c + k] * w10 + rgba[d + k] * w11;
          out[ch * plane + i] = (h === nh && w === nw ? rgba[a + k] : Math.round(v)) - mean[ch];
        }
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ post-processing

  const priorCache = new Map();

  /** Priors (cx, cy, w, h) in input pixels, in the network's anchor order (Python: pixel_priors). */
  function priors(h, w, anchors = ANCHORS) {
    const key = h + "x" + w + JSON.stringify(anchors.minSizes) + anchors.steps;
    if (priorCache.has(key)) return priorCache.get(key);
    const list = [];
    anchors.steps.forEach((step, level) => {
      const fh = Math.ceil(h / step), fw = Math.ceil(w / step);
      for (let i = 0; i < fh; i++) for (let j = 0; j < fw; j++) for (const s of anchors.minSizes[level]) {
        list.push((j + 0.5) * step, (i + 0.5) * step, s, s);
      }
    });
    const out = Float32Array.from(list);
    priorCache.set(key, out);
    return out;
  }

  function iou(a, b) {
    const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
    const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    const inter = iw * ih;
    const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return union > 0 ? inter / union : 0;
  }

  /** Greedy NMS over faces in decreasing score order: the indices kept (at most ``limit``). */
  function greedyNms(faces, nmsIou, limit = Infinity) {
    const keep = [];
    const suppressed = new Uint8Array(faces.length);
    for (let i = 0; i < faces.length && keep.length < limit; i++) {
      if (suppressed[i]) continue;
      keep.push(i);
      for (let j = i + 1; j < faces.length; j++) {
        if (!suppressed[j] && iou(faces[i].box, faces[j].box) > nmsIou) suppressed[j] = 1;
      }
    }
    return keep;
  }

  /** Raw outputs of one image -> faces in original pixels (Python: postprocess_image). */
  function postprocess(loc, conf, landms, nh, nw, scaleX, scaleY, cfg, contract = ANCHORS) {
    const anchors = priors(nh, nw, contract);
    const VARIANCES = contract.variances;
    const count = anchors.length / 4;
    let idx = [];
    const scores = new Float32Array(count);
    for (let a = 0; a < count; a++) {
      scores[a] = 1 / (1 + Math.exp(conf[2 * a] - conf[2 * a + 1]));
      if (scores[a] > cfg.threshold) idx.push(a);
    }
    idx.sort((p, q) => scores[q] - scores[p]);
    if (idx.length > cfg.topK) idx = idx.slice(0, cfg.topK);
    const W = nw * scaleX, H = nh * scaleY;
    const cand = idx.map((a) => {
      const [acx, acy, aw, ah] = [anchors[4 * a], anchors[4 * a + 1], anchors[4 * a + 2], anchors[4 * a + 3]];
      const cx = acx + loc[4 * a] * VARIANCES[0] * aw, cy = acy + loc[4 * a + 1] * VARIANCES[0] * ah;
      const bw = aw * Math.exp(loc[4 * a + 2] * VARIANCES[1]), bh = ah * Math.exp(loc[4 * a + 3] * VARIANCES[1]);
      const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
      const box = [clip((cx - bw / 2) * scaleX, W), clip((cy - bh / 2) * scaleY, H),
                   clip((cx + bw / 2) * scaleX, W), clip((cy + bh / 2) * scaleY, H)];
      const pts = [];
      for (let k = 0; k < 5; k++) {
        pts.push([(acx + landms[10 * a + 2 * k] * VARIANCES[0] * aw) * scaleX,
                  (acy + landms[10 * a + 2 * k + 1] * VARIANCES[0] * ah) * scaleY]);
      }
      return { box, score: scores[a], landmarks: pts };
    });
    return greedyNms(cand, cfg.nmsIou, cfg.keepTopK).map((i) => {
      if (!cfg.boxVoting) return cand[i];
      // box voting: the score-weighted mean of every candidate overlapping the kept one
      const box = [0, 0, 0, 0], pts = [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]];
      let total = 0;
      cand.forEach((c, j) => {
        if (j !== i && !(iou(cand[i].box, c.box) > cfg.nmsIou)) return;
        total += c.score;
        for (let k = 0; k < 4; k++) box[k] += c.score * c.box[k];
        for (let k = 0; k < 5; k++) { pts[k][0] += c.score * c.landmarks[k][0]; pts[k][1] += c.score * c.landmarks[k][1]; }
      });
      return { box: box.map((v) => v / total), score: cand[i].score,
               landmarks: pts.map(([x, y]) => [x / total, y / total]) };
    });
  }

  // ------------------------------------------------------------------ the API

  function settings(options, loaded) {
    const cfg = { ...SETTINGS.detector, threshold: loaded.threshold };
    if (options.scoreThreshold !== undefined) cfg.threshold = options.scoreThreshold;
    if (options.longSide !== undefined) cfg.longSide = options.longSide;
    if (options.nmsIou !== undefined) cfg.nmsIou = options.nmsIou;
    if (options.boxVoting !== undefined) cfg.boxVoting = options.boxVoting;
    if (options.topK !== undefined) cfg.topK = options.topK;
    if (options.keepTopK !== undefined) cfg.keepTopK = options.keepTopK;
    if (options.refineLandmarks !== undefined) cfg.refineLandmarks = options.refineLandmarks;
    if (!(cfg.threshold >= 0 && cfg.threshold <= 1)) throw new RangeError(`scoreThreshold must be in [0, 1], got ${cfg.threshold}`);
    if (!(cfg.nmsIou > 0 && cfg.nmsIou <= 1)) throw new RangeError(`nmsIou must be in (0, 1], got ${cfg.nmsIou}`);
    if (cfg.longSide && !(cfg.longSide >= 32)) throw new RangeError(`longSide must be >= 32 or 0 (full size), got ${cfg.longSide}`);
    return cfg;
  }

  /** The first look at h x w RGBA pixels: faces in their pixels. */
  async function firstLook(loaded, rgba, h, w, cfg) {
    const [nh, nw] = inputSize(h, w, cfg.longSide);
    const data = toTensorData(rgba, h, w, nh, nw, loaded.mean);
    const input = new loaded.ort.Tensor("float32", data, [1, 3, nh, nw]);
    const out = await loaded.session.run({ [loaded.session.inputNames[0]]: input });
    return postprocess(out.loc.data, out.conf.data, out.landms.data, nh, nw, w / nw, h / nh, cfg);
  }

  /** One look at each of several RGBA squares ({rgba, side}), resized to n x n, as one batch (one
   * inference): a list of faces per square, in its pixels. */
  async function looksAt(loaded, squares, cfg) {
    const n = cfg.longSide;
    const plane = 3 * n * n;
    const data = new Float32Array(squares.length * plane);
    squares.forEach(({ rgba, side }, i) => data.set(toTensorData(rgba, side, side, n, n, loaded.mean), i * plane));
    const input = new loaded.ort.Tensor("float32", data, [squares.length, 3, n, n]);
    const out = await loaded.session.run({ [loaded.session.inputNames[0]]: input });
    const per = out.loc.data.length / squares.length / 4;  // anchors per square
    return squares.map(({ side }, i) => postprocess(out.loc.data.subarray(4 * per * i, 4 * per * (i + 1)),
      out.conf.data.subarray(2 * per * i, 2 * per * (i + 1)), out.landms.data.subarray(10 * per * i, 10 * per * (i + 1)),
      n, n, side / n, side / n, cfg));
  }

  async function detectBitmap(bitmap, options) {
    const loaded = await load(options);
    const cfg = settings(options, loaded);
    const h = bitmap.height, w = bitmap.width;
    const rgba = pixelsOf(bitmap);
    const faces = await firstLook(loaded, rgba, h, w, cfg);
    if (!cfg.refineLandmarks || !faces.length) return faces;
    // the second look (Python: featherface/core/refine.py): each face again, large, and mirrored
    const look = SETTINGS.look;
    const squares = faceSquares(faces.map((f) => f.box), look.context);
    const lookCfg = { ...cfg, threshold: look.scoreThreshold, longSide: Math.round(look.context * look.facePx) };
    // every crop is resized to the same input: batches of 8 (4 faces, plain and mirrored), as the
    // package's detector batches them
    const looks = [];
    for (let start = 0; start < squares.length; start += 4) {
      const cuts = squares.slice(start, start + 4).flatMap(([x0, y0, side]) =>
        [false, true].map((m) => ({ rgba: cutSquare(rgba, h, w, x0, y0, side, m), side })));
      looks.push(...await looksAt(loaded, cuts, lookCfg));
    }
    return mergeLooks(faces, squares, looks);
  }

  // ------------------------------------------------------------------ the second look

  /** Integer squares [x0, y0, side] centred on each box, `context` times its longer side
   * (Python: face_squares). */
  function faceSquares(boxes, context) {
    return boxes.map(([x1, y1, x2, y2]) => {
      const side = Math.max(1, Math.round(context * Math.max(x2 - x1, y2 - y1)));
      // `|| 0`: Math.round(-0.4) is -0
      return [Math.round((x1 + x2) / 2 - side / 2) || 0, Math.round((y1 + y2) / 2 - side / 2) || 0, side];
    });
  }

  /** RGBA pixels of the side x side square at (x0, y0) of an h x w image, black outside it,
   * mirrored left to right with `mirror` (Python: cut_square). */
  function cutSquare(rgba, h, w, x0, y0, side, mirror) {
    const out = new Uint8ClampedArray(side * side * 4);
    const ya = Math.max(0, y0), yb = Math.min(h, y0 + side), xa = Math.max(0, x0), xb = Math.min(w, x0 + side);
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const cx = mirror ? side - 1 - (x - x0) : x - x0;
        const o = ((y - y0) * side + cx) * 4, i = (y * w + x) * 4;
        out[o] = rgba[i]; out[o + 1] = rgba[i + 1]; out[o + 2] = rgba[i + 2]; out[o + 3] = rgba[i + 3];
      }
    }
    return out;
  }

  /** `faces` with each face's landmarks the mean of its two looks (square, then mirrored square;
   * crop pixels) whose best box matches the face's at IoU >= minIou (Python: merge_looks). */
  function mergeLooks(faces, squares, looks, look = SETTINGS.look, mirrorOrder = ANCHORS.mirrorOrder) {
    return faces.map((face, i) => {
      const [x0, y0, side] = squares[i];
      const readings = [];
      for (let k = 0; k < 2; k++) {
        const found = looks[2 * i + k];
        if (!found.length) continue;
        let [bx1, by1, bx2, by2] = [face.box[0] - x0, face.box[1] - y0, face.box[2] - x0, face.box[3] - y0];
        if (k === 1) [bx1, bx2] = [side - bx2, side - bx1];
        let best = -1, bestIou = -1;
        found.forEach((f, j) => { const v = iou([bx1, by1, bx2, by2], f.box); if (v > bestIou) { best = j; bestIou = v; } });
        if (bestIou < look.minIou) continue;
        let pts = found[best].landmarks;
        if (k === 1) pts = mirrorOrder.map((m) => [side - pts[m][0], pts[m][1]]);
        readings.push(pts.map(([x, y]) => [x + x0, y + y0]));
      }
      if (!readings.length) return face;
      const landmarks = face.landmarks.map((_, p) => [0, 1].map((c) => readings.reduce((s, r) => s + r[p][c], 0) / readings.length));
      return { ...face, landmarks };
    });
  }

  async function detect(source, options = {}) {
    const bitmap = await toBitmap(source);
    try {
      return await detectBitmap(bitmap, options);
    } finally {
      bitmap.close();
    }
  }

  /** The long sides an anonymiser detects at (0: the image's own size); Python: anonymize_passes. */
  function anonymizePasses(h, w, first, second, passes = SETTINGS.passes) {
    if (second === "full") return first && Math.max(h, w) > passes.fullPassAbove * first ? [first, 0] : [first];
    return second ? [first, second] : [first];
  }

  /** Per pass of an h x w image at `sides` (0: its own size): the candidate caps and the smallest
   * face it keeps, in original pixels (0: all); Python: FaceDetector.pass_plan. */
  function passPlan(h, w, sides, detector = SETTINGS.detector, passes = SETTINGS.passes) {
    const scales = sides.map((ls) => (ls ? ls / Math.max(h, w) : 1));
    return sides.map((longSide, k) => {
      const grow = Math.max(1, (h * w * scales[k] * scales[k]) / passes.passArea);
      const coarse = Math.max(...scales) >= passes.finerPass * scales[k];
      return { longSide, topK: Math.floor(detector.topK * grow), keepTopK: Math.floor(detector.keepTopK * grow),
               minFace: coarse ? passes.coarseMinFace / scales[k] : 0 };
    });
  }

  /** A face's mask: its box grown by `pad` of its size on every side (g*), and that clipped to
   * the W x H image (c*); Python: mask_regions. */
  function maskRegion([x1, y1, x2, y2], pad, W, H) {
    const bw = x2 - x1, bh = y2 - y1;
    const gx1 = Math.floor(x1 - pad * bw), gy1 = Math.floor(y1 - pad * bh);
    const gx2 = Math.ceil(x2 + pad * bw), gy2 = Math.ceil(y2 + pad * bh);
    return { gx1, gy1, gx2, gy2, cx1: Math.max(0, gx1), cy1: Math.max(0, gy1), cx2: Math.min(W, gx2), cy2: Math.min(H, gy2) };
  }

  /** One image detected at several long sides, merged by greedy NMS (Python: detect_passes). */
  async function detectPasses(bitmap, sides, opt) {
    let all = [];
    for (const { longSide, topK, keepTopK, minFace } of passPlan(bitmap.height, bitmap.width, sides)) {
      const faces = await detectBitmap(bitmap, { ...opt, longSide, topK, keepTopK, refineLandmarks: false });
      all.push(...faces.filter((f) => f.box[2] - f.box[0] >= minFace));
    }
    if (sides.length === 1) return all;
    all = all.sort((p, q) => q.score - p.score);
    return greedyNms(all, opt.nmsIou ?? SETTINGS.detector.nmsIou).map((i) => all[i]);
  }

  /** Draw the masked faces of `faces` onto `ctx` (which already holds the image). */
  function maskFaces(ctx, bitmap, faces, opt) {
    const W = bitmap.width, H = bitmap.height;
    for (const { box } of faces) {
      const { gx1, gy1, gx2, gy2, cx1, cy1, cx2, cy2 } = maskRegion(box, opt.pad, W, H);
      if (cx2 <= cx1 || cy2 <= cy1) continue;
      ctx.save();
      ctx.beginPath();
      if (opt.shape === "ellipse") {
        ctx.ellipse((gx1 + gx2) / 2, (gy1 + gy2) / 2, (gx2 - gx1) / 2, (gy2 - gy1) / 2, 0, 0, 2 * Math.PI);
      } else {
        ctx.rect(cx1, cy1, cx2 - cx1, cy2 - cy1);
      }
      ctx.clip();
      if (opt.mode === "solid") {
        ctx.fillStyle = opt.color;
        ctx.fillRect(cx1, cy1, cx2 - cx1, cy2 - cy1);
      } else {
        // the face's own size sets the strength: `detail` samples (blur) or blocks (pixelate) across
        const n = Math.max(1, Math.min(opt.detail, gx2 - gx1, gy2 - gy1));
        const rw = cx2 - cx1, rh = cy2 - cy1;
        const sw = Math.max(1, Math.round(n * rw / (gx2 - gx1))), sh = Math.max(1, Math.round(n * rh / (gy2 - gy1)));
        const small = new OffscreenCanvas(sw, sh);
        const sctx = small.getContext("2d");
        sctx.imageSmoothingQuality = "high";
        sctx.drawImage(bitmap, cx1, cy1, rw, rh, 0, 0, sw, sh);
        ctx.imageSmoothingEnabled = opt.mode === "blur";
        ctx.imageSmoothingQuality = "high";
        if (opt.mode === "blur") ctx.filter = `blur(${Math.max(rw / sw, rh / sh) * 0.8}px)`;
        ctx.drawImage(small, 0, 0, sw, sh, cx1, cy1, rw, rh);
      }
      ctx.restore();
    }
  }

  /**
   * The source with every face masked. options: mode "blur" | "pixelate" | "solid", shape
   * "ellipse" | "box", pad (0.15 of the box on each side), detail (8), color (CSS colour for
   * solid), scoreThreshold (0.025: an anonymiser misses as few faces as it can), secondPass ("full":
   * a second detection pass at the image's own size for images over 1.5 times longSide; a number:
   * a pass at that long side; 0: none), output "canvas"
   * (default) | "blob", type and quality for the Blob ("image/png" default). Also resolves
   * `faces` on the canvas (`canvas.faces`).
   */
  async function anonymize(source, options = {}) {
    await setUp(options);
    const opt = { ...SETTINGS.anonymize, ...options };
    if (!["blur", "pixelate", "solid"].includes(opt.mode)) throw new RangeError(`mode must be blur, pixelate or solid, got ${opt.mode}`);
    if (!["ellipse", "box"].includes(opt.shape)) throw new RangeError(`shape must be ellipse or box, got ${opt.shape}`);
    if (!(opt.pad >= 0)) throw new RangeError(`pad must be >= 0, got ${opt.pad}`);
    if (!(opt.detail >= 1)) throw new RangeError(`detail must be >= 1, got ${opt.detail}`);
    const bitmap = await toBitmap(source);
    try {
      let faces = options.faces;
      if (!faces) {
        const first = opt.longSide ?? SETTINGS.detector.longSide;
        faces = await detectPasses(bitmap, anonymizePasses(bitmap.height, bitmap.width, first, opt.secondPass), opt);
      }
      const canvas = document.createElement("canvas");
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(bitmap, 0, 0);
      maskFaces(ctx, bitmap, faces, opt);
      canvas.faces = faces;
      if (opt.output === "blob") {
        return await new Promise((resolve, reject) => canvas.toBlob(
          (b) => (b ? resolve(b) : reject(new Error("could not encode the image"))), opt.type || "image/png", opt.quality));
      }
      return canvas;
    } finally {
      bitmap.close();
    }
  }

  if (typeof window !== "undefined") window.featherface = Object.freeze({ load, detect, anonymize });
  // Node: the pure functions, checked against the Python package (tests/apps/test_page_functions.py)
  if (typeof module === "object" && module.exports) {
    module.exports = { inputSize, toTensorData, priors, greedyNms, postprocess, anonymizePasses, passPlan, maskRegion,
                       faceSquares, cutSquare, mergeLooks };
  }
})();
