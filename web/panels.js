// The duplicates and balance panels. Uses app.js (page, el, getJSON, send, act) and curate.js (edit, bars).
"use strict";

const dups = { prefer: new Map(), timer: null, group: null };  // prefer: group -> id kept instead

function initPanels() {
  const onDuplicates = (action) => () => act("dup-error", action);  // errors show in the panel that failed
  const onBalance = (action) => () => act("balance-error", action);
  for (const id of ["near", "semantic"]) {
    document.getElementById(id).addEventListener("input", () => {
      document.getElementById(`${id}-value`).textContent = document.getElementById(id).value;
      clearTimeout(dups.timer);
      dups.timer = setTimeout(onDuplicates(refreshDuplicates), 150);
    });
  }
  document.getElementById("keep-rule").addEventListener("change", onDuplicates(refreshDuplicates));
  document.getElementById("dup-kinds").addEventListener("change", (event) => {
    if (!document.querySelector("#dup-kinds input:checked")) event.target.checked = true;  // at least one kind
    onDuplicates(refreshDuplicates)();
  });
  document.getElementById("duplicates-panel").addEventListener("toggle", (e) => e.target.open && onDuplicates(refreshDuplicates)());
  document.getElementById("balance-panel").addEventListener("toggle", (e) => e.target.open && onBalance(refreshBalance)());
  document.getElementById("remove-duplicates").addEventListener("click", onDuplicates(removeDuplicates));
  document.getElementById("close-group").addEventListener("click", () => { document.getElementById("group-view").hidden = true; });
  const levels = [...Array(page.info.levels).keys()].map((l) => el("option", { value: l, text: l }));
  document.getElementById("balance-level").replaceChildren(...levels);
  document.getElementById("balance-level").addEventListener("change", onBalance(refreshBalance));
  document.getElementById("preview-quota").addEventListener("click", onBalance(previewQuota));
  document.getElementById("apply-quota").addEventListener("click", onBalance(applyQuota));
  for (const id of ["quota-kind", "quota-value", "quota-seed"]) {
    document.getElementById(id).addEventListener("input", () => { document.getElementById("apply-quota").disabled = true; });
  }
}

function refreshPanels() {
  return Promise.all([document.getElementById("duplicates-panel").open ? refreshDuplicates() : null,
                      document.getElementById("balance-panel").open ? refreshBalance() : null]);
}

function fillKeepRules(columns) {
  const rules = ["longest", "shortest", "first", ...columns.filter((c) => c.numeric).flatMap((c) => [`max:${c.name}`, `min:${c.name}`])];
  document.getElementById("keep-rule").replaceChildren(...rules.map((r) => el("option", { value: r, text: r })));
}

// ---- duplicates ----
function duplicateRule() {
  const kinds = [...document.querySelectorAll("#dup-kinds input:checked")].map((box) => box.value);
  const rule = { keep: document.getElementById("keep-rule").value || "longest", prefer: [...dups.prefer.values()], kinds };
  for (const id of ["near", "semantic"]) {
    const input = document.getElementById(id);
    if (input.dataset.ready) rule[`${id}_threshold`] = Number(input.value);
  }
  return rule;
}

function duplicateQuery(rule) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(rule)) for (const one of [v].flat()) params.append(k, one);
  return params;
}

