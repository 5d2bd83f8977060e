// rewind server's home page: every deployment (GET /api/v1/deployments),
// trouble first or sorted by a column, each linking to its own page
// (/deployments/NAME/); the Enable backup form (POST /api/v1/deployments:
// the server checks the source and the repository before it saves) and
// Remove (DELETE, for the deployments added here). It uses common.js's
// helpers ($, api, cell, duration, mib...); data goes into the page as text
// only.
"use strict";

const fleet = { list: [], server: null, sort: "trouble", desc: false, busy: false };

// ---- the table ----------------------------------------------------------------

// STATE_RANK orders states worst first.
const STATE_RANK = { failed: 0, starting: 1, waiting: 2, standby: 3, capturing: 4 };

// sortKeys give each sortable column's value; a missing value sorts last.
const sortKeys = {
  name: (d) => d.name,
  state: (d) => STATE_RANK[d.state] ?? -1,
  lag: (d) => d.lag_seconds,
  durable: (d) => d.last_durable ? d.last_durable.t : null,
  snapshot: (d) => d.last_snapshot ? Date.parse(d.last_snapshot.finished) : null,
  stored: (d) => d.bytes_stored,
};

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  return a < b ? -1 : 1;
}

// sorted orders the deployments: by default trouble first, then by name;
// else by the chosen column (ties by name).
function sorted(list) {
  const byName = (a, b) => compare(a.name, b.name);
  if (fleet.sort === "trouble") return list.slice().sort((a, b) => (b.trouble - a.trouble) || byName(a, b));
  const key = sortKeys[fleet.sort], dir = fleet.desc ? -1 : 1;
  return list.slice().sort((a, b) => {
    const ka = key(a), kb = key(b);
    // (A missing value stays last either way.)
    if (ka === null || ka === undefined || kb === null || kb === undefined) return compare(ka, kb) || byName(a, b);
    return dir * compare(ka, kb) || byName(a, b);
  });
}

// subLines fills a cell with a first line and muted lines under it.
function subLines(td, ...more) {
  for (const text of more) {
    if (!text) continue;
    const div = document.createElement("div");
    div.className = "sub";
    div.textContent = text;
    td.appendChild(div);
  }
  return td;
}

// when shows an RFC 3339 time briefly: its time of day when it is today
// (UTC), else its date and minute.
function when(s) {
  if (!s) return "";
  const iso = new Date(s).toISOString();
  return iso.slice(0, 10) === new Date().toISOString().slice(0, 10) ? iso.slice(11, 19) + " UTC" : iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC";
}

// timeCell is a cell with a time shown briefly, and in full on hover.
function timeCell(tr, s, none) {
  const td = cell(tr, s ? when(s) : none, s ? "nowrap" : "");
  if (s) td.title = s;
  return td;
}

function stateClass(state) { return state === "capturing" ? "state-ok" : state === "failed" ? "state-bad" : "state-warn"; }

function holderText(h) {
  if (!h) return "nobody";
  return h.this_process ? "this process" : h.host + " pid " + h.pid;
}

function row(d) {
  const tr = document.createElement("tr");
  tr.dataset.name = d.name; tr.dataset.state = d.state;
  if (d.trouble) tr.className = "trouble";
  const a = document.createElement("a");
  a.href = "/deployments/" + encodeURIComponent(d.name) + "/";
  a.textContent = d.name;
  subLines(cell(tr, ""), d.source.replaceAll(",", ", "), d.origin === "file" ? "in the file" : "added here").prepend(a);
  subLines(cell(tr, d.state, stateClass(d.state)), d.error, d.retry_at ? "retried at " + when(d.retry_at) : "", ...d.warnings);
  cell(tr, d.lag_seconds === null || d.lag_seconds === undefined ? "–" : duration(d.lag_seconds),
    "nowrap" + (d.lag_seconds > 60 ? " state-bad" : ""));
  timeCell(tr, d.last_durable && d.last_durable.time, "nothing yet");
  const w = d.restore_window, keeps = "keeps " + d.settings.restore_window;
  if (w) subLines(cell(tr, duration(w.to.t - w.from.t), "nowrap"), "from " + when(w.from.time), keeps);
  else subLines(cell(tr, "none", "state-bad"), keeps);
  subLines(timeCell(tr, d.last_snapshot && d.last_snapshot.finished, "none"), "every " + d.settings.snapshot_every);
  cell(tr, mib(d.bytes_stored), "nowrap");
  cell(tr, d.alerts_firing.join(", ") || "none", d.alerts_firing.length ? "state-bad" : "muted");
  cell(tr, holderText(d.holder), d.holder && !d.holder.this_process ? "state-warn" : "");
  const act = cell(tr, "");
  if (d.origin === "api") {
    const b = document.createElement("button");
    b.type = "button"; b.className = "remove"; b.textContent = "Remove";
    b.addEventListener("click", () => removeDeployment(d));
    act.appendChild(b);
  }
  return tr;
}

