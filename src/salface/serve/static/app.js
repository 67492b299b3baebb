/* salface web page: upload photos to /v1/analyze and /v1/explain, draw the answers.
   Plain JavaScript, no dependencies, no build step. */
"use strict";

const COLORS = ["#2f9e44", "#1c7ed6", "#e8590c", "#ae3ec9", "#f08c00", "#0ca678", "#d6336c", "#5c7cfa"];
const TASK_NAMES = { age: "Age group", gender: "Gender", expression: "Expression" };
const PARALLEL = 2;          // uploads in flight at once (the server queues the rest anyway)

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const state = { models: null, jobs: [], running: 0 };

/* ------------------------------------------------------------------ server info */

async function fetchJSON(url, init) {
  const res = await fetch(url, init);
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const err = new Error(body && body.detail ? body.detail : `HTTP ${res.status}`);
    err.code = body && body.error ? body.error : `http_${res.status}`;
    err.status = res.status;
    throw err;
  }
  return body;
}

async function loadServerInfo() {
  const pill = $("#server-status");
  try {
    const [health, models] = await Promise.all([fetchJSON("/health"), fetchJSON("/v1/models")]);
    state.models = models;
    pill.textContent = `ready · ${models.classifiers.length} model${models.classifiers.length === 1 ? "" : "s"} · ${models.backend}`;
    pill.className = "pill pill-ok";
    pill.title = `salface ${health.version}, worker pid ${health.pid}`;
    fillOptions(models);
  } catch (e) {
    pill.textContent = "server unavailable";
    pill.className = "pill pill-bad";
    pill.title = e.message;
  }
}

function fillOptions(models) {
  const sel = $("#opt-detector");
  sel.replaceChildren();
  for (const name of models.detectors.choices) {
    const o = el("option", null, name === models.detectors.default ? `${name} (default)` : name);
    o.value = name;
    o.selected = name === models.detectors.default;
    sel.append(o);
  }
  const box = $("#opt-tasks");
  box.querySelectorAll("label").forEach((l) => l.remove());
  for (const t of models.tasks) {
    const l = el("label");
    const c = el("input");
    c.type = "checkbox"; c.name = "tasks"; c.value = t; c.checked = true;
    l.append(c, document.createTextNode(TASK_NAMES[t] || t));
    box.append(l);
  }
  const mf = $("#opt-max-faces");
  mf.max = String(models.limits.max_faces);
  mf.placeholder = String(models.limits.max_faces);
  const mb = models.limits.max_upload_bytes / (1024 * 1024);
  $("#drop-hint").textContent =
    `JPEG, PNG, WebP, GIF, BMP, TIFF · up to ${+mb.toFixed(1)} MB and ${(models.limits.max_pixels / 1e6).toFixed(0)} megapixels`;
}

function queryString(extra = {}) {
  const p = new URLSearchParams();
  const det = $("#opt-detector").value;
  if (det) p.set("detector", det);
  const tasks = [...document.querySelectorAll("#opt-tasks input:checked")].map((c) => c.value);
  if (tasks.length) p.set("tasks", tasks.join(","));
  const mf = $("#opt-max-faces").value.trim();
  if (mf) p.set("max_faces", mf);
  for (const [k, v] of Object.entries(extra)) p.set(k, String(v));
  return p.toString();
}

/* ------------------------------------------------------------------ jobs */

function addFiles(files) {
  for (const file of files) {
    const job = { file, card: makeCard(file), result: null };
    state.jobs.push(job);
    $("#results").prepend(job.card);
  }
  updateButtons();
  pump();
}

function pump() {
  while (state.running < PARALLEL) {
    const job = state.jobs.find((j) => j.card.dataset.status === "queued");
    if (!job) return;
    state.running++;
    runJob(job).finally(() => { state.running--; updateButtons(); pump(); });
  }
}

async function runJob(job) {
  const { file, card } = job;
  setStatus(card, "analyzing", "analyzing…", "wait");
  const bitmap = await decodeLocally(file);
  let result;
  try {
    const form = new FormData();
    form.append("file", file, file.name);
    result = await fetchJSON(`/v1/analyze?${queryString()}`, { method: "POST", body: form });
  } catch (e) {
    showError(card, e);
    if (bitmap) drawImage(card, bitmap, null);
    else $(".card-body", card).hidden = true;    // nothing to show but the reason
    return;
  }
  job.result = result;
  const n = result.faces.length;
  setStatus(card, "done", `${n} face${n === 1 ? "" : "s"}`, "ok");
  $(".file-meta", card).textContent = `${result.width} × ${result.height} px · ${formatBytes(file.size)}`;
  const dl = $(".download-json", card);
  dl.disabled = false;
  dl.onclick = () => download(`${stem(file.name)}.json`, result);
  drawImage(card, bitmap, result);
  renderFaces(card, result);
  if (n) await runExplain(job);
}

