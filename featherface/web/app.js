// The page: open or drop photos (or start the webcam), show the faces, mask them, download.
// Everything goes through window.featherface (featherface.js); nothing is uploaded.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const ff = window.featherface;
  let items = [];  // {name, bitmap, faces, canvas}
  let stream = null;

  /** The detector options of the controls; throws a RangeError naming a bad threshold. */
  function options() {
    const input = $("threshold");
    if (input.value === "" && !input.validity.badInput) return {};
    const t = Number(input.value);
    if (input.validity.badInput || !(t >= 0 && t <= 1)) throw new RangeError("the score threshold must be a number from 0 to 1");
    return { scoreThreshold: t };
  }

  function drawFaces(canvas, faces) {
    const ctx = canvas.getContext("2d");
    const lw = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 400));
    ctx.lineWidth = lw;
    for (const f of faces) {
      const [x1, y1, x2, y2] = f.box;
      ctx.strokeStyle = "#00e676";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillStyle = "#ff1744";
      for (const [x, y] of f.landmarks) { ctx.beginPath(); ctx.arc(x, y, lw * 1.5, 0, 2 * Math.PI); ctx.fill(); }
      ctx.fillStyle = "#00e676";
      ctx.font = `${lw * 7}px sans-serif`;
      ctx.fillText(f.score.toFixed(2), x1, Math.max(lw * 7, y1 - lw));
    }
  }

  async function render(item) {
    const mode = $("mode").value;
    let canvas;
    if (mode === "detect") {
      item.faces = await ff.detect(item.bitmap, options());
      canvas = document.createElement("canvas");
      canvas.width = item.bitmap.width; canvas.height = item.bitmap.height;
      canvas.getContext("2d").drawImage(item.bitmap, 0, 0);
      drawFaces(canvas, item.faces);
    } else {
      canvas = await ff.anonymize(item.bitmap, { ...options(), mode, shape: $("shape").value });
      item.faces = canvas.faces;
    }
    item.canvas = canvas;
    return canvas;
  }

  async function show(item) {
    const t0 = performance.now();
    const canvas = await render(item);
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    // masking counts what it hid: recall first, low-score faces too, so more than detection shows
    const what = $("mode").value === "detect" ? "face(s)" : "area(s) masked";
    caption.textContent = `${item.name}: ${item.faces.length} ${what}, ${Math.round(performance.now() - t0)} ms`;
    figure.append(canvas, caption);
    item.figure = figure;
    return figure;
  }

  /** Redraw every photo with the current controls; a bad control keeps the shown results and
   * says what is wrong. Returns whether it redrew. */
  async function refresh() {
    try {
      options();
    } catch (e) {
      $("status").textContent = e.message;
      return false;
    }
    const figures = [];
    for (const item of items) figures.push(await show(item));
    $("results").replaceChildren(...figures);
    $("download").disabled = items.length === 0;
    return true;
  }

  async function open(files) {
    const problems = [];
    let added = 0;
    $("status").textContent = `working on ${files.length} file(s)…`;
    for (const file of files) {
      try {
        const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none" });
        items.push({ name: file.name, bitmap });
        added++;
      } catch (e) {
        problems.push(`${file.name} (${file.type.startsWith("image/") ? "damaged or unsupported" : "not an image"})`);
      }
    }
    $("hint").hidden = items.length > 0;
    const redrawn = await refresh();
    const skipped = problems.length ? `; not opened: ${problems.join(", ")}` : "";
    if (redrawn || problems.length) $("status").textContent = `${added} photo(s) opened${skipped}`;
  }

  function download() {
    for (const item of items) {
      item.canvas.toBlob((blob) => {
        const a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = item.name.replace(/\.[^.]*$/, "") + "_featherface.png";
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      }, "image/png");
    }
  }

  async function camera() {
    if (stream) {
      stream.getTracks().forEach((t) => t.stop());
      stream = null;
      $("video").hidden = true;
      $("camera").textContent = "Webcam";
      $("status").textContent = "webcam stopped";
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia) { $("status").textContent = "no webcam access in this browser"; return; }
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
    $("camera").textContent = "Stop webcam";
    $("status").textContent = "webcam on: nothing is recorded or sent";
    const video = $("video");
    video.srcObject = stream;
    await video.play();
    const figure = document.createElement("figure");
    $("results").replaceChildren(figure);
    const loop = async () => {
      if (!stream) return;
      const bitmap = await createImageBitmap(video);
      try {
        figure.replaceChildren(await render({ bitmap }));
      } catch (e) {
        $("status").textContent = e.message;  // e.g. a bad threshold: the loop goes on with the next frame
      } finally {
        bitmap.close();
      }
      requestAnimationFrame(loop);
    };
    loop();
  }

  $("files").addEventListener("change", (e) => open(e.target.files));
  $("download").addEventListener("click", download);
  $("camera").addEventListener("click", () => camera().catch((e) => { $("status").textContent = e.message; }));
  // a redraw after a control change replaces an earlier complaint about a control
  for (const id of ["mode", "shape", "threshold"]) {
    $(id).addEventListener("change", () => refresh().then((ok) => { if (ok && items.length) $("status").textContent = "updated"; }));
  }
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); open(e.dataTransfer.files); });
  ff.load().then((m) => { $("status").textContent = `ready (${m.model}, ${m.threads} thread(s))`; })
    .catch((e) => { $("status").textContent = `could not load the model: ${e.message}`; });
})();
