// rewind server's home page: every deployment (GET /api/v1/deployments),
// trouble first, each linking to its own page. Data goes into the page as
// text only.
"use strict";

const TOKEN_KEY = "rewind.api-token";

async function fleetAPI(method, path, body) {
  const headers = { "Accept": "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const env = await resp.json();
  if (!env.ok) throw new Error(env.error.message);
  return env.data;
}

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text;
  tr.appendChild(td);
  return td;
}

async function refresh() {
  const err = document.getElementById("f-error");
  let list;
  try { list = await fleetAPI("GET", "/api/v1/deployments"); err.hidden = true; }
  catch (e) { err.textContent = e.message; err.hidden = false; return; }
  const body = document.querySelector("#deployments tbody");
  body.replaceChildren();
  for (const d of list) {
    const tr = document.createElement("tr");
    const a = document.createElement("a");
    a.href = "/deployments/" + encodeURIComponent(d.name) + "/";
    a.textContent = d.name;
    cell(tr, "").appendChild(a);
    cell(tr, d.state + (d.error ? ": " + d.error : ""));
    cell(tr, d.lag_seconds == null ? "—" : d.lag_seconds.toFixed(1) + " s");
    cell(tr, d.restore_window ? d.restore_window.from.time + " → " + d.restore_window.to.time : "none");
    cell(tr, d.last_snapshot ? d.last_snapshot.finished : "none");
    cell(tr, d.alerts_firing.join(", ") || "none");
    cell(tr, (d.bytes_stored / 1048576).toFixed(1) + " MiB");
    cell(tr, d.holder ? d.holder.host + " pid " + d.holder.pid + (d.holder.this_process ? " (this process)" : "") : "nobody");
    body.appendChild(tr);
  }
  document.getElementById("summary").textContent = list.length + " deployments";
}

refresh();
setInterval(refresh, 5000);
