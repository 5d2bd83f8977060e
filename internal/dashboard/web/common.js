// rewind dashboard, shared by its pages (index.html: one agent or one
// deployment of rewind server; fleet.html: rewind server's deployments):
// the API call with the token the user gave, the token box, and the
// formatting of times and sizes. Data goes into the page as text only.
"use strict";

const TOKEN_KEY = "rewind.api-token";
const $ = (id) => document.getElementById(id);

// ---- API ----------------------------------------------------------------

class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// Under rewind server this page is /deployments/NAME/, and the agent's
// API of that deployment is /api/v1/deployments/NAME/...
const DEPLOYMENT = (location.pathname.match(/^\/deployments\/([^/]+)\/$/) || [])[1];
function apiPath(path) {
  return DEPLOYMENT ? path.replace(/^\/api\/v1\//, "/api/v1/deployments/" + DEPLOYMENT + "/") : path;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(apiPath(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new APIError(0, "unreachable", "rewind does not answer at " + location.host + " (" + e.message + ")");
  }
  let env;
  try { env = await resp.json(); } catch (e) {
    throw new APIError(resp.status, "bad_answer", "rewind answered " + resp.status + " without the JSON envelope");
  }
  if (!env.ok) {
    const err = env.error || {};
    if (resp.status === 401) askToken(token ? "This token was refused: " + err.message : err.message);
    throw new APIError(resp.status, err.code, err.message || ("HTTP " + resp.status));
  }
  return env.data;
}

// askToken shows the token box with why it is asked for.
function askToken(message) {
  $("token-box").hidden = false;
  const e = $("token-error");
  e.textContent = message || "";
  e.hidden = !message;
}

// initToken wires the token box and "forget token": a token given is kept
// in this browser (localStorage, one for every page of this origin) and
// then onToken runs.
function initToken(onToken) {
  $("forget-token").hidden = !localStorage.getItem(TOKEN_KEY);
  $("forget-token").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); location.reload(); });
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    $("forget-token").hidden = false;
    $("token-box").hidden = true;
    onToken();
  });
}

// ---- formatting -----------------------------------------------------------

function isoSecond(t) { return new Date(t * 1000).toISOString().replace(".000Z", "Z"); }
// tsText shows an oplog timestamp; increment 2^32-1 is how the API says
// "after every entry of that second".
function tsText(ts) {
  if (!ts) return "–";
  return ts.time + (ts.i === 4294967295 ? " (end of that second)" : " (" + ts.t + ":" + ts.i + ")");
}
function shortTime(s) { return s ? s.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "–"; }
function mib(n) { return (n / 1048576).toFixed(n < 10485760 ? 2 : 1) + " MiB"; }
function duration(s) {
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}
function setText(id, text, cls) { const e = $(id); e.textContent = text; e.className = cls || ""; }
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
