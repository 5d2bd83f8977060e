// rewind dashboard: reads the agent's JSON API (docs/API.md) and draws it
// (under rewind server, one deployment's: see apiPath in common.js).
// Plain script, no framework, no network access beyond this origin. Data is
// always put into the page as text (textContent), never as HTML.
"use strict";

const state = { timeline: null, status: null, range: 0, chosen: null, planKey: null, jobsRunning: false, height: 110 };

// ---- status -----------------------------------------------------------------

function renderStatus(st) {
  $("shard").textContent = st.cluster ? "cluster of shards " + st.cluster.shards.join(", ") : "shard " + st.shard;
  // A cluster's line has no heartbeat of its own: its shards' are the agent's.
  const alive = (st.cluster ? st.shards : [st]).some((s) => s.agent && s.agent.alive);
  const capErr = st.capture && st.capture.last_error;
  if (!alive) setText("st-state", "agent heartbeat is stale", "state-bad");
  else if (capErr) setText("st-state", "capturing with errors", "state-warn");
  else setText("st-state", "capturing", "state-ok");
  setText("st-durable", st.last_durable ? shortTime(st.last_durable.time) : "nothing captured yet");
  if (st.lag_seconds === null || st.lag_seconds === undefined) setText("st-lag", "unknown", "state-warn");
  else setText("st-lag", duration(st.lag_seconds), st.lag_seconds > 60 ? "state-bad" : "");
  const c = st.capture || {};
  setText("st-spool", mib(c.spool_bytes || 0) + (c.spool_full ? " (full: capture paused)" : ""), c.spool_full ? "state-bad" : "");
  setText("st-segments", st.segments + " (" + mib(st.bytes) + ")");
  $("st-error").hidden = !capErr;
  $("st-error").textContent = capErr ? "capture: " + capErr : "";
}

async function refreshAlerts() {
  let data;
  try { data = await api("GET", "/api/v1/alerts"); } catch (e) {
    if (e.status === 404) return; // an agent without alerts
    throw e;
  }
  const ul = $("alerts");
  ul.replaceChildren();
  for (const a of (data && data.firing) || []) {
    const li = document.createElement("li");
    li.textContent = a.alert + ": " + (a.summary || "") + (a.started ? " (since " + shortTime(a.started) + ")" : "");
    ul.appendChild(li);
  }
}

// ---- timeline -----------------------------------------------------------------

// domain is the time range drawn: everything captured (a cluster's shards
// too), or the last `range` seconds.
function domain(tl) {
  let lo = Infinity, hi = -Infinity;
  const see = (ts) => { if (ts) { lo = Math.min(lo, ts.t); hi = Math.max(hi, ts.t); } };
  for (const part of [tl].concat(tl.shards || [])) {
    for (const x of part.timelines || []) { see(x.first); see(x.last); }
    for (const w of part.span || []) { see(w.from); see(w.to); }
    for (const g of part.gaps || []) { see(g.before); see(g.after); }
    for (const s of part.snapshots || []) { see(s.start); see(s.end); }
  }
  if (!isFinite(lo)) return null;
  if (state.range > 0) lo = Math.max(lo, hi - state.range);
  const pad = Math.max(1, (hi - lo) * 0.02);
  return [lo - pad, hi + pad];
}

const SVG = "http://www.w3.org/2000/svg";
function rect(svg, cls, x0, x1, y, h, title) {
  const r = document.createElementNS(SVG, "rect");
  r.setAttribute("class", cls);
  r.setAttribute("x", x0.toFixed(2));
  r.setAttribute("width", Math.max(2, x1 - x0).toFixed(2));
  r.setAttribute("y", y); r.setAttribute("height", h);
  const t = document.createElementNS(SVG, "title"); t.textContent = title; r.appendChild(t);
  svg.appendChild(r);
  return r;
}

// A row's layout in the svg's units (1 unit = 1 px vertically): its height
// and, per kind of mark, its [y offset, height]. The top row is the
// repository's (a cluster's: its windows); each shard of a cluster gets a
// thinner one under it, its name on top (rowLabel).
const TOP_ROW = { h: 110, captured: [8, 18], window: [30, 34], gap: [4, 64], snap: [70, 20] };
const SHARD_ROW = { h: 36, captured: [16, 5], window: [22, 10], gap: [1, 34], snap: [16, 18] };