function render() {
  const body = $("deployments").querySelector("tbody");
  body.replaceChildren(...sorted(fleet.list).map(row));
  $("no-deployments").hidden = fleet.list.length > 0;
  $("sort-trouble").classList.toggle("active", fleet.sort === "trouble");
  for (const b of document.querySelectorAll("button.sort")) {
    const on = b.dataset.sort === fleet.sort;
    b.classList.toggle("active", on);
    b.dataset.dir = on ? (fleet.desc ? "desc" : "asc") : "";
  }
}

function renderServer(sv) {
  const counts = Object.entries(sv.deployments).map(([state, n]) => n + " " + state).join(", ");
  $("summary").textContent = sv.host + " pid " + sv.pid + " · " + (counts || "no deployments");
  const prefix = sv.repo_prefix;
  $("e-repo").required = !prefix;
  $("e-repo-hint").textContent = prefix ? "(empty: " + prefix + "/NAME, under the server’s repo_prefix)" : "(a URL of its own for each deployment)";
  repoPlaceholder();
}

function repoPlaceholder() {
  const prefix = fleet.server && fleet.server.repo_prefix;
  if (prefix) $("e-repo").placeholder = prefix + "/" + ($("e-name").value.trim() || "NAME");
}

async function refresh() {
  try {
    const [sv, list] = await Promise.all([api("GET", "/api/v1/server"), api("GET", "/api/v1/deployments")]);
    fleet.server = sv; fleet.list = list;
    renderServer(sv); render();
    $("f-error").hidden = true;
    $("token-box").hidden = true;
    $("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e.status === 401) return; // the token box says it
    $("f-error").textContent = "not updated: " + e.message;
    $("f-error").hidden = false;
  }
}

// ---- enable and remove -------------------------------------------------------------

// enableRequest is the form as POST /api/v1/deployments's body: the keys
// of a deployments: entry of the server's file; empty fields are left to
// the server's defaults.
function enableRequest() {
  const req = { name: $("e-name").value.trim(), source: $("e-source").value.trim() };
  const repo = $("e-repo").value.trim(), every = $("e-every").value.trim(), keep = $("e-window").value.trim();
  if (repo) req.repo = repo;
  if (every) req.snapshot = { every };
  if (keep) req.retention = { restore_window: keep };
  return req;
}

function enableError(msg) { $("e-error").textContent = msg; $("e-error").hidden = !msg; }

async function enable(ev) {
  ev.preventDefault();
  if (fleet.busy) return;
  const req = enableRequest();
  enableError("");
  fleet.busy = true;
  $("e-submit").disabled = true;
  $("e-progress").textContent = "Checking " + req.name + ": connecting to the source, reading its oplog, opening the repository…";
  $("e-progress").hidden = false;
  try {
    const d = await api("POST", "/api/v1/deployments", req);
    $("enable-form").reset();
    $("e-source").type = "password";
    done("Backup of " + d.name + " enabled: capturing into " + d.repo + ".");
    await refresh();
  } catch (e) {
    // The server's message says what to change; it never holds the
    // connection string's password.
    enableError(e.status === 401 ? "Give the API token above first." : e.message);
  } finally {
    fleet.busy = false;
    $("e-submit").disabled = false;
    $("e-progress").hidden = true;
  }
}

function done(msg) { $("f-done").textContent = msg; $("f-done").hidden = false; }

async function removeDeployment(d) {
  if (!confirm("Stop backing up " + d.name + "?\n\nCapture stops after flushing what it read. The repository " + d.repo +
    " and every backup in it are kept.")) return;
  try {
    await api("DELETE", "/api/v1/deployments/" + encodeURIComponent(d.name));
    done("Backup of " + d.name + " stopped; its repository " + d.repo + " is kept.");
  } catch (e) {
    $("f-error").textContent = "remove " + d.name + ": " + e.message;
    $("f-error").hidden = false;
  }
  await refresh();
}

// ---- start ---------------------------------------------------------------------------

function init() {
  initToken(refresh);
  $("sort-trouble").addEventListener("click", () => { fleet.sort = "trouble"; fleet.desc = false; render(); });
  for (const b of document.querySelectorAll("button.sort")) {
    b.addEventListener("click", () => {
      fleet.desc = fleet.sort === b.dataset.sort ? !fleet.desc : false;
      fleet.sort = b.dataset.sort;
      render();
    });
  }
  $("enable-form").addEventListener("submit", enable);
  $("e-name").addEventListener("input", repoPlaceholder);
  $("e-show").addEventListener("change", () => { $("e-source").type = $("e-show").checked ? "text" : "password"; });
  refresh();
  setInterval(refresh, 5000);
}

document.addEventListener("DOMContentLoaded", init);
