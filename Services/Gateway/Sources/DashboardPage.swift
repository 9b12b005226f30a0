import Shared

/// `GET /dashboard`: one self-contained page (inline CSS and JavaScript, no
/// external resources, no build step) that polls `GET /v1/mesh` and draws
/// the mesh: DHT nodes and their links, the expert grid coloured by load and
/// failures, hosts, averaging groups, state donors and trainers' progress.
/// The page passes its own query string (`prefix`, `grid`, `run`,
/// `group_bits`) on to `/v1/mesh`; `interval` sets the polling period in ms.
/// It builds the DOM with `textContent` only: values from the DHT are never parsed as HTML.
enum DashboardPage {
    static var response: HTTPResponse {
        HTTPResponse(status: 200, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            // The page may talk to this gateway only, and load nothing from anywhere.
            ("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:"),
        ], body: Array(html.utf8))
    }

    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hivemind mesh</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#0f1419; --panel:#171e26; --line:#2a3440; --text:#d8e0e8; --dim:#7d8b99; --ok:#3ecf8e; --bad:#f0524f; --warn:#f5a623; --accent:#5aa9ff; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text); font:13px/1.4 system-ui, sans-serif; }
  header { display:flex; align-items:center; gap:16px; padding:10px 16px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:16px; margin:0; }
  #status { padding:2px 10px; border-radius:10px; background:var(--line); }
  #status[data-state=live] { background:#1d4d36; color:var(--ok); }
  #status[data-state=error] { background:#4d1d1d; color:var(--bad); }
  header form { margin-left:auto; display:flex; gap:6px; }
  header input { background:var(--panel); color:var(--text); border:1px solid var(--line); padding:3px 6px; width:90px; }
  header button { background:var(--line); color:var(--text); border:0; padding:3px 10px; cursor:pointer; }
  main { display:grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap:12px; padding:12px 16px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 8px; }
  section.wide { grid-column: 1 / -1; }
  #counters { display:flex; gap:24px; flex-wrap:wrap; }
  .counter b { display:block; font-size:22px; }
  .counter span { color:var(--dim); }
  table { border-collapse:collapse; width:100%; }
  th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:260px; }
  th { color:var(--dim); font-weight:normal; }
  .mono { font-family: ui-monospace, monospace; }
  .up { color:var(--ok); } .down { color:var(--bad); } .dim { color:var(--dim); }
  .error { color:var(--bad); margin:4px 0; }
  .grid { display:grid; gap:4px; }
  .cell { border-radius:4px; min-height:44px; padding:3px 5px; font-size:11px; border:2px solid transparent; overflow:hidden; }
  .cell .uid { font-family: ui-monospace, monospace; font-weight:bold; }
  .cell.empty { border:1px dashed var(--line); color:var(--dim); }
  .cell.gone { background:#3a1414 !important; color:#f0a0a0; }
  .legend { display:flex; gap:14px; margin-top:8px; color:var(--dim); flex-wrap:wrap; }
  .swatch { display:inline-block; width:12px; height:12px; border-radius:3px; vertical-align:middle; margin-right:4px; }
  svg text { fill:var(--text); font-size:10px; }
</style>
</head>
<body>
<header>
  <h1>hivemind mesh</h1>
  <span id="status" data-state="loading">loading…</span>
  <span id="updated" class="dim"></span>
  <form id="query">
    <label>prefix <input name="prefix" placeholder="ffn."></label>
    <label>grid <input name="grid" placeholder="auto"></label>
    <label>run <input name="run" placeholder="digits"></label>
    <button>show</button>
  </form>
</header>
<main>
  <section class="wide"><div id="counters"></div><div id="errors"></div></section>
  <section><h2>DHT nodes</h2><svg id="dht-graph" width="100%" height="200" viewBox="0 0 400 200"></svg><div id="dht"></div></section>
  <section><h2>Expert hosts</h2><div id="hosts"></div></section>
  <section class="wide"><h2>Experts <span id="grid-name" class="dim"></span></h2><div id="grid"></div>
    <div class="legend">
      <span><i class="swatch" style="background:#24303c"></i>idle</span>
      <span><i class="swatch" style="background:#3ecf8e"></i>busiest (calls per second through this gateway; at first, calls so far)</span>
      <span><i class="swatch" style="border:2px solid #f0524f"></i>failed calls (ring width: share of calls)</span>
      <span><i class="swatch" style="background:#3a1414"></i>gone from the DHT</span>
      <span><i class="swatch" style="border:1px dashed #2a3440"></i>no expert</span>
    </div>
  </section>
  <section><h2>Averaging</h2><div id="averaging"></div></section>
  <section><h2>Trainers</h2><div id="trainers"></div></section>
</main>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const interval = Math.max(250, Number(params.get("interval")) || 1000);
const apiQuery = new URLSearchParams();
for (const name of ["prefix", "grid", "run", "group_bits"]) if (params.get(name)) apiQuery.set(name, params.get(name));
const api = "/v1/mesh" + (apiQuery.toString() ? "?" + apiQuery : "");
const form = document.getElementById("query");
for (const input of form.elements) if (input.name && params.get(input.name)) input.value = params.get(input.name);
form.addEventListener("submit", event => {
  event.preventDefault();
  const next = new URLSearchParams();
  for (const input of form.elements) if (input.name && input.value.trim()) next.set(input.name, input.value.trim());
  location.search = next.toString();
});

// Past snapshots (for call rates) and each trainer's losses (for its sparkline).
const history = [];
const losses = new Map();

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null) continue;
    if (name === "style") node.style.cssText = value; else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function svg(tag, attributes, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
function table(headers, rows) {
  return el("table", {}, el("tr", {}, headers.map(h => el("th", {}, h))), rows);
}
function replace(id, ...children) {
  document.getElementById(id).replaceChildren(...children.flat().filter(child => child !== null && child !== undefined));
}
function short(id) { return typeof id === "string" ? id.slice(0, 10) : "?"; }
function number(value, digits) { return typeof value === "number" ? value.toFixed(digits) : "–"; }
function state(ok, yes, no) { return el("span", { class: ok ? "up" : "down" }, ok ? yes : no); }

async function poll() {
  try {
    const response = await fetch(api, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : "HTTP " + response.status);
    render(body);
    const status = document.getElementById("status");
    status.dataset.state = "live";
    status.textContent = "live";
  } catch (error) {
    const status = document.getElementById("status");
    status.dataset.state = "error";
    status.textContent = "cannot read /v1/mesh: " + error.message;
  }
  setTimeout(poll, interval);
}

function render(mesh) {
  history.push(mesh);
  while (history.length > 1 && mesh.time - history[0].time > 10) history.shift();
  document.getElementById("updated").textContent = "updated " + new Date(mesh.time * 1000).toLocaleTimeString();
  const nodes = mesh.dht.nodes || [], hosts = mesh.experts.hosts || [], experts = mesh.experts.experts || [];
  const averagers = mesh.averaging.averagers || [], trainers = mesh.averaging.trainers || [];
  replace("counters", [
    [nodes.filter(n => n.reachable).length + " / " + nodes.length, "DHT nodes up"],
    [hosts.filter(h => h.reachable).length + " / " + hosts.length, "expert hosts up"],
    [experts.filter(e => e.alive).length + " / " + experts.length, "experts alive"],
    [averagers.length, "averagers"],
    [(mesh.averaging.groups || []).length, "groups forming"],
    [trainers.length, "trainers reporting"],
  ].map(([value, label]) => el("div", { class: "counter" }, el("b", {}, value), el("span", {}, label))));
  replace("errors", ["dht", "experts", "averaging"].filter(name => mesh[name].error)
    .map(name => el("div", { class: "error" }, name + ": " + mesh[name].error)));
  renderDHT(nodes, mesh.dht.unvisited);
  renderHosts(hosts);
  renderGrid(mesh.experts);
  renderAveraging(mesh.averaging);
  renderTrainers(trainers, mesh.time, mesh.averaging.progress_key);
}

function renderDHT(nodes, unvisited) {
  const reachable = nodes.filter(n => n.node_id);
  const position = new Map();
  reachable.forEach((node, index) => {
    const angle = 2 * Math.PI * index / Math.max(1, reachable.length) - Math.PI / 2;
    position.set(node.node_id, [200 + 140 * Math.cos(angle) * (reachable.length > 1 ? 1 : 0), 100 + 75 * Math.sin(angle) * (reachable.length > 1 ? 1 : 0)]);
  });
  const lines = [];
  for (const node of reachable) for (const peer of node.peers || []) {
    if (!position.has(peer)) continue;
    const [x1, y1] = position.get(node.node_id), [x2, y2] = position.get(peer);
    lines.push(svg("line", { x1, y1, x2, y2, stroke: "#3b4b5c", "stroke-width": 1.5 }));
  }
  const dots = reachable.map(node => {
    const [x, y] = position.get(node.node_id);
    return svg("g", {}, svg("circle", { cx: x, cy: y, r: 9 + Math.min(8, node.records || 0) / 2, fill: node.configured ? "#5aa9ff" : "#8a6cff" }),
      svg("text", { x: x + 12, y: y + 4 }, short(node.node_id) + " (" + (node.routing_table_size ?? 0) + " peers)"));
  });
  replace("dht-graph", lines, dots);
  replace("dht", table(["node id", "address", "peers", "records", "cached", ""], nodes.map(node =>
    el("tr", { "data-node-id": node.node_id },
      el("td", { class: "mono", title: node.node_id || "" }, node.node_id ? short(node.node_id) : "?"),
      el("td", { class: "mono" }, node.url + (node.configured ? "" : " (found)")),
      el("td", {}, node.routing_table_size ?? "–"), el("td", {}, node.records ?? "–"), el("td", {}, node.cached_records ?? "–"),
      el("td", { title: node.error || "" }, state(node.reachable, "up", "down"))))),
    unvisited ? el("div", { class: "dim" }, unvisited + " more nodes known, not shown") : null);
}

function renderHosts(hosts) {
  replace("hosts", hosts.length ? table(["host", "experts", "", ""], hosts.map(host =>
    el("tr", {},
      el("td", { class: "mono" }, host.url),
      el("td", { title: host.experts.join(" ") }, host.experts.length + ": " + host.experts.slice(0, 6).join(" ") + (host.experts.length > 6 ? " …" : "")),
      el("td", { title: host.error || "" }, state(host.reachable, "up", "down")),
      el("td", {}, host.declared ? el("span", { class: "up" }, "in DHT") : el("span", { class: "down" }, "left DHT")))))
    : el("div", { class: "dim" }, "no expert host declares experts under this prefix"));
}

/// Calls per second over the last 2 to 10 seconds (answered and failed, both
/// passes); empty until the history spans 2 seconds.
function callRates() {
  const rates = new Map();
  const last = history[history.length - 1];
  const first = history.filter(past => last.time - past.time >= 2).pop();
  if (!first) return rates;
  const seconds = last.time - first.time;
  const before = new Map((first.experts.experts || []).map(e => [e.uid, e]));
  for (const expert of last.experts.experts || []) {
    const past = before.get(expert.uid);
    const calls = e => e ? e.forward_calls + e.backward_calls + e.failures : 0;
    rates.set(expert.uid, { calls: (calls(expert) - calls(past)) / seconds, failures: (expert.failures - (past ? past.failures : 0)) / seconds });
  }
  return rates;
}

function renderGrid(section) {
  const experts = section.experts || [], size = section.grid || [];
  document.getElementById("grid-name").textContent = section.prefix + " grid " + (size.length ? size.join(" × ") : "(empty)");
  const rates = callRates();
  const busiest = Math.max(0.5, ...[...rates.values()].map(r => r.calls));
  const totalCalls = e => e.forward_calls + e.backward_calls;
  const mostCalls = Math.max(1, ...experts.map(totalCalls));
  const cells = size.reduce((a, b) => a * b, 1);
  const byCoordinates = new Map(experts.map(e => [e.coordinates.join("."), e]));
  const columns = size.length > 1 ? size.slice(1).reduce((a, b) => a * b, 1) : Math.max(1, size[0] || 1);
  const coordinates = [];
  if (size.length && cells <= 4096) {
    for (let index = 0; index < cells; index++) {
      let rest = index; const point = [];
      for (let d = size.length - 1; d >= 0; d--) { point.unshift(rest % size[d]); rest = Math.floor(rest / size[d]); }
      coordinates.push(point.join("."));
    }
  } else coordinates.push(...byCoordinates.keys());
  const cellsShown = coordinates.map(key => {
    const expert = byCoordinates.get(key);
    if (!expert) return el("div", { class: "cell empty" }, key);
    const rate = rates.get(expert.uid);
    // Load: this gateway's recent call rate, relative to the busiest expert; before
    // there is history, the share of all calls so far.
    const load = rate ? Math.min(1, rate.calls / busiest) : totalCalls(expert) / mostCalls;
    const attempts = totalCalls(expert) + expert.failures;
    const failureShare = attempts ? expert.failures / attempts : 0;
    const mix = (a, b) => Math.round(a + (b - a) * load);
    const style = "background: rgb(" + mix(36, 62) + "," + mix(48, 207) + "," + mix(60, 142) + ");"
      + (expert.failures ? "border-color: #f0524f; border-width:" + (2 + Math.round(6 * failureShare)) + "px;" : "")
      + (load > 0.6 ? "color:#0f1419;" : "");
    const title = expert.uid + " on " + (expert.host || "?") + "\n" + expert.forward_calls + " forward, " + expert.backward_calls + " backward, "
      + expert.failures + " failed; mean " + number(expert.mean_seconds ? expert.mean_seconds * 1000 : null, 1) + " ms; " + (expert.steps ?? "?") + " steps on its host";
    return el("div", { class: "cell" + (expert.alive ? "" : " gone"), style, title, "data-uid": expert.uid },
      el("div", { class: "uid" }, expert.uid),
      el("div", {}, totalCalls(expert) + " calls" + (expert.failures ? ", " + expert.failures + " failed" : "")),
      el("div", {}, expert.alive ? (expert.steps ?? "?") + " steps" : "gone"));
  });
  const grid = el("div", { class: "grid", style: "grid-template-columns: repeat(" + Math.min(columns, 16) + ", minmax(0, 1fr));" }, cellsShown);
  replace("grid", experts.length || cells > 1 ? grid : el("div", { class: "dim" }, "no experts under " + section.prefix));
}

function renderAveraging(section) {
  const groups = section.groups || [], donors = section.donors || [], averagers = section.averagers || [];
  const peerList = (peers, describe) => peers.map(p => el("div", { class: "mono" }, p.peer + " " + describe(p)));
  replace("averaging",
    el("div", { class: "dim" }, "run " + section.run),
    groups.length ? table(["group key", "peers"], groups.map(g => el("tr", {}, el("td", { class: "mono" }, g.key),
      el("td", {}, peerList(g.peers, p => (p.looking ? "looking" : "left") + ", " + number(p.expires_in, 0) + " s")))))
      : el("div", { class: "dim" }, "no group forming now (keys " + section.run + "{,_grads,_state}.0b…)"),
    donors.length ? table(["state donors", "peers"], donors.map(d => el("tr", {}, el("td", { class: "mono" }, d.key),
      el("td", {}, peerList(d.peers, p => "priority " + JSON.stringify(p.priority))))))
      : el("div", { class: "dim" }, "no state donors"),
    averagers.length ? table(["averager", "mode", "group keys", ""], averagers.map(a => el("tr", {},
      el("td", { class: "mono" }, a.peer), el("td", {}, a.mode || "–"),
      el("td", { class: "mono" }, a.group_keys ? Object.values(a.group_keys).join(" ") || "none yet" : "–"),
      el("td", { title: a.error || "" }, state(a.reachable, "up", a.error && a.error.startsWith("a client") ? "client" : "down")))))
      : null);
}

function sparkline(values) {
  if (values.length < 2) return "";
  const low = Math.min(...values), high = Math.max(...values), span = Math.max(1e-9, high - low);
  const points = values.map((v, i) => (i * 100 / (values.length - 1)).toFixed(1) + "," + (18 - 16 * (v - low) / span).toFixed(1)).join(" ");
  return svg("svg", { width: 100, height: 20 }, svg("polyline", { points, fill: "none", stroke: "#5aa9ff", "stroke-width": 1.5 }));
}

function renderTrainers(trainers, now, key) {
  for (const trainer of trainers) {
    if (typeof trainer.loss !== "number") continue;
    const series = losses.get(trainer.subkey) || [];
    const stamp = trainer.time ?? trainer.step ?? trainer.epoch;
    if (!series.length || series[series.length - 1].stamp !== stamp) series.push({ stamp, loss: trainer.loss });
    while (series.length > 120) series.shift();
    losses.set(trainer.subkey, series);
  }
  const working = trainers.filter(t => typeof t.epoch === "number" && !t.client_mode);
  const runEpoch = working.length ? Math.max(...working.map(t => t.epoch)) : null;
  replace("trainers", runEpoch !== null ? el("div", { class: "dim" }, "run epoch " + runEpoch + " (the highest epoch of a trainer that is not a client)") : null,
    trainers.length ? table(["trainer", "epoch", "loss", "samples", "samples/s", "updated", "loss trend"], trainers.map(t =>
    el("tr", { "data-trainer": t.subkey },
      el("td", { class: "mono", title: t.subkey }, t.trainer),
      el("td", {}, t.epoch ?? "–"), el("td", {}, number(t.loss, 4)),
      el("td", {}, t.samples_accumulated ?? t.samples ?? "–"), el("td", {}, number(t.samples_per_second, 1)),
      el("td", {}, typeof t.time === "number" ? number(now - t.time, 0) + " s ago" : "–"),
      el("td", {}, sparkline((losses.get(t.subkey) || []).map(p => p.loss))))))
    : el("div", { class: "dim" }, "no progress records under the DHT key " + key));
}

poll();
</script>
</body>
</html>
"""#
}
