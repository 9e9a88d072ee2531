// Curation on the map page: lasso/box selection, the filter and its histograms, the selection
// panel, edits with undo/redo, the kept counter and export. Uses `page`, `el`, `request`, `getJSON`,
// `send` and `act` from app.js.
"use strict";

const ROW = 38;              // px per row in the virtualised selection list
const cur = { editSeq: 0, where: "", steps: [], sample: [], tool: null, shapes: null, drawing: null };

function tileUrl() {
  const where = cur.where ? `&where=${encodeURIComponent(cur.where)}` : "";
  return `tiles/{z}/{x}/{y}.png?v=${page.info.build_id}.${cur.editSeq}${where}`;
}

async function initCurate() {
  cur.shapes = L.layerGroup().addTo(page.map);
  addToolbar(page.map);
  page.map.on("mousedown", startDrawing);
  page.map.on("mousemove", (e) => cur.drawing && cur.drawing.move(e.latlng));
  page.map.on("mouseup", finishDrawing);
  const levels = [...Array(page.info.levels).keys()].map((l) => el("option", { value: l, text: l }));
  document.getElementById("hist-level").replaceChildren(...levels);
  document.getElementById("selection-list").addEventListener("scroll", drawSampleRows);
  applyEditState(await getJSON("api/state"));
  await refreshFilter();
  initPanels();
}

// ---- the edit state: header counter, undo/redo, tiles ----
function applyEditState(s) {
  const changed = s.edit_seq !== cur.editSeq;
  cur.editSeq = s.edit_seq;
  const counter = document.getElementById("kept-count");
  counter.dataset.kept = s.kept;
  counter.dataset.removed = s.removed;
  counter.textContent = `${s.kept.toLocaleString()} kept · ${s.removed.toLocaleString()} removed`;
  document.getElementById("undo").disabled = !s.can_undo;
  document.getElementById("redo").disabled = !s.can_redo;
  if (changed && page.tiles) loadTiles();
  return changed;
}

async function edit(action, predicate, extra = {}) {
  const reason = document.getElementById("reason").value.trim();
  const s = await send("api/edits", { action, predicate, reason, ...extra });
  await afterEdit(s);
  return s;
}

async function step(action) {
  await afterEdit(await send(`api/${action}`));
}

async function afterEdit(s) {
  applyEditState(s);
  await Promise.all([refreshFilter(), cur.steps.length ? refreshSelection() : null, refreshPanels()]);
}

// ---- drawing a lasso or a box ----
function addToolbar(map) {
  const Tools = L.Control.extend({
    onAdd: () => {
      const bar = el("div", { class: "tools" }, ...[["pan", "Pan"], ["lasso", "Lasso"], ["box", "Box"]].map(([tool, text]) =>
        el("button", { "data-tool": tool, text, title: `${text} (shift adds to the selection, alt subtracts)`,
                       onclick: (e) => { e.stopPropagation(); setTool(tool === "pan" ? null : tool); } })));
      L.DomEvent.disableClickPropagation(bar);
      return bar;
    },
  });
  new Tools({ position: "topleft" }).addTo(map);
  setTool(null);
}

function setTool(tool) {
  cur.tool = tool;
  document.querySelectorAll(".tools button").forEach((b) =>
    b.classList.toggle("active", b.dataset.tool === (tool || "pan")));
  const map = page.map;
  if (tool) { map.dragging.disable(); map.boxZoom.disable(); } else { map.dragging.enable(); map.boxZoom.enable(); }
  map.getContainer().classList.toggle("drawing", Boolean(tool));
}

function startDrawing(e) {
  if (!cur.tool || e.originalEvent.button !== 0) return;
  const mods = e.originalEvent;
  const op = mods.shiftKey ? "add" : mods.altKey ? "subtract" : "replace";
  const points = [e.latlng];
  const style = { color: op === "subtract" ? "#c0392b" : "#1f5fd6", weight: 2, fillOpacity: 0.08 };
  const shape = cur.tool === "lasso" ? L.polygon(points, style) : L.rectangle(L.latLngBounds(e.latlng, e.latlng), style);
  shape.addTo(cur.shapes);
  cur.drawing = {
    op, shape, points,
    move: (ll) => {
      if (cur.tool === "lasso") { points.push(ll); shape.setLatLngs(points); } else { points[1] = ll; shape.setBounds(L.latLngBounds(points[0], ll)); }
    },
  };
}