// drawRow draws one part's captured timelines, windows, gaps and snapshots
// at height y; say prefixes the tooltips ("" or "shard NAME: ").
function drawRow(parent, part, x, y, row, say) {
  const mark = (cls, x0, x1, title) => rect(parent, cls, x0, x1, y + row[cls][0], row[cls][1], say + title);
  for (const l of part.timelines || []) mark("captured", x(l.first.t), x(l.last.t), "oplog captured " + tsText(l.first) + " .. " + tsText(l.last));
  for (const w of part.span || []) mark("window", x(w.from.t), x(w.to.t), "restorable " + tsText(w.from) + " .. " + tsText(w.to));
  for (const g of part.gaps || []) mark("gap", x(g.before.t), x(g.after.t), "gap: entries after " + tsText(g.before) + " and before " + tsText(g.after) + " were lost");
  for (const s of part.snapshots || []) mark("snap", x(s.end.t) - 1, x(s.end.t) + 1, "snapshot " + s.id + " consistent at " + tsText(s.end));
}

function renderTimeline() {
  const tl = state.timeline, svg = $("timeline"), axis = $("axis"), labels = $("row-labels");
  svg.replaceChildren(); axis.replaceChildren(); labels.replaceChildren();
  const shards = (tl && tl.shards) || [];
  state.height = TOP_ROW.h + shards.length * SHARD_ROW.h;
  svg.setAttribute("viewBox", "0 0 1000 " + state.height);
  svg.style.height = state.height + "px";
  if (!tl) return;
  const d = domain(tl);
  state.domain = d;
  if (!d) return;
  const x = (t) => Math.min(1000, Math.max(0, (t - d[0]) / (d[1] - d[0]) * 1000));
  drawRow(svg, tl, x, 0, TOP_ROW, tl.cluster ? "cluster: " : "");
  if (tl.cluster) rowLabel(labels, 0, "cluster", "every shard restorable");
  shards.forEach((sh, k) => {
    const y = TOP_ROW.h + k * SHARD_ROW.h, g = document.createElementNS(SVG, "g");
    g.setAttribute("class", "shard-row" + (sh.config_server ? " config-server" : ""));
    g.dataset.shard = sh.shard;
    rect(g, "row-rule", 0, 1000, y, 1, "");
    svg.appendChild(g);
    drawRow(g, sh, x, y, SHARD_ROW, "shard " + sh.shard + ": ");
    rowLabel(labels, y, sh.shard, sh.config_server ? "config server: captured, not restored" : "");
  });
  if (state.chosen !== null) {
    const l = line(svg, "chosen", x(state.chosen));
    l.id = "chosen-line";
  }
  drawAxis(axis, d[0], d[1]);
}

// rowLabel names a row of the timeline at height y, over its left end.
function rowLabel(box, y, name, note) {
  const s = document.createElement("span");
  s.className = "row-label";
  s.dataset.row = name;
  s.style.top = y + "px";
  s.textContent = name + (note ? " (" + note + ")" : "");
  box.appendChild(s);
}

// drawAxis labels a time axis from second lo to hi (UTC): the date once,
// then times, each second once; the end labels stay inside the box.
function drawAxis(axis, lo, hi) {
  const ticks = 6;
  let prev = null;
  for (let k = 0; k <= ticks; k++) {
    const t = Math.round(lo + (hi - lo) * k / ticks);
    if (t === prev) continue;
    prev = t;
    const s = document.createElement("span");
    const iso = isoSecond(t);
    s.textContent = k === 0 ? iso.slice(0, 10) + " " + iso.slice(11, 19) : iso.slice(11, 19) + (k === ticks ? " UTC" : "");
    if (k === 0) { s.style.left = "0"; s.className = "first"; }
    else if (k === ticks) { s.style.right = "0"; s.className = "last"; }
    else s.style.left = (k / ticks * 100) + "%";
    axis.appendChild(s);
  }
}

function line(svg, cls, px) {
  const l = document.createElementNS(SVG, "line");
  l.setAttribute("class", cls);
  l.setAttribute("x1", px); l.setAttribute("x2", px); l.setAttribute("y1", 0); l.setAttribute("y2", state.height);
  svg.appendChild(l);
  return l;
}

function timeAt(ev) {
  const box = $("timeline").getBoundingClientRect(), d = state.domain;
  if (!d || box.width === 0) return null;
  return Math.floor(d[0] + (ev.clientX - box.left) / box.width * (d[1] - d[0]));
}

// windowFor returns the restore window (merged span) holding second t.
function windowFor(t) {
  for (const w of (state.timeline && state.timeline.span) || []) if (t >= w.from.t && t <= w.to.t) return w;
  return null;
}