async function refreshDuplicates() {
  const rule = duplicateRule();
  const d = await getJSON(`api/duplicates?${duplicateQuery(rule)}&limit=50`);
  for (const id of ["near", "semantic"]) {
    const input = document.getElementById(id);
    if (!input.dataset.ready) {
      input.min = d.built[`${id}_threshold`];
      input.value = input.min;
      input.dataset.ready = "1";
      document.getElementById(`${id}-value`).textContent = input.value;
    }
  }
  const kinds = Object.entries(d.by_kind).filter(([k]) => d.kinds.includes(k)).map(([k, n]) => `${n} ${k}`).join(", ");
  const summary = document.getElementById("dup-summary");
  summary.dataset.groups = d.groups;
  summary.dataset.removable = d.removable_kept;
  const templates = d.kinds.includes("template") ? "" :
    `; ${d.pairs_by_kind.template.toLocaleString()} template pairs (texts that name different things) are kept`;
  summary.textContent = `${d.groups.toLocaleString()} groups (${kinds}); removing duplicates takes ` +
    `${d.removable_kept.toLocaleString()} kept records${templates}`;
  document.getElementById("dup-groups").replaceChildren(...d.largest.map((g) =>
    el("li", { onclick: () => act("dup-error", () => openGroup(g.group)) },
       el("span", { class: "sim", text: `${g.size} · ${g.kind}` }), el("span", { text: g.survivor }))));
  if (dups.group !== null && !document.getElementById("group-view").hidden) await openGroup(dups.group);
}

async function openGroup(group) {
  dups.group = group;
  const g = await getJSON(`api/duplicates/${group}?${duplicateQuery(duplicateRule())}`);
  document.getElementById("group-title").textContent = `Group ${group}: ${g.members.length} members`;
  document.getElementById("group-members").replaceChildren(...g.members.map((m) =>
    el("div", { class: `member${m.survivor ? " survivor" : ""}${m.removed ? " removed" : ""}` },
       el("div", { class: "member-head" },
          el("strong", { text: m.id }), el("span", { class: "sim", text: ` ${m.text_len} chars${m.removed ? " · removed" : ""}` }),
          ...(m.replaced_by ? [el("span", { class: "sim", text: `→ ${m.replaced_by.id} (${m.replaced_by.kind})`, title: "the record kept in its place, and their kind of pair" })] : []),
          m.survivor ? el("span", { class: "keeps", text: "kept" })
            : el("button", { text: "keep this", onclick: () => { dups.prefer.set(group, m.id); act("dup-error", refreshDuplicates); } })),
       el("div", { class: "text", text: m.text }))));
  document.getElementById("group-view").hidden = false;
}

async function removeDuplicates() {
  await edit("remove", { duplicates: duplicateRule() });
  dups.prefer.clear();
}

// ---- balance ----
function quotaSpec() {
  const kind = document.getElementById("quota-kind").value;
  return { level: Number(document.getElementById("balance-level").value || 0),
           seed: Number(document.getElementById("quota-seed").value || 0),
           [kind]: Number(document.getElementById("quota-value").value) };
}

async function refreshBalance() {
  const b = await getJSON(`api/balance?level=${document.getElementById("balance-level").value || 0}`);
  document.getElementById("balance-status").textContent = `${b.kept.toLocaleString()} kept records, share per topic`;
  document.getElementById("balance-bars").replaceChildren(bars(b.topics.map((t) =>
    ({ ...topicBar(t), label: `${t.label} (${(100 * t.share).toFixed(1)}%)` }))));
  document.getElementById("apply-quota").disabled = true;
}

async function previewQuota() {
  const status = document.getElementById("balance-status");
  const p = await send("api/balance/preview", quotaSpec());
  status.textContent = `${p.before.toLocaleString()} → ${p.after.toLocaleString()} kept; removes ${p.remove.toLocaleString()}`;
  status.dataset.remove = p.remove;
  const rows = p.topics.map((t) => el("tr", {}, el("td", { text: t.label }),
    el("td", { class: "n", text: `${(100 * t.share_before).toFixed(1)}%` }),
    el("td", { class: "n", text: `${(100 * t.share_after).toFixed(1)}%` }),
    el("td", { class: "n", text: `${t.before} → ${t.after}` })));
  document.getElementById("balance-bars").replaceChildren(el("table", { class: "preview" },
    el("tr", {}, ...["topic", "before", "after", "records"].map((h) => el("th", { text: h }))), ...rows));
  document.getElementById("apply-quota").disabled = false;
}

async function applyQuota() {
  document.getElementById("apply-quota").disabled = true;
  await edit("remove", { quota: quotaSpec() });
}