async function runExplain(job) {
  const { file, card } = job;
  const box = $(".explain", card);
  box.hidden = false;
  const note = $(".explain-note", card);
  note.textContent = "computing saliency panels…";
  try {
    const form = new FormData();
    form.append("file", file, file.name);
    const cams = $("#opt-cams").checked;
    const ex = await fetchJSON(`/v1/explain?${queryString({ size: 128, cams })}`,
      { method: "POST", body: form });
    renderExplain(card, ex);
  } catch (e) {
    note.textContent = `panels unavailable: ${e.message}`;
  }
}

async function decodeLocally(file) {
  try {
    return await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (_) {
    return null;      // the browser cannot show this format; the server may still read it
  }
}

/* ------------------------------------------------------------------ drawing */

function makeCard(file) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  $(".file-name", card).textContent = file.name;
  $(".file-name", card).title = file.name;
  $(".file-meta", card).textContent = formatBytes(file.size);
  return card;
}

function setStatus(card, status, text, tone) {
  card.dataset.status = status;
  const s = $(".status", card);
  s.textContent = text;
  s.className = `status pill pill-${tone}`;
}

function showError(card, e) {
  setStatus(card, "error", e.code || "error", "bad");
  const box = $(".error-box", card);
  box.hidden = false;
  box.textContent = e.message;
  box.dataset.error = e.code || "";
}

function faceLabel(face) {
  const parts = [];
  for (const t of ["age", "gender", "expression"]) if (face[t]) parts.push(face[t].label);
  return parts.join(" · ");
}

function drawImage(card, bitmap, result) {
  const canvas = $(".annotated", card);
  const ctx = canvas.getContext("2d");
  const w = bitmap ? bitmap.width : result ? result.width : 0;
  const h = bitmap ? bitmap.height : result ? result.height : 0;
  if (!w || !h) return;
  canvas.width = w; canvas.height = h;
  if (bitmap) {
    ctx.drawImage(bitmap, 0, 0);
  } else {
    ctx.fillStyle = "#8884"; ctx.fillRect(0, 0, w, h);
  }
  if (!result) return;
  const sx = w / result.width, sy = h / result.height;
  const lw = Math.max(2, Math.round(Math.max(w, h) / 320));
  const font = Math.max(12, Math.round(Math.max(w, h) / 40));
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  result.faces.forEach((f, i) => {
    const color = COLORS[i % COLORS.length];
    const b = f.box;
    const x = b.x1 * sx, y = b.y1 * sy, bw = (b.x2 - b.x1) * sx, bh = (b.y2 - b.y1) * sy;
    ctx.lineWidth = lw; ctx.strokeStyle = color;
    ctx.strokeRect(x, y, bw, bh);
    if (f.landmarks) {
      ctx.fillStyle = color;
      for (const [lx, ly] of Object.values(f.landmarks)) {
        ctx.beginPath(); ctx.arc(lx * sx, ly * sy, lw * 1.2, 0, 2 * Math.PI); ctx.fill();
      }
    }
    const text = `${i + 1}  ${faceLabel(f)}`;
    const pad = Math.round(font * 0.3);
    const tw = ctx.measureText(text).width + 2 * pad, th = font + 2 * pad;
    const ty = y - th >= 0 ? y - th : Math.min(h - th, y + bh);
    ctx.fillStyle = color; ctx.fillRect(x - lw / 2, ty, tw, th);
    ctx.fillStyle = "#fff"; ctx.fillText(text, x - lw / 2 + pad, ty + pad);
  });
  canvas.setAttribute("aria-label",
    `${result.faces.length} face(s): ` + result.faces.map((f, i) => `${i + 1}: ${faceLabel(f)}`).join("; "));
}