// restorePoint turns a clicked second into the value of the "to" field: the
// second itself (state after all of its entries), or the window's exact end
// when the click is on the window's last second.
function restorePoint(t, w) { return t >= w.to.t ? w.to.t + ":" + w.to.i : isoSecond(t); }

function choose(t) {
  const w = windowFor(t);
  if (!w) {
    const near = nearest(t);
    $("hover").textContent = isoSecond(t) + " is not restorable" + (near ? "; nearest window " + tsText(near.from) + " .. " + tsText(near.to) : "");
    return;
  }
  state.chosen = t;
  $("r-to").value = restorePoint(t, w);
  formChanged();
  renderTimeline();
  $("hover").textContent = "Restore point " + $("r-to").value + " chosen: plan it below; its operations are shown above.";
  opsAround(t);
}

function nearest(t) {
  let best = null, dist = Infinity;
  for (const w of (state.timeline && state.timeline.span) || []) {
    const dd = t < w.from.t ? w.from.t - t : t - w.to.t;
    if (dd < dist) { dist = dd; best = w; }
  }
  return best;
}

// WINDOW_ROWS bounds the windows table (one row per snapshot: a week of
// hourly snapshots would be 168); "show all" lifts it.
const WINDOW_ROWS = 10;

function renderWindowsTable(tl) {
  const body = $("windows").querySelector("tbody");
  body.replaceChildren();
  const all = (tl.windows || []).slice().reverse(); // newest first
  const shown = state.allWindows ? all : all.slice(0, WINDOW_ROWS);
  for (const w of shown) {
    const tr = document.createElement("tr");
    cell(tr, tsText(w.from), "mono"); cell(tr, tsText(w.to), "mono"); cell(tr, w.snapshot || (tl.cluster ? "each shard's own" : ""), "mono");
    const b = document.createElement("button");
    b.type = "button"; b.textContent = "restore to its end";
    b.addEventListener("click", () => { state.chosen = w.to.t; $("r-to").value = w.to.t + ":" + w.to.i; formChanged(); renderTimeline(); });
    cell(tr, "").appendChild(b);
    body.appendChild(tr);
  }
  if (shown.length < all.length) {
    const tr = document.createElement("tr");
    const td = cell(tr, "");
    td.colSpan = 4;
    const b = document.createElement("button");
    b.type = "button"; b.className = "link-dark";
    b.textContent = "show all " + all.length + " windows (" + (all.length - shown.length) + " older)";
    b.addEventListener("click", () => { state.allWindows = true; renderWindowsTable(state.timeline); });
    td.appendChild(b);
    body.appendChild(tr);
  }
  $("no-windows").hidden = (tl.windows || []).length > 0;
  const gaps = $("gaps").querySelector("tbody");
  gaps.replaceChildren();
  for (const g of tl.gaps || []) {
    const tr = document.createElement("tr");
    cell(tr, tsText(g.before), "mono"); cell(tr, tsText(g.after), "mono"); cell(tr, shortTime(g.detected));
    gaps.appendChild(tr);
  }
  $("gaps").hidden = (tl.gaps || []).length === 0;
}

// ---- restore form ----------------------------------------------------------------

function lines(id) { return $(id).value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean); }

