// rewind dashboard, Operations view: what happened around a moment
// (GET /api/v1/oplog?summary=true, drawn as bars per second and
// namespace), the operations of a bar (GET /api/v1/oplog, paged), a
// document's history (GET /api/v1/history), and two actions: restore to
// just before an operation (fills the restore form) and undo a range
// (POST /api/v1/undos: a dry run first, then, confirmed, the undo). It
// uses app.js's helpers ($, api, cell, isoSecond...); data goes into the
// page as text only.
"use strict";

const ops = { lo: 0, hi: 0, pick: null, list: null, undo: null, undoKey: null, defaulted: false };
const OPS_ROWS = 10000; // summary rows asked for at once: the API's maximum
const OPS_PAGE = 100; // operations listed per page
const NS_COLORS = ["#1f5fa8", "#3c9d5d", "#b7791f", "#8e44ad", "#d63c3c", "#16a2b8", "#6c757d", "#e07b00"];

// justBefore is the restore point just before an operation at ts, the
// state before it is applied: the previous increment of its second, or,
// for the second's first increment, the end of the previous second.
function justBefore(ts) { return ts.i > 1 ? ts.t + ":" + (ts.i - 1) : isoSecond(ts.t - 1); }

// nsOf is what a restore or undo of an operation selects: a command's
// database (a command's namespace is db.$cmd), else the namespace.
function nsOf(ns) { return ns.endsWith(".$cmd") ? ns.slice(0, -5) : ns; }

function opsError(id, msg) { $(id).textContent = msg; $(id).hidden = !msg; }

// ---- bars -------------------------------------------------------------------

// opsRange is the seconds shown: span seconds around the moment.
function opsRange() {
  const span = parseInt($("o-span").value, 10);
  const at = Date.parse($("o-at").value.trim());
  if (isNaN(at)) throw new Error("around: want an RFC 3339 time such as 2026-11-25T10:31:00Z");
  const lo = Math.floor(at / 1000) - Math.floor(span / 2);
  return { lo, hi: lo + span - 1 };
}

// opsDefault shows the latest minute once the status says what it is.
function opsDefault(st) {
  if (ops.defaulted || !st.last_durable) return;
  ops.defaulted = true;
  $("o-at").value = isoSecond(st.last_durable.t - Math.floor(parseInt($("o-span").value, 10) / 2) + 1);
  loadOps();
}

// opsAround shows the operations around second t (a click on the timeline).
function opsAround(t) {
  ops.defaulted = true;
  $("o-at").value = isoSecond(t);
  loadOps();
}

async function loadOps(ev) {
  if (ev) ev.preventDefault();
  opsError("o-error", "");
  let r;
  try { r = opsRange(); } catch (e) { return opsError("o-error", e.message); }
  const q = new URLSearchParams({ summary: "true", from: isoSecond(r.lo), to: isoSecond(r.hi), limit: String(OPS_ROWS) });
  for (const ns of lines("o-ns")) q.append("ns", ns);
  ops.lo = r.lo; ops.hi = r.hi;
  try {
    renderBars(await api("GET", "/api/v1/oplog?" + q));
  } catch (e) {
    renderBars({ rows: [], operations: 0 });
    opsError("o-error", e.message);
  }
}