function renderFaces(card, result) {
  const box = $(".faces", card);
  box.replaceChildren();
  if (!result.faces.length) {
    box.append(el("p", "no-face", "No face found in this image."));
    return;
  }
  result.faces.forEach((f, i) => {
    const fc = el("section", "face-card");
    fc.dataset.face = String(i);
    const head = el("div", "face-head");
    const sw = el("span", "swatch");
    sw.style.background = COLORS[i % COLORS.length];
    head.append(sw, document.createTextNode(`Face ${i + 1} `),
      el("small", null, `detector score ${f.score.toFixed(2)}`));
    fc.append(head);
    for (const task of ["age", "gender", "expression"]) {
      const p = f[task];
      if (!p) continue;
      const pr = el("div", "prediction");
      pr.dataset.task = task;
      pr.dataset.label = p.label;
      const ph = el("div", "prediction-head");
      const lab = el("span");
      lab.append(el("span", "prediction-label", p.label),
        el("span", "prediction-conf", `${(100 * p.confidence).toFixed(1)} %`));
      ph.append(el("span", "task-name", TASK_NAMES[task] || task), lab);
      const bars = el("ul", "bars");
      for (const [name, v] of Object.entries(p.probabilities)) {
        const li = el("li", name === p.label ? "top" : "");
        const bar = el("span", "bar");
        const fill = el("span");
        fill.style.width = `${Math.max(0, Math.min(100, 100 * v)).toFixed(1)}%`;
        bar.append(fill);
        li.append(el("span", "name", name), bar, el("span", "pct", `${(100 * v).toFixed(1)}%`));
        bars.append(li);
      }
      pr.append(ph, bars);
      fc.append(pr);
    }
    box.append(fc);
  });
}

function renderExplain(card, ex) {
  const note = $(".explain-note", card);
  const cams = ex.cams.available
    ? "Class activation maps show where each prediction came from."
    : `Class activation maps unavailable: ${ex.cams.detail}.`;
  note.textContent = `Crop (30 % margin) · ${ex.saliency} saliency map · crop reweighted at r = ${ex.ratio}. ${cams}`;
  const list = $(".triplets", card);
  list.replaceChildren();
  for (const f of ex.faces) {
    const row = el("div", "triplet");
    row.dataset.face = String(f.face);
    const fig = el("figure");
    const img = el("img");
    img.src = f.triplet;
    img.alt = `face ${f.face + 1}: crop, saliency map, reweighted crop`;
    const cap = el("figcaption", "captions");
    for (const t of ex.tiles) cap.append(el("span", null, t));
    fig.append(img, cap);
    row.append(fig);
    for (const [task, c] of Object.entries(f.cams)) {
      const cf = el("figure");
      const ci = el("img");
      ci.src = c.image;
      ci.alt = `face ${f.face + 1}: class activation map for ${task} = ${c.label}`;
      cf.append(ci, el("figcaption", null, `CAM ${TASK_NAMES[task] || task}: ${c.label}`));
      row.append(cf);
    }
    list.append(row);
  }
}

/* ------------------------------------------------------------------ helpers */

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function stem(name) {
  const i = name.lastIndexOf(".");
  return (i > 0 ? name.slice(0, i) : name) || "image";
}

function download(name, data) {
  const blob = new Blob([JSON.stringify(data, null, 2) + "\n"], { type: "application/json" });
  const a = el("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function updateButtons() {
  const done = state.jobs.filter((j) => j.result);
  $("#download-all").disabled = done.length === 0;
  $("#clear").disabled = state.jobs.length === 0 || state.running > 0;
}

/* ------------------------------------------------------------------ wiring */

function wire() {
  const input = $("#file-input");
  input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
  const dz = $("#dropzone");
  for (const ev of ["dragenter", "dragover"]) {
    dz.addEventListener(ev, (e) => { e.preventDefault(); dz.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    dz.addEventListener(ev, (e) => { e.preventDefault(); dz.classList.remove("over"); });
  }
  dz.addEventListener("drop", (e) => {
    const files = [...(e.dataTransfer ? e.dataTransfer.files : [])].filter((f) => f.type.startsWith("image/") || !f.type);
    if (files.length) addFiles(files);
  });
  // a photo dropped anywhere else should not make the browser navigate away
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("#download-all").addEventListener("click", () =>
    download("salface-results.json", state.jobs.filter((j) => j.result).map((j) => j.result)));
  $("#clear").addEventListener("click", () => {
    state.jobs = state.jobs.filter((j) => ["queued", "analyzing"].includes(j.card.dataset.status));
    $("#results").replaceChildren(...state.jobs.map((j) => j.card));
    updateButtons();
  });
}

wire();
loadServerInfo();
