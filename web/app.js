// Atlas map page: Leaflet shows server-rendered tiles; labels, points and panels sit on top.
// Dataset text is only ever put into the page with textContent, never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="atlas-token"]').content;  // the server's write secret
const POINT_LIMIT = 3000;   // draw markers once the view holds at most this many points
const WORLD = 256;          // the map's square world spans 256 units at zoom 0

const page = { info: null, topics: [], byId: new Map(), map: null, project: null,
               pointLayer: null, resultLayer: null, selectedTopic: null, loading: true };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;  // CSSOM: the CSP forbids style attributes
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// Every API call: a GET, or a POST of `body` as JSON. The status is checked before the body is
// read; a failure throws the server's JSON `error`, or the status for any other body.
async function request(url, body) {
  const response = await fetch(url, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json", "X-Atlas-Token": TOKEN }, body: JSON.stringify(body) });
  if (!response.ok) {
    const json = (response.headers.get("content-type") || "").includes("application/json");
    const message = json ? await response.json().then((b) => b.error, () => null) : null;
    throw new Error(message || `${response.status} ${response.statusText}`.trim());
  }
  return response;
}

const getJSON = async (url) => (await request(url)).json();
const send = async (url, body = {}) => (await request(url, body)).json();

// Run one user action; if it fails, its message shows in the element `box` beside the control
// that started it, until the next action there clears it.
async function act(box, action) {
  const node = document.getElementById(box);
  node.textContent = node.title = "";
  try {
    return await action();
  } catch (e) {
    node.textContent = node.title = e.message;
    return undefined;
  }
}

// Data coordinates <-> Leaflet's CRS.Simple (lat = -pixel y, lng = pixel x at zoom 0).
function makeProjection([x0, y0, size]) {
  return {
    toLatLng: (x, y) => L.latLng(-(y0 + size - y) / size * WORLD, (x - x0) / size * WORLD),
    toData: (ll) => [x0 + ll.lng / WORLD * size, y0 + size + ll.lat / WORLD * size],
  };
}

function dataBounds([xmin, ymin, xmax, ymax]) {
  return L.latLngBounds(page.project.toLatLng(xmin, ymin), page.project.toLatLng(xmax, ymax));
}

async function init() {
  const [info, topics] = await Promise.all([getJSON("api/map"), getJSON("api/topics")]);
  page.info = info;
  page.topics = topics;
  topics.forEach((t) => page.byId.set(t.topic_id, t));
  page.project = makeProjection(info.world);
  document.getElementById("title").textContent = `Atlas · ${info.name}`;
  document.getElementById("summary").textContent =
    `${info.records.toLocaleString()} records · ${info.topics_per_level.join(" / ")} topics · ${info.embedder}`;
  if (!info.semantic_search) document.querySelector('#mode option[value="semantic"]').disabled = true;

  const map = L.map("map", { crs: L.CRS.Simple, minZoom: -2, maxZoom: info.max_zoom + 2,
                             zoomSnap: 0.25, zoomDelta: 0.5, wheelPxPerZoomLevel: 90,
                             preferCanvas: true, attributionControl: false });
  page.map = map;
  loadTiles();
  page.pointLayer = L.layerGroup().addTo(map);
  page.resultLayer = L.layerGroup().addTo(map);
  page.labels = el("div", { class: "topic-labels" });
  map.getContainer().append(page.labels);
  addResetControl(map);
  resetView();
  map.on("zoomend moveend", () => { drawLabels(); act("map-error", loadPoints); });
  map.on("zoomstart movestart", () => page.labels.replaceChildren());
  buildTree();
  drawLabels();
  pollLabels();
  await loadPoints();
}

// ---- names arriving: while the local LLM names topics, poll its progress and take up new names ----
const LABELS_POLL_MS = 2000;
async function pollLabels() {
  let status;
  try {
    status = await getJSON("api/labels-status");
    if (status.state !== "none" && status.version !== page.labelsVersion) await refreshLabels();
  } catch {
    setTimeout(pollLabels, LABELS_POLL_MS);  // the server was busy or restarting: ask again
    return;
  }
  page.labelsVersion = status.version;
  const note = document.getElementById("labels-note");
  const naming = status.state === "naming" || status.state === "waiting";
  note.hidden = !naming && status.state !== "stopped";
  note.textContent = status.state === "stopped"
    ? `naming stopped at ${status.done}/${status.total}: run \`atlas relabel\` to finish`
    : `naming topics: ${status.done}/${status.total}`;
  note.dataset.state = status.state;  // set once the names of this state are drawn
  if (naming) setTimeout(pollLabels, LABELS_POLL_MS);
}

async function refreshLabels() {
  const topics = await getJSON("api/topics");
  for (const t of topics) {
    Object.assign(page.byId.get(t.topic_id), { label: t.label, description: t.description, label_source: t.label_source });
    document.querySelectorAll(`.tree [data-topic="${t.topic_id}"] > .name`).forEach((n) => { n.textContent = t.label; });
  }
  drawLabels();
}

// A new tile layer for each edit seq or filter (tileUrl), swapped in once it has
// loaded: no flash of an empty map. (TileLayer.setUrl would request fractional zoom levels.)
function loadTiles() {
  const old = page.tiles;
  const tiles = L.tileLayer(tileUrl(), {
    tileSize: 256, noWrap: true, minNativeZoom: 0, maxNativeZoom: page.info.max_zoom,
    bounds: L.latLngBounds([-WORLD, 0], [0, WORLD]), keepBuffer: 4, updateWhenZooming: false,
  });
  page.tiles = tiles;
  tiles.on("loading", () => setLoading(true));
  tiles.on("load", () => {
    if (old && page.map.hasLayer(old)) page.map.removeLayer(old);
    if (page.tiles === tiles) setLoading(false);
  });
  tiles.addTo(page.map).bringToBack();
}

function setLoading(loading) {
  page.loading = loading;
  document.getElementById("loading").hidden = !loading;
}

function resetView() {
  page.map.fitBounds(dataBounds(page.info.extent), { animate: false });
  page.fitZoom = page.map.getZoom();
}

function addResetControl(map) {
  const Reset = L.Control.extend({
    onAdd: () => {
      const button = el("button", { class: "reset-view", title: "show the whole map", text: "Reset view",
                                    onclick: (e) => { e.stopPropagation(); resetView(); } });
      L.DomEvent.disableClickPropagation(button);
      return button;
    },
  });
  new Reset({ position: "topleft" }).addTo(map);
}

// ---- labels: one level per zoom band, biggest first, never overlapping ----
function levelForZoom(zoom) {
  const deeper = Math.floor((zoom - page.fitZoom) / 1.5 + 0.5);
  return Math.max(0, Math.min(page.info.levels - 1, deeper));
}

function drawLabels() {
  const map = page.map;
  const level = levelForZoom(map.getZoom());
  const size = map.getSize();
  const candidates = page.topics.filter((t) => t.level === level).sort((a, b) => b.size - a.size);
  const biggest = candidates.length ? candidates[0].size : 1;
  const placed = [];
  const nodes = [];
  for (const t of candidates) {
    const p = map.latLngToContainerPoint(page.project.toLatLng(t.x, t.y));
    const font = Math.round(11 + 9 * Math.sqrt(t.size / biggest));
    const w = t.label.length * font * 0.56 + 6, h = font * 1.3;
    const box = [p.x - w / 2, p.y - h / 2, p.x + w / 2, p.y + h / 2];
    if (box[0] < 0 || box[1] < 0 || box[2] > size.x || box[3] > size.y) continue;  // fully in view only
    if (placed.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) continue;
    placed.push(box);
    nodes.push(el("div", { class: "topic-label", text: t.label, title: `${t.label} · ${t.size.toLocaleString()} records\n${t.description || ""}`,
                           "data-topic": t.topic_id, "data-level": t.level,
                           style: `left:${p.x}px;top:${p.y}px;font-size:${font}px`,
                           onclick: () => selectTopic(t.topic_id, true) }));
  }
  page.labels.replaceChildren(...nodes);
}

// ---- points: markers once few enough are in view ----
let pointsRequest = 0;
async function loadPoints() {
  const b = page.map.getBounds();
  const [x0, y0] = page.project.toData(b.getSouthWest());
  const [x1, y1] = page.project.toData(b.getNorthEast());
  const id = ++pointsRequest;
  const body = await getJSON(`api/points?x0=${x0}&y0=${y0}&x1=${x1}&y1=${y1}&limit=${POINT_LIMIT}&sample=false`);
  if (id !== pointsRequest) return;  // a newer view is already loading
  page.pointLayer.clearLayers();
  for (const p of body.points) {
    const t = page.byId.get(p.topics[p.topics.length - 1]);
    const marker = L.circleMarker(page.project.toLatLng(p.x, p.y), {
      radius: 5, weight: 1, color: "#fff", fillColor: t ? t.color : "#555", fillOpacity: 0.9 });
    marker.bindTooltip(el("div", { class: "snippet-tip", text: p.snippet }), { direction: "top", sticky: true });
    marker.on("click", () => showRecord(p.id));
    marker.addTo(page.pointLayer);
  }
  page.map.getContainer().dataset.points = body.points.length;
}

// ---- the record panel ----
function showRecord(id) {
  const panel = document.getElementById("record");
  panel.hidden = false;
  page.map.invalidateSize();
  return act("record-error", async () => {
    document.getElementById("record-body").replaceChildren();
    fillRecord(await getJSON(`api/records/${encodeURIComponent(id)}`));
  });
}

function fillRecord(r) {
  const body = document.getElementById("record-body");
  const rows = Object.entries(r.columns).map(([k, v]) =>
    el("tr", {}, el("td", { text: k }), el("td", { text: typeof v === "string" ? v : JSON.stringify(v) })));
  const path = el("div", { class: "path" }, ...r.topic_path.map((t) =>
    el("span", { text: t.label, style: "cursor:pointer", onclick: () => selectTopic(t.topic_id, true) })));
  const kind = r.duplicate && (r.duplicate.kind === "template" ? "template sibling" : `${r.duplicate.kind} duplicate`);
  const dup = r.duplicate
    ? `${kind}, group ${r.duplicate.group}${r.duplicate.survivor ? " (kept by remove duplicates)" : " (removed by remove duplicates)"}`
    : "no duplicate";
  const neighbors = el("ol", { class: "neighbors" }, ...r.neighbors.map((n) =>
    el("li", { onclick: () => flyToPoint(n) }, el("span", { class: "sim", text: n.similarity.toFixed(3) }),
       el("span", { text: n.snippet }))));
  body.replaceChildren(
    el("h3", { text: "Text" }), el("div", { class: "text", text: r.text }),
    el("h3", { text: "Topic" }), path,
    el("div", { class: "desc", text: page.byId.get(r.topic_path.at(-1).topic_id)?.description || "" }),
    el("h3", { text: "Duplicates" }), el("div", { text: dup + (r.outlier ? " · outlier of its topic" : "") }),
    el("h3", { text: "Nearest neighbours (embedding space)" }), neighbors,
    el("h3", { text: "Columns" }), el("table", {}, ...rows));
}

function flyToPoint(p) {
  page.map.flyTo(page.project.toLatLng(p.x, p.y), Math.max(page.map.getZoom(), page.fitZoom + 4));
  showRecord(p.id);
}

// ---- topic tree ----
function buildTree() {
  const children = new Map();
  for (const t of page.topics) {
    const key = t.parent_id === null ? "root" : t.parent_id;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(t);
  }
  const node = (t) => {
    const label = [el("span", { class: "swatch", style: `background:${t.color}` }), el("span", { class: "name", text: t.label }),
                   el("span", { class: "count", text: `${t.size.toLocaleString()} · ${(100 * t.share).toFixed(1)}%` })];
    const kids = (children.get(t.topic_id) || []).sort((a, b) => b.size - a.size);
    const desc = t.description ? [el("div", { class: "desc", text: t.description })] : [];
    label.push(el("button", { class: "select-topic", title: "select this topic (shift-click a topic adds it, alt-click subtracts)",
                              text: "select", onclick: (e) => { e.preventDefault(); e.stopPropagation(); topicSelection(t.topic_id, "replace"); } }));
    if (!kids.length) return el("div", { class: "leaf", "data-topic": t.topic_id, title: t.description || "",
                                         onclick: (e) => topicClick(e, t.topic_id) }, ...label);
    const summary = el("summary", { "data-topic": t.topic_id, onclick: (e) => topicClick(e, t.topic_id) }, ...label);
    return el("details", {}, summary, ...desc, ...kids.map(node));
  };
  const roots = (children.get("root") || []).sort((a, b) => b.size - a.size);
  document.getElementById("tree").replaceChildren(el("div", { class: "tree" }, ...roots.map(node)));
}

function selectTopic(id, fly) {
  const t = page.byId.get(id);
  document.querySelectorAll(".tree .selected").forEach((n) => n.classList.remove("selected"));
  const entry = document.querySelector(`.tree [data-topic="${id}"]`);
  if (entry) {
    for (let p = entry.parentElement; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
    entry.classList.add("selected");
    entry.scrollIntoView({ block: "nearest" });
  }
  page.selectedTopic = id;
  if (fly && t) page.map.flyToBounds(dataBounds(t.bbox), { maxZoom: page.info.max_zoom, duration: 0.6 });
}

// ---- search ----
async function search(event) {
  event.preventDefault();
  const q = document.getElementById("query").value.trim();
  if (!q) return;
  const mode = document.getElementById("mode").value;
  const count = document.getElementById("results-count");
  const list = document.getElementById("results-list");
  document.getElementById("results").hidden = false;
  count.textContent = "searching…";
  list.replaceChildren();
  page.resultLayer.clearLayers();
  const body = await act("search-error", () => getJSON(`api/search?q=${encodeURIComponent(q)}&mode=${mode}&limit=100`));
  count.textContent = body ? `${body.results.length} results (${mode})` : "";
  for (const r of body ? body.results : []) {
    list.append(el("li", { onclick: () => flyToPoint(r) }, el("span", { text: r.snippet })));
    L.circleMarker(page.project.toLatLng(r.x, r.y), { radius: 6, weight: 2, color: "#111", fillColor: "#ffd400", fillOpacity: 1 })
      .on("click", () => showRecord(r.id)).addTo(page.resultLayer);
  }
}

document.getElementById("search").addEventListener("submit", search);
document.getElementById("clear-results").addEventListener("click", () => {
  document.getElementById("results").hidden = true;
  page.resultLayer.clearLayers();
});
document.getElementById("close-record").addEventListener("click", () => {
  document.getElementById("record").hidden = true;
  page.map.invalidateSize();
});
init().then(() => initCurate()).catch((e) => { document.getElementById("summary").textContent = `could not load the map: ${e.message}`; });