function renderBars(s) {
  const svg = $("ops-bars"), span = ops.hi - ops.lo + 1;
  svg.replaceChildren(); $("ops-axis").replaceChildren(); $("o-legend").replaceChildren();
  const colors = {}, seconds = new Map();
  for (const r of s.rows) {
    if (!(r.ns in colors)) colors[r.ns] = NS_COLORS[Object.keys(colors).length % NS_COLORS.length];
    if (!seconds.has(r.t)) seconds.set(r.t, new Map());
    const byNS = seconds.get(r.t);
    if (!byNS.has(r.ns)) byNS.set(r.ns, { total: 0, ops: [] });
    const b = byNS.get(r.ns);
    b.total += r.count; b.ops.push(r.count + " " + r.op + (r.count === 1 ? "" : "s"));
  }
  let most = 1;
  for (const byNS of seconds.values()) most = Math.max(most, [...byNS.values()].reduce((n, b) => n + b.total, 0));
  const w = 1000 / span;
  for (const [t, byNS] of seconds) {
    let y = 118;
    for (const [ns, b] of byNS) {
      const h = Math.max(2, b.total / most * 108);
      y -= h;
      const r = rect(svg, "bar", (t - ops.lo) * w + w * 0.1, (t - ops.lo) * w + w * 0.9, y.toFixed(2), h.toFixed(2),
        isoSecond(t) + "  " + ns + ": " + b.ops.join(", "));
      r.setAttribute("fill", colors[ns]);
      r.dataset.t = t; r.dataset.ns = ns;
      if (ops.pick && ops.pick.t === t && ops.pick.ns === ns) r.classList.add("picked");
      r.addEventListener("click", () => pickBar(t, ns));
    }
  }
  drawAxis($("ops-axis"), ops.lo, ops.hi + 1);
  for (const ns of Object.keys(colors)) {
    const l = document.createElement("span"); l.className = "ns";
    const i = document.createElement("i"); i.className = "sw"; i.style.background = colors[ns];
    l.append(i, ns); $("o-legend").appendChild(l);
  }
  $("o-info").textContent = s.operations + " operations from " + isoSecond(ops.lo) + " to " + isoSecond(ops.hi) +
    (s.truncated ? "; more than " + s.rows.length + " rows: narrow the span or the namespaces to see the rest" : "") +
    (s.rows.length ? ". Click a bar to list its operations." : "");
}

// ---- operations of a bar --------------------------------------------------------

function pickBar(t, ns) {
  ops.pick = { t, ns };
  for (const r of $("ops-bars").querySelectorAll("rect.bar")) r.classList.toggle("picked", r.dataset.t == t && r.dataset.ns === ns);
  $("o-entries-title").textContent = "Operations of " + ns + " at " + isoSecond(t);
  listOps({ from: isoSecond(t), to: isoSecond(t), ns });
}

async function listOps(q) {
  ops.list = { q, next: null };
  $("o-list").querySelector("tbody").replaceChildren();
  $("o-entries").hidden = false;
  await moreOps();
}

async function moreOps() {
  const l = ops.list, q = new URLSearchParams(Object.assign({}, l.q, { limit: String(OPS_PAGE) }));
  if (l.next) { q.set("from", l.next.from); q.set("skip", String(l.next.skip || 0)); }
  let page;
  try { page = await api("GET", "/api/v1/oplog?" + q); } catch (e) { return opsError("o-error", e.message); }
  const body = $("o-list").querySelector("tbody");
  for (const o of page.operations) body.appendChild(opRow(o));
  l.next = page.next;
  $("o-more").hidden = !page.next;
  $("o-more").textContent = "next " + OPS_PAGE + " operations";
}

function button(cls, text, fn) {
  const b = document.createElement("button");
  b.type = "button"; b.className = "link-dark " + cls; b.textContent = text;
  b.addEventListener("click", fn);
  return b;
}

function opRow(o) {
  const tr = document.createElement("tr");
  const id = o._id === null ? "–" : JSON.stringify(o._id), change = JSON.stringify(o.change);
  tr.dataset.ts = o.ts.t + ":" + o.ts.i;
  cell(tr, shortTime(o.time)); cell(tr, o.ts.t + ":" + o.ts.i, "mono");
  cell(tr, o.op + (o.in ? " (in " + o.in + ")" : "")); cell(tr, o.ns, "mono"); cell(tr, id, "mono");
  cell(tr, change.length > 200 ? change.slice(0, 200) + "…" : change, "mono change").title = change;
  const acts = cell(tr, "");
  if (o._id !== null && o.op !== "command") acts.appendChild(button("history", "history", () => showHistory(o, tr)));
  acts.title = "restore before: restore to just before this operation; undo: undo this operation";
  acts.append(" ", button("restore-before", "restore before", () => restoreBefore(o.ts.t, justBefore(o.ts), o.ns)));
  acts.append(" ", button("undo-op", "undo", () => openUndo(justBefore(o.ts), o.ts.t + ":" + o.ts.i, o.ns)));
  return tr;
}