function restoreRequest() {
  const rename = {};
  for (const l of lines("r-rename")) {
    const i = l.indexOf("=");
    if (i <= 0 || i === l.length - 1) throw new Error("rename “" + l + "” is not FROM=TO");
    rename[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  const req = { to: $("r-to").value.trim(), target: $("r-target").value.trim(), ns: lines("r-ns"), rename,
    drop: $("r-drop").checked, with_users_and_roles: $("r-users").checked };
  const p = parseInt($("r-parallel").value, 10);
  if (p > 0) req.parallel = p;
  const filter = $("r-filter").value.trim(), merge = $("r-merge").value;
  if (filter) req.filter = filter; // Extended JSON text, as --filter takes it
  if (merge) req.merge = merge;
  return req;
}

function formChanged() {
  // A plan is only good for the inputs it was made from.
  let key = null;
  try { key = JSON.stringify(restoreRequest()); } catch (e) { /* shown on plan */ }
  $("r-start").disabled = !(state.planKey && key === state.planKey && restoreRequest().target);
  if (state.planKey && key !== state.planKey) $("plan").classList.add("stale");
}

async function plan(ev) {
  ev.preventDefault();
  $("r-error").hidden = true;
  let req;
  try { req = restoreRequest(); } catch (e) { return showRestoreError(e.message); }
  try {
    const p = await api("POST", "/api/v1/restores", Object.assign({}, req, { dry_run: true }));
    state.planKey = JSON.stringify(req);
    renderPlan(p);
    formChanged();
    $("r-start").textContent = req.target ? "Start restore into " + hostOf(req.target) : "Start restore (set a target first)";
  } catch (e) {
    state.planKey = null; formChanged();
    $("plan").hidden = true;
    showRestoreError(e.message);
  }
}

function hostOf(uri) {
  const m = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?([^/?]+)/.exec(uri);
  return m ? m[1] : "the target";
}

function renderPlan(p) {
  const facts = $("plan-facts");
  facts.replaceChildren();
  const fact = (k, v) => { const d = document.createElement("div"); const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v; d.append(dt, dd); facts.appendChild(d); };
  fact("restore to", tsText(p.target));
  fact("snapshot", p.snapshot);
  fact("replay from", tsText(p.replay_from));
  fact("snapshot objects", p.chunks + " (" + mib(p.chunk_bytes) + ")");
  fact("oplog segments", p.segments + " (" + mib(p.segment_bytes) + ")");
  fact("oplog entries", p.entries === undefined ? "–" : String(p.entries));
  if (p.filter) fact("filter", JSON.stringify(p.filter));
  if (p.merge) fact("merge", p.merge);
  if (p.target_check) fact("target", p.target_check.verdict);
  if (p.estimate) fact("estimated time", p.estimate.not_estimated ? "not estimated: " + p.estimate.not_estimated : p.estimate.summary);
  else fact("estimated time", "set a target: a short write probe there measures its rate");
  const body = $("plan-ns").querySelector("tbody");
  body.replaceChildren();
  for (const n of p.namespaces || []) {
    const tr = document.createElement("tr");
    cell(tr, n.source, "mono"); cell(tr, n.target + (n.view ? " (view)" : ""), "mono"); cell(tr, String(n.documents));
    body.appendChild(tr);
  }
  $("plan").hidden = false;
  $("plan").classList.remove("stale");
}

function showRestoreError(msg) { $("r-error").textContent = msg; $("r-error").hidden = false; }

async function startRestore() {
  $("r-error").hidden = true;
  const req = restoreRequest();
  if (JSON.stringify(req) !== state.planKey) return showRestoreError("The form changed since the plan: plan it again.");
  $("r-start").disabled = true;
  try {
    const job = await api("POST", "/api/v1/restores", req);
    state.planKey = null;
    $("hover").textContent = "Restore " + job.id + " started.";
    await refreshJobs();
  } catch (e) {
    showRestoreError(e.message);
    formChanged();
  }
}

// ---- jobs ------------------------------------------------------------------------

function jobProgress(j) {
  if (j.state === "failed") return j.error || "failed";
  const p = (j.progress && j.progress.summary) || "";
  const r = j.result;
  if (j.state === "succeeded" && r && j.kind === "undo") return undoText(r);
  if (j.state === "succeeded" && r && j.kind === "restore" && r.merged) {
    const m = r.merged;
    return "restored " + (m.inserted + m.replaced + m.left_alone) + " documents as of the restore point: " + m.inserted + " inserted, " +
      m.replaced + " replaced, " + m.left_alone + " left alone (the target held them)";
  }
  if (j.state === "succeeded" && r && j.kind === "restore") {
    // Where the time went, for the steps that took any.
    const steps = (r.phases || []).filter((ph) => ph.seconds >= 0.05).map((ph) => ph.name + " " + ph.seconds.toFixed(1) + " s");
    return "restored " + r.documents + " documents and " + r.entries + " oplog entries to " + tsText(r.last_applied) +
      " in " + r.seconds.toFixed(1) + " s" + (steps.length ? " (" + steps.join(", ") + ")" : "");
  }
  if (j.state === "succeeded" && r && j.kind === "snapshot") return "snapshot " + r.id + ": " + r.documents + " documents, " + mib(r.bytes);
  return p;
}

async function refreshJobs() {
  const jobs = await api("GET", "/api/v1/jobs");
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren();
  state.jobsRunning = false;
  for (const j of jobs || []) {
    const tr = document.createElement("tr");
    tr.dataset.job = j.id; tr.dataset.state = j.state;
    cell(tr, j.id, "mono"); cell(tr, j.state, "job-" + j.state); cell(tr, shortTime(j.started)); cell(tr, jobProgress(j));
    body.appendChild(tr);
    if (j.state === "running") state.jobsRunning = true;
  }
  $("no-jobs").hidden = (jobs || []).length > 0;
}

async function snapshotNow() {
  $("snapshot-now").disabled = true;
  try { await api("POST", "/api/v1/snapshots"); await refreshJobs(); }
  catch (e) { $("hover").textContent = "snapshot: " + e.message; }
  finally { $("snapshot-now").disabled = false; }
}

// ---- restore drills (GET /api/v1/drills) ------------------------------------------

async function refreshDrills() {
  let rep;
  try { rep = await api("GET", "/api/v1/drills?limit=20"); } catch (e) {
    if (e.status === 401) throw e;
    $("drill-summary").textContent = "drills: " + e.message;
    return;
  }
  const body = $("drills").querySelector("tbody");
  body.replaceChildren();
  for (const d of rep.drills) {
    const tr = document.createElement("tr");
    tr.dataset.verdict = d.verdict;
    cell(tr, shortTime(d.started)); cell(tr, d.point ? d.point.time : "–"); cell(tr, d.chosen);
    cell(tr, d.verdict, d.verdict === "exact" ? "job-succeeded" : "job-failed"); cell(tr, d.against || "–");
    cell(tr, d.seconds.toFixed(1) + " s"); cell(tr, d.rto_seconds_per_gb ? d.rto_seconds_per_gb.toFixed(0) + " s/GB" : "–");
    cell(tr, d.problem || "");
    body.appendChild(tr);
  }
  const s = rep.summary;
  $("drills").hidden = rep.drills.length === 0;
  $("drill-summary").textContent = s.total === 0 ? "No restore drill is recorded in the repository." :
    "Newest " + s.total + " drills: " + s.exact + " exact, " + s.mismatch + " mismatch, " + s.failed + " failed, " +
    s.no_reference + " without reference" + (s.last_exact ? "; last exact " + shortTime(s.last_exact) : "; none exact");
}

// The whole report as a file: the API answers it with the bearer token,
// which a plain link could not send.
async function downloadDrills() {
  try {
    const rep = await api("GET", "/api/v1/drills");
    const blob = new Blob([JSON.stringify(rep, null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "rewind-drills-" + rep.repository + "-" + rep.generated.slice(0, 10) + ".json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) { $("drill-summary").textContent = "drill report: " + e.message; }
}

// ---- refresh loop ------------------------------------------------------------------

async function refresh() {
  try {
    const [st, tl] = await Promise.all([api("GET", "/api/v1/status"), api("GET", "/api/v1/timeline")]);
    state.status = st; state.timeline = tl;
    renderStatus(st); renderTimeline(); renderWindowsTable(tl);
    opsDefault(st);
    await refreshJobs();
    await refreshAlerts();
    await refreshDrills();
    $("token-box").hidden = true;
    $("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.status !== 401) $("refreshed").textContent = "not updated: " + e.message;
  }
}

// Jobs live in the agent's memory: polled every second while one runs.
// Status and timeline list the repository (a LIST request per page of
// objects on S3): every 15 s, and after each job ends.
const REFRESH_EVERY = 15;

function loop() {
  let n = 0;
  const tick = async () => {
    n++;
    if (state.jobsRunning) {
      try {
        await refreshJobs();
        if (!state.jobsRunning) n = 0; // a job just ended: show its effect
      } catch (e) { /* shown by refresh */ }
    }
    if (n % REFRESH_EVERY === 0) await refresh();
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

function init() {
  initToken(refresh);
  if (DEPLOYMENT) {
    // A deployment of rewind server: say which, and the way back.
    const name = decodeURIComponent(DEPLOYMENT);
    $("deployment").textContent = name;
    $("deployment").hidden = false;
    $("fleet-link").hidden = false;
    document.title = name + " · rewind";
  }
  const svg = $("timeline");
  svg.addEventListener("mousemove", (ev) => {
    const t = timeAt(ev);
    if (t === null) return;
    $("hover").textContent = isoSecond(t) + (windowFor(t) ? "  restorable: click to choose" : "  not restorable");
  });
  svg.addEventListener("click", (ev) => { const t = timeAt(ev); if (t !== null) choose(t); });
  for (const b of document.querySelectorAll(".toolbar button[data-range]")) {
    b.addEventListener("click", () => {
      state.range = parseInt(b.dataset.range, 10);
      for (const o of document.querySelectorAll(".toolbar button[data-range]")) o.classList.toggle("active", o === b);
      renderTimeline();
    });
  }
  $("restore-form").addEventListener("submit", plan);
  $("restore-form").addEventListener("input", formChanged);
  $("r-start").addEventListener("click", startRestore);
  $("snapshot-now").addEventListener("click", snapshotNow);
  $("drill-report").addEventListener("click", downloadDrills);
  initOps();
  refresh();
  loop();
}

document.addEventListener("DOMContentLoaded", init);
