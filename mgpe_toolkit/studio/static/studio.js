// mgpe studio: paint a face's label mask and ask the server (mgpe_toolkit/studio/server.py) to edit with it.
// Plain JavaScript, no library: the mask is a Uint8Array of labels, drawn as a coloured overlay.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  const UNDO_LIMIT = 100;
  const state = {
    labels: [], face: null, source: null, size: 256, mask: null, parsed: null, ops: [],
    undo: [], redo: [], tool: "brush", label: 1, last: null, busy: false,
  };
  const canvas = $("#mask-canvas");
  const ctx = canvas.getContext("2d");

  // -- messages and requests ---------------------------------------------------------------------------
  function say(text, isError = false) {
    const el = $("#status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  // Each tab keeps its own faces on the server: another tab's or another person's uploads never push them out.
  const TAB = sessionStorage.getItem("mgpe-tab") || Math.random().toString(36).slice(2, 14);
  sessionStorage.setItem("mgpe-tab", TAB);

  async function request(url, options = {}) {
    let response;
    try {
      response = await fetch(url, { ...options, headers: { ...(options.headers || {}), "X-Mgpe-Tab": TAB } });
    } catch (err) {
      throw new Error("the studio server does not answer: is `mgpe studio` still running?");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  const postJSON = (url, data) =>
    request(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });

  async function busy(message, work) {
    if (state.busy) return;
    state.busy = true;
    document.body.dataset.state = "busy";
    say(message);
    updateButtons();
    try {
      await work();
    } catch (err) {
      say(err.message, true);
    } finally {
      state.busy = false;
      document.body.dataset.state = state.face ? "ready" : "empty";
      updateButtons();
    }
  }

  const decode = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  function encode(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  // -- palette -------------------------------------------------------------------------------------------
  function rgb(hex) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }

  function buildPalette(labels) {
    state.labels = labels.map((l) => ({ ...l, rgb: rgb(l.color) }));
    const palette = $("#palette");
    palette.replaceChildren();
    for (const l of state.labels) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.label = l.index;
      button.title = `${l.index} ${l.name}: ${l.description}`;  // the CLI's name, for --mask-op
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = l.color;
      const index = document.createElement("span");
      index.className = "index";
      index.textContent = l.index;
      const name = document.createElement("span");
      name.textContent = l.title;
      button.append(index, swatch, name);
      button.addEventListener("click", () => setLabel(l.index));
      palette.append(button);
    }
    setLabel(state.label);
  }

  function setLabel(index) {
    state.label = index;
    const l = state.labels[index];
    $("#current-label").textContent = l ? l.title : "";
    $("#current-swatch").style.background = l ? l.color : "";
    for (const b of document.querySelectorAll("#palette button")) b.classList.toggle("on", Number(b.dataset.label) === index);
  }

  function setTool(tool) {
    state.tool = tool;
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("on", b.dataset.tool === tool);
  }

  // -- the mask ------------------------------------------------------------------------------------------
  function draw() {
    if (!state.mask) return;
    const image = ctx.createImageData(state.size, state.size);
    const px = image.data;
    for (let i = 0; i < state.mask.length; i++) {
      const label = state.mask[i];
      if (label === 0) continue; // background stays see-through: the photo shows there
      const c = state.labels[label].rgb;
      px[4 * i] = c[0]; px[4 * i + 1] = c[1]; px[4 * i + 2] = c[2]; px[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
  }

  function snapshot() {
    return { mask: state.mask.slice(), ops: state.ops.slice() };
  }

  function remember() {
    state.undo.push(snapshot());
    if (state.undo.length > UNDO_LIMIT) state.undo.shift();
    state.redo = [];
    updateButtons();
  }

  function restore(from, to) {
    if (!from.length || !state.mask) return;
    to.push(snapshot());
    const s = from.pop();
    state.mask = s.mask;
    state.ops = s.ops;
    draw();
    showOps();
    updateButtons();
  }

  function showOps() {
    $("#ops-list").textContent = state.ops.length ? `ops applied: ${state.ops.join("  ")}` : "";
  }

  function maskPoint(event) {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - r.left) / r.width) * state.size);
    const y = Math.floor(((event.clientY - r.top) / r.height) * state.size);
    return { x: Math.min(state.size - 1, Math.max(0, x)), y: Math.min(state.size - 1, Math.max(0, y)) };
  }

  function stamp(cx, cy) {
    const radius = Number($("#size").value) / 2;
    const n = state.size, r2 = radius * radius;
    const erase = state.tool === "eraser";
    for (let y = Math.max(0, Math.floor(cy - radius)); y <= Math.min(n - 1, Math.ceil(cy + radius)); y++) {
      for (let x = Math.max(0, Math.floor(cx - radius)); x <= Math.min(n - 1, Math.ceil(cx + radius)); x++) {
        const dx = x - cx, dy = y - cy;
        if (dx * dx + dy * dy <= r2 || (radius < 1 && dx === 0 && dy === 0)) {
          const i = y * n + x;
          state.mask[i] = erase ? state.parsed[i] : state.label;
        }
      }
    }
  }

  function strokeTo(p) {
    const from = state.last || p;
    const steps = Math.max(1, Math.ceil(Math.hypot(p.x - from.x, p.y - from.y)));
    for (let s = 1; s <= steps; s++) stamp(from.x + ((p.x - from.x) * s) / steps, from.y + ((p.y - from.y) * s) / steps);
    state.last = p;
    draw();
  }

  function fill(p) {
    const n = state.size, mask = state.mask;
    const start = p.y * n + p.x, old = mask[start];
    if (old === state.label) return;
    remember();
    const stack = [start];
    mask[start] = state.label;
    while (stack.length) { // 4-connected: a region is what touches by its sides
      const i = stack.pop();
      const x = i % n;
      for (const j of [x > 0 ? i - 1 : -1, x < n - 1 ? i + 1 : -1, i - n, i + n]) {
        if (j >= 0 && j < mask.length && mask[j] === old) {
          mask[j] = state.label;
          stack.push(j);
        }
      }
    }
    draw();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!state.mask || state.busy) return;
    event.preventDefault();
    const p = maskPoint(event);
    if (state.tool === "pick") {
      setLabel(state.mask[p.y * state.size + p.x]);
      setTool("brush");
      return;
    }
    if (state.tool === "fill") return fill(p);
    canvas.setPointerCapture(event.pointerId);
    remember();
    state.last = null;
    strokeTo(p);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!state.mask) return;
    const p = maskPoint(event);
    const l = state.labels[state.mask[p.y * state.size + p.x]];
    $("#hover").textContent = `x ${p.x}, y ${p.y}: ${l ? l.title : ""}`;
    if (state.last) strokeTo(p);
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    canvas.addEventListener(type, () => { state.last = null; });
  }

  // -- photos --------------------------------------------------------------------------------------------
  function uploadPhoto(file, role) {
    if (!file) return;
    if (role === "target" && state.undo.length &&
        !window.confirm(`Load ${file.name}? The painting on ${state.face.name} and its undo history will be dropped.`)) {
      return;
    }
    busy(`aligning and parsing ${file.name}…`, async () => {
      // The photo and second photo on screen are held: a tab's ninth upload pushes out an older one, not them.
      const held = [state.face, state.source].filter(Boolean).map((f) => f.id).join(",");
      const face = await request(`/api/faces?name=${encodeURIComponent(file.name)}`,
                                 { method: "POST", body: file, headers: { "X-Mgpe-Held": held } });
      if (role === "source") {
        state.source = face;
        $("#source-thumb").src = face.urls.aligned;
        say(`second photo ${face.name}: ready for swap+ and transfer (${face.seconds.toFixed(2)} s)`);
        return;
      }
      state.face = face;
      $("#result").hidden = true;  // the previous photo's result and downloads are not this photo's
      delete document.body.dataset.result;
      state.size = face.size;
      state.parsed = decode(face.labels);
      state.mask = state.parsed.slice();
      state.ops = [];
      state.undo = [];
      state.redo = [];
      canvas.width = canvas.height = face.size;
      const img = $("#face-img");
      img.src = face.urls.aligned;
      await img.decode().catch(() => {});
      $("#stage").classList.remove("empty");
      draw();
      showOps();
      say(`${face.name}: aligned (${face.stages.align}) and parsed (${face.stages.parse}) in ${face.seconds.toFixed(2)} s; paint, then Generate`);
    });
  }

  $("#photo-input").addEventListener("change", (e) => { uploadPhoto(e.target.files[0], "target"); e.target.value = ""; });
  $("#source-input").addEventListener("change", (e) => { uploadPhoto(e.target.files[0], "source"); e.target.value = ""; });

  // A photo dropped on the second-photo box is the second photo; anywhere else on the page, the photo.
  function dropZone(el, role, shows) {
    el.addEventListener("dragover", (e) => { e.preventDefault(); e.stopPropagation(); shows.classList.add("dragging"); });
    el.addEventListener("dragleave", () => shows.classList.remove("dragging"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      e.stopPropagation();
      shows.classList.remove("dragging");
      uploadPhoto(e.dataTransfer.files[0], role);
    });
  }
  dropZone($("#source-box"), "source", $("#source-box"));
  dropZone(document, "target", $("#stage"));

  // -- ops, undo, reset ----------------------------------------------------------------------------------
  // The ops typed in the box, applied to the shown mask (and the box emptied); Generate applies them too.
  async function applyTypedOps() {
    const ops = $("#ops").value.split(/[\s;]+/).filter(Boolean);
    if (!ops.length || !state.face) return;
    const out = await postJSON(`/api/faces/${state.face.id}/ops`, { labels: encode(state.mask), ops });
    remember();
    state.mask = decode(out.labels);
    state.ops = state.ops.concat(ops);
    $("#ops").value = "";
    draw();
    showOps();
    say(`applied ${ops.join(" ")}: ${out.changed} pixels changed`);
  }

  $("#ops-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy("applying the ops…", applyTypedOps);
  });

  $("#undo").addEventListener("click", () => restore(state.undo, state.redo));
  $("#redo").addEventListener("click", () => restore(state.redo, state.undo));
  $("#reset").addEventListener("click", () => {
    if (!state.mask) return;
    remember();
    state.mask = state.parsed.slice();
    state.ops = [];
    draw();
    showOps();
    say("back to the parsed mask");
  });

  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));
  const size = $("#size"), opacity = $("#opacity");
  size.addEventListener("input", () => { $("#size-out").textContent = size.value; });
  opacity.addEventListener("input", () => {
    canvas.style.opacity = opacity.value / 100;
    $("#opacity-out").textContent = `${opacity.value}%`;
  });

  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input[type=text]")) return;
    const key = event.key.toLowerCase();
    const mod = event.ctrlKey || event.metaKey;
    if (mod && key === "z") { event.preventDefault(); event.shiftKey ? restore(state.redo, state.undo) : restore(state.undo, state.redo); }
    else if (mod && key === "y") { event.preventDefault(); restore(state.redo, state.undo); }
    else if (mod) return;
    else if (key === "b") setTool("brush");
    else if (key === "e") setTool("eraser");
    else if (key === "f") setTool("fill");
    else if (key === "i") setTool("pick");
    else if (key === "[" || key === "]") {
      size.value = Number(size.value) + (key === "]" ? 2 : -2);
      size.dispatchEvent(new Event("input"));
    }
  });

  // -- generate, swap+, transfer -------------------------------------------------------------------------
  function updateButtons() {
    const ready = !!state.face && !state.busy;
    $("#generate").disabled = $("#apply-ops").disabled = $("#reset").disabled = !ready;
    $("#undo").disabled = !state.undo.length;
    $("#redo").disabled = !state.redo.length;
    $("#swap").disabled = $("#transfer").disabled = !(ready && state.source);
    $("#components").disabled = !state.source;
  }

  async function showResult(result) {
    const images = { "#before-aligned": result.before.aligned, "#after-aligned": result.after.aligned,
                     "#before-photo": result.before.photo, "#after-photo": result.after.pasted };
    const loads = Object.entries(images).map(([sel, url]) => { const img = $(sel); img.src = url; return img.decode().catch(() => {}); });
    const links = { "#dl-result": "result.png", "#dl-aligned": "aligned.png", "#dl-mask": "mask.png",
                    "#dl-preview": "mask.preview.png", "#dl-recipe": "recipe.txt" };
    for (const [sel, name] of Object.entries(links)) {
      const a = $(sel), d = result.downloads[name];
      a.href = d.url;
      a.download = d.filename;
    }
    const stages = Object.entries(result.stages).map(([k, v]) => `${k} ${v}`).join(", ");
    $("#time").textContent = `${result.kind} in ${result.seconds.toFixed(2)} s (${stages})`;
    $("#notes").replaceChildren(...result.notes.map((n) => { const li = document.createElement("li"); li.textContent = n; return li; }));
    $("#recipe").textContent = result.recipe;
    $("#result").hidden = false;
    await Promise.all(loads);
    document.body.dataset.result = result.id; // the page shows this result, images loaded
    say(`${result.kind} done in ${result.seconds.toFixed(2)} s`);
  }

  $("#generate").addEventListener("click", () => busy("generating…", async () => {
    await applyTypedOps();
    await showResult(await postJSON(`/api/faces/${state.face.id}/edit`, { labels: encode(state.mask), ops: state.ops }));
  }));
  $("#swap").addEventListener("click", () => busy("swap+…", async () => {
    await showResult(await postJSON("/api/swap", { target: state.face.id, source: state.source.id }));
  }));
  $("#transfer").addEventListener("click", () => {
    const components = [...document.querySelectorAll("input[name=component]:checked")].map((c) => c.value);
    busy(`transferring ${components.join(", ")}…`, async () => {
      await showResult(await postJSON("/api/transfer", { target: state.face.id, source: state.source.id, components }));
    });
  });

  // -- start ---------------------------------------------------------------------------------------------
  request("/api/info").then((info) => {
    buildPalette(info.labels);
    $("#ops").title = `names: ${info.names.join(", ")}; regions: ${info.regions.join(", ")} or x0:x1,y0:y1`;
    document.body.dataset.app = "ready";
  }).catch((err) => say(err.message, true));
})();