// ---- history -------------------------------------------------------------------

async function showHistory(o, tr) {
  for (const r of $("o-list").querySelectorAll("tr.picked")) r.classList.remove("picked");
  tr.classList.add("picked");
  const q = new URLSearchParams({ ns: o.ns, id: JSON.stringify(o._id) });
  let h;
  try { h = await api("GET", "/api/v1/history?" + q); } catch (e) { return opsError("o-error", e.message); }
  $("o-history-title").textContent = "History of _id " + JSON.stringify(h._id) + " in " + h.ns + " (replayed from snapshot " +
    h.snapshot + ", " + h.entries + " oplog entries read)";
  const body = $("o-versions").querySelector("tbody");
  body.replaceChildren();
  for (const v of h.versions) {
    const row = document.createElement("tr");
    row.dataset.ts = v.ts.t + ":" + v.ts.i;
    if (v.ts.t === o.ts.t && v.ts.i === o.ts.i) row.classList.add("picked");
    cell(row, shortTime(v.time)); cell(row, v.ts.t + ":" + v.ts.i, "mono");
    cell(row, v.start ? "as the history starts" : v.op + (v.in ? " (in " + v.in + ")" : "") + (v.ns !== h.ns ? ", now in " + v.ns : ""));
    cell(row, v.deleted ? "deleted" : JSON.stringify(v.document, null, 1), "mono doc");
    body.appendChild(row);
  }
  $("o-history").hidden = false;
}

// ---- restore to just before -----------------------------------------------------

function restoreBefore(t, point, ns) {
  $("r-to").value = point;
  $("r-ns").value = nsOf(ns);
  state.chosen = t;
  formChanged(); renderTimeline();
  $("hover").textContent = "Restore point " + point + " (just before the operations of " + isoSecond(t) + ") chosen: plan it below.";
  $("restore").scrollIntoView();
}

// ---- undo ------------------------------------------------------------------------

function openUndo(from, to, ns) {
  ops.undo = { from, to, ns: [nsOf(ns)] };
  $("u-range").textContent = "Put back every document of " + nsOf(ns) + " that an operation after " + from + " up to and including " + to +
    " changed, as it was at " + from + ". A document written again since " + to + " is a conflict: listed and left alone, unless force.";
  $("o-undo").hidden = false;
  $("u-report").hidden = true;
  opsError("u-error", "");
  undoChanged();
  if (!$("u-target").value) $("u-target").value = $("r-target").value;
  $("o-undo").scrollIntoView();
  if ($("u-target").value.trim()) dryRunUndo();
  else opsError("u-error", "Give the target (the live deployment), then run the dry run.");
}

function undoRequest() { return Object.assign({ target: $("u-target").value.trim(), force: $("u-force").checked }, ops.undo); }

// undoChanged: a dry run is only good for the inputs it was made from.
function undoChanged() {
  const ok = ops.undoKey !== null && ops.undoKey === JSON.stringify(undoRequest());
  $("u-run").disabled = !ok;
  $("u-report").classList.toggle("stale", !ok && !$("u-report").hidden);
}

// waitUndo polls an undo job until it ends, showing its progress.
async function waitUndo(job) {
  try {
    while (job.state === "running") {
      opsError("u-progress", job.id + ": " + ((job.progress && job.progress.summary) || "running"));
      await new Promise((r) => setTimeout(r, 500));
      job = await api("GET", "/api/v1/undos/" + job.id);
    }
  } finally { opsError("u-progress", ""); }
  if (job.state !== "succeeded") throw new Error(job.error || job.state);
  return job.result;
}