async function finishDrawing() {
  const d = cur.drawing;
  if (!d) return;
  cur.drawing = null;
  const xy = d.points.map((ll) => page.project.toData(ll));
  let source;
  if (cur.tool === "lasso" && xy.length >= 3) source = { polygon: xy };
  else if (cur.tool === "box" && xy.length === 2) source = { box: [...xy[0], ...xy[1]] };
  else { cur.shapes.removeLayer(d.shape); return; }
  if (d.op === "replace") cur.shapes.eachLayer((l) => l !== d.shape && cur.shapes.removeLayer(l));
  await act("selection-error", () => addStep(d.op, source));
}

// ---- the selection ----
async function addStep(op, source) {
  const stepSpec = { op, ...source };
  cur.steps = op === "replace" ? [stepSpec] : [...cur.steps, stepSpec];
  if (op === "replace" && !source.polygon && !source.box) cur.shapes.clearLayers();
  await refreshSelection();
}

function topicClick(e, id) {
  if (e.shiftKey || e.altKey) {
    e.preventDefault();
    topicSelection(id, e.shiftKey ? "add" : "subtract");
  } else selectTopic(id, true);
}

function topicSelection(id, op) {
  selectTopic(id, false);
  return act("selection-error", () => addStep(op, { topic: id }));
}

async function refreshSelection() {
  const panel = document.getElementById("selection-panel");
  const count = document.getElementById("selection-count");
  if (!cur.steps.length) {
    count.textContent = "";
    count.dataset.count = 0;
    cur.sample = [];
    document.getElementById("selection-topics").replaceChildren();
    drawSampleRows();
    return;
  }
  const s = await send("api/select", { steps: cur.steps });
  panel.open = true;
  count.dataset.count = s.count;
  count.textContent = `${s.count.toLocaleString()} records (${s.kept.toLocaleString()} kept)`;
  const fine = s.topics[s.topics.length - 1];
  document.getElementById("selection-topics").replaceChildren(
    bars(s.topics[0].topics.slice(0, 8).map(topicBar)),
    ...(s.topics.length > 1 ? [el("div", { class: "sub", text: `${fine.topics.length} fine topics` })] : []));
  cur.sample = s.sample;
  const list = document.getElementById("selection-list");
  list.firstElementChild.style.height = `${s.sample.length * ROW}px`;
  list.scrollTop = 0;
  drawSampleRows();
}

function drawSampleRows() {
  const list = document.getElementById("selection-list");
  const first = Math.floor(list.scrollTop / ROW);
  const last = Math.min(cur.sample.length, first + Math.ceil(list.clientHeight / ROW) + 2);
  const rows = [];
  for (let i = first; i < last; i++) {
    const p = cur.sample[i];
    rows.push(el("div", { class: "vrow", style: `top:${i * ROW}px`, title: p.snippet, text: p.snippet,
                          onclick: () => flyToPoint(p) }));
  }
  list.firstElementChild.replaceChildren(...rows);
}

function clearSelection() {
  cur.steps = [];
  cur.shapes.clearLayers();
  return act("selection-error", refreshSelection);
}

function selectionEdit(action) {
  return act("selection-error", () => {
    if (!cur.steps.length) throw new Error("select records first: lasso or box on the map, or shift-click a topic");
    const tag = action === "tag" ? document.getElementById("tag-name").value.trim() : "";
    return edit(action, { select: cur.steps }, tag ? { tag } : {});
  });
}