async function dryRunUndo(ev) {
  if (ev) ev.preventDefault();
  opsError("u-error", "");
  ops.undoKey = null; undoChanged();
  const req = undoRequest();
  $("u-dry").disabled = true;
  try {
    const r = await waitUndo(await api("POST", "/api/v1/undos", Object.assign({ dry_run: true }, req)));
    renderUndo(r);
    ops.undoKey = JSON.stringify(req);
    undoChanged();
    $("u-run").textContent = r.written > 0 ? "Undo: write " + r.written + " documents into " + hostOf(req.target) : "Nothing to write";
    if (r.written === 0) $("u-run").disabled = true;
  } catch (e) {
    opsError("u-error", e.message);
  } finally { $("u-dry").disabled = false; }
}

async function runUndo() {
  const req = undoRequest();
  if (JSON.stringify(req) !== ops.undoKey) return opsError("u-error", "The undo changed since its dry run: run the dry run again.");
  $("u-run").disabled = true;
  ops.undoKey = null;
  try {
    renderUndo(await waitUndo(await api("POST", "/api/v1/undos", req)));
    $("u-run").textContent = "Done";
  } catch (e) {
    opsError("u-error", e.message);
  }
  refreshJobs().catch(() => {});
}

// undoText says what an undo did, or would do, in one line.
function undoText(r) {
  const would = r.dry_run ? "would be " : "";
  let s = (r.dry_run ? "dry run: " : "") + r.changed + " documents changed by the range: " + r.restored + " " + would + "restored, " +
    r.reinserted + " " + would + "re-inserted, " + r.deleted + " " + would + "deleted, " + r.unchanged + " unchanged, " +
    r.conflicts_left + " conflicts left alone";
  if (r.conflicts_forced) s += ", " + r.conflicts_forced + " conflicts " + would + "put back (force)";
  if (r.not_selected) s += "; " + r.not_selected + " not selected by the filter";
  return s;
}

function renderUndo(r) {
  const facts = $("u-facts");
  facts.replaceChildren();
  const fact = (k, v) => { const d = document.createElement("div"); const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v; d.append(dt, dd); facts.appendChild(d); };
  fact(r.dry_run ? "dry run: nothing was changed" : "undone", tsText(r.from) + " .. " + tsText(r.to));
  fact("oplog entries in the range", String(r.entries));
  fact("documents", undoText(r));
  const body = $("u-ns").querySelector("tbody");
  body.replaceChildren();
  const ids = (list, n) => list.map((v) => JSON.stringify(v)).join(", ") + (n > list.length ? " and " + (n - list.length) + " more" : "");
  for (const n of r.namespaces) {
    const tr = document.createElement("tr");
    cell(tr, n.namespace + (n.recreated ? " (re-created)" : ""), "mono");
    for (const k of ["restored", "reinserted", "deleted", "unchanged"]) cell(tr, String(n[k]));
    cell(tr, String(n.conflicts_left + n.conflicts_forced));
    cell(tr, ids(n.sample, n.written), "mono sample"); cell(tr, ids(n.conflicts, n.conflicts_left + n.conflicts_forced), "mono conflicts");
    body.appendChild(tr);
  }
  $("u-notes").replaceChildren();
  for (const note of r.notes) { const li = document.createElement("li"); li.textContent = note; $("u-notes").appendChild(li); }
  $("u-report").hidden = false;
  $("u-report").classList.remove("stale");
}

function initOps() {
  $("ops-form").addEventListener("submit", loadOps);
  $("o-span").addEventListener("change", loadOps);
  $("o-more").addEventListener("click", moreOps);
  $("o-restore-bar").addEventListener("click", () => restoreBefore(ops.pick.t, justBefore({ t: ops.pick.t, i: 1 }), ops.pick.ns));
  $("o-undo-bar").addEventListener("click", () => openUndo(isoSecond(ops.pick.t - 1), isoSecond(ops.pick.t), ops.pick.ns));
  $("undo-form").addEventListener("submit", dryRunUndo);
  $("undo-form").addEventListener("input", undoChanged);
  $("u-run").addEventListener("click", runUndo);
}