// ---- the filter and its histograms ----
async function refreshFilter(where = cur.where) {
  const status = document.getElementById("filter-status");
  const level = document.getElementById("hist-level").value || 0;
  const column = document.getElementById("hist-column").value;
  const params = new URLSearchParams({ level, ...(where ? { where } : {}), ...(column ? { column } : {}) });
  const f = await getJSON(`api/filter?${params}`);
  status.textContent = where ? `${f.kept.toLocaleString()} kept records match (${f.matched.toLocaleString()} with removed)`
                             : `${f.kept.toLocaleString()} kept records`;
  status.dataset.kept = f.kept;
  fillColumns(f.columns);
  document.getElementById("histograms").replaceChildren(el("div", { class: "sub", text: "text length (characters)" }),
                                                        histogram(f.text_len));
  document.getElementById("hist-topics").replaceChildren(bars(f.topics.topics.slice(0, 12).map(topicBar)));
  const c = f.column;
  document.getElementById("hist-column-bars").replaceChildren(...(!c ? [] : c.kind === "numeric" ? [histogram(c.bins)]
    : [bars(c.values.map((v) => ({ label: String(v.value), count: v.count })))]));
}

function fillColumns(columns) {
  const select = document.getElementById("hist-column");
  if (select.options.length > 1) return;
  select.append(...columns.map((c) => el("option", { value: c.name, text: c.name })));
  page.columns = columns;
  fillKeepRules(columns);
}

function applyFilter(event) {
  event.preventDefault();
  const where = document.getElementById("filter").value.trim();
  return act("filter-error", async () => {
    await refreshFilter(where);  // a bad filter throws here: the map and the export keep the last one that worked
    cur.where = where;
    loadTiles();
  });
}

// Export the kept records (under the current filter): fetched first, so a server error shows
// as an error beside the button instead of downloading as the file.
async function exportKept() {
  const response = await request(`api/export.parquet${cur.where ? `?where=${encodeURIComponent(cur.where)}` : ""}`);
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  el("a", { href: url, download: name ? name[1] : "export.parquet" }).click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function topicBar(t) {
  const topic = page.byId.get(t.topic_id);
  return { label: t.label, count: t.count, color: topic ? topic.color : "#889" };
}

// Horizontal bars: label, bar, count. Labels go in with textContent.
function bars(rows) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  return el("div", { class: "bars" }, ...rows.map((r) => el("div", { class: "bar-row", title: `${r.label}: ${r.count}` },
    el("span", { class: "bar-label", text: r.label }),
    el("span", { class: "bar", style: `width:${(100 * r.count / max).toFixed(1)}%;background:${r.color || "#5b7bd5"}` }),
    el("span", { class: "bar-count", text: r.count.toLocaleString() }))));
}

// A vertical histogram as inline SVG.
function histogram(bins) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const w = 300, h = 60, max = Math.max(1, ...bins.map((b) => b.count));
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 12}`);
  svg.setAttribute("class", "histogram");
  bins.forEach((b, i) => {
    const rect = document.createElementNS(ns, "rect");
    const bh = h * b.count / max;
    Object.entries({ x: i * w / bins.length + 0.5, y: h - bh, width: w / bins.length - 1, height: bh })
      .forEach(([k, v]) => rect.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${Math.round(b.lo)}–${Math.round(b.hi)}: ${b.count}`;
    rect.append(title);
    svg.append(rect);
  });
  if (bins.length) {
    for (const [x, anchor, value] of [[0, "start", bins[0].lo], [w, "end", bins[bins.length - 1].hi]]) {
      const t = document.createElementNS(ns, "text");
      Object.entries({ x, y: h + 11, "text-anchor": anchor }).forEach(([k, v]) => t.setAttribute(k, v));
      t.textContent = Math.round(value).toLocaleString();
      svg.append(t);
    }
  }
  return svg;
}

document.getElementById("filter-form").addEventListener("submit", applyFilter);
document.getElementById("select-filtered").addEventListener("click", () =>
  act("filter-error", () => cur.where && addStep("replace", { where: cur.where })));
for (const id of ["hist-level", "hist-column"]) {
  document.getElementById(id).addEventListener("change", () => act("filter-error", () => refreshFilter()));
}
document.getElementById("undo").addEventListener("click", () => act("header-error", () => step("undo")));
document.getElementById("redo").addEventListener("click", () => act("header-error", () => step("redo")));
document.getElementById("export").addEventListener("click", () => act("header-error", exportKept));
document.getElementById("clear-selection").addEventListener("click", clearSelection);
for (const action of ["tag", "remove", "restore"]) {
  document.getElementById(`${action}-selection`).addEventListener("click", () => selectionEdit(action));
}
