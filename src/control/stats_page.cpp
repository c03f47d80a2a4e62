// The live stats page (GET /stats): one self-contained document, no external assets, so it works
// offline and behind any firewall. It polls /stats.json every second and redraws in place.
// Every number shown sits in an element with data-field (its path in stats.json) and data-value
// (the raw value), which the browser test reads.
#include "metrics.hpp"

namespace zcproxy {

std::string_view stats_page_html() {
  return R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zcproxy stats</title>
<style>
  :root { --fg:#1d2330; --muted:#677084; --line:#e3e6ec; --up:#2f6fde; --down:#1aa37a; --bad:#d64545; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f6f7f9; }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #1d2330; color: #fff; }
  header h1 { margin: 0; font-size: 18px; }
  header span { color: #b9c0cf; }
  #status.offline { color: #ffb3b3; }
  main { padding: 18px 24px; max-width: 1200px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 24px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-top: 14px; }
  section h2 { margin: 0 0 8px; font-size: 15px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; font-size: 12px; }
  td.num, th.num { text-align: right; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; color: #fff; }
  .badge.up { background: var(--down); } .badge.down { background: var(--bad); } .badge.ejected { background: #c98a1b; }
  .badge.drain { background: #6b7fa8; } .badge.maint { background: #777; }
  .legend { display: flex; gap: 14px; color: var(--muted); font-size: 12px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
  svg text { fill: var(--muted); font-size: 11px; }
</style>
</head>
<body>
<header>
  <h1>zcproxy</h1>
  <span id="version"></span>
  <span>up <b id="uptime">-</b></span>
  <span id="status" data-refreshes="0">connecting...</span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Active connections</div><div class="value" id="active" data-field="connections_active">-</div></div>
    <div class="card"><div class="label">Client &rarr; upstream</div><div class="value" id="rate-up" data-field="history.up">-</div></div>
    <div class="card"><div class="label">Upstream &rarr; client</div><div class="value" id="rate-down" data-field="history.down">-</div></div>
    <div class="card"><div class="label">Moved by splice</div><div class="value" id="splice-share" data-field="splice_share">-</div></div>
    <div class="card"><div class="label">Errors</div><div class="value" id="errors" data-field="errors">-</div></div>
    <div class="card"><div class="label">Pipes leased / idle</div><div class="value" id="pipes" data-field="pipes">-</div></div>
  </div>
  <section>
    <h2>Throughput, last minute</h2>
    <div class="legend"><span><i style="background:var(--up)"></i>client &rarr; upstream</span><span><i style="background:var(--down)"></i>upstream &rarr; client</span></div>
    <svg id="chart" viewBox="0 0 760 180" width="100%" height="180" role="img" aria-label="throughput over the last minute"></svg>
  </section>
  <section>
    <h2>Listeners</h2>
    <table><thead><tr><th>Name</th><th>Address</th><th>Routes to</th><th class="num">Active</th><th class="num">Accepted</th>
      <th class="num">Bytes up</th><th class="num">Bytes down</th><th class="num">Splice</th><th class="num">Refused</th><th class="num">Errors</th></tr></thead>
      <tbody id="listeners"></tbody></table>
  </section>
  <section>
    <h2>Upstream endpoints</h2>
    <table><thead><tr><th>Upstream</th><th>Endpoint</th><th>Health</th><th class="num">Weight</th><th class="num">Active</th><th class="num">Connections</th>
      <th class="num">Connect failures</th><th class="num">Bytes up</th><th class="num">Bytes down</th></tr></thead>
      <tbody id="endpoints"></tbody></table>
  </section>
</main>
<script>
"use strict";
const REFUSALS = ["denied", "limit", "proxy_header", "sni_timeout", "client_hello", "no_route"];
const ERRORS = ["reset", "splice_refused", "connect_failed", "connect_timeout", "no_endpoint",
                "source_failed", "proxy_header", "sni_timeout", "client_hello"];
const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
function bytes(n) {
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + " " + units[i];
}
function bits(bytesPerSecond) {
  const b = bytesPerSecond * 8, u = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
  let n = b, i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(n < 10 ? 2 : 1) + " " + u[i];
}
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
function sum(obj, keys) { return keys.reduce((t, k) => t + (obj[k] || 0), 0); }
function share(spliced, copied) {
  const t = spliced + copied;
  return t ? (100 * spliced / t).toFixed(1) + "%" : "-";
}
function set(el, text, value) {
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
}
function cell(row, text, field, value, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (field) td.dataset.field = field;
  if (value !== undefined) td.dataset.value = String(value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function chart(history) {
  const svg = document.getElementById("chart"), H = 180, L = 70, B = 20, T = 8;
  // Drawn in the svg's own pixels: a fixed viewBox would be scaled to the 180px height and
  // centred, leaving most of a wide section empty.
  const W = Math.max(320, Math.round(svg.getBoundingClientRect().width));
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const ns = "http://www.w3.org/2000/svg";
  const el = (name, attrs) => {
    const e = document.createElementNS(ns, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    svg.appendChild(e);
    return e;
  };
  const now = history.length ? history[history.length - 1].time : 0;
  const max = Math.max(1, ...history.map(h => Math.max(h.up, h.down)));
  const x = t => L + (W - L - 4) * (1 - (now - t) / 60);
  const y = v => T + (H - T - B) * (1 - v / max);
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    el("line", {x1: L, x2: W - 4, y1: y(v), y2: y(v), stroke: "#e3e6ec"});
    el("text", {x: L - 6, y: y(v) + 4, "text-anchor": "end"}).textContent = bits(v);
  }
  for (const s of [60, 45, 30, 15, 0])
    // "now" sits at the right edge: anchored at its end, it is not clipped.
    el("text", {x: x(now - s), y: H - 4, "text-anchor": s ? "middle" : "end"}).textContent = s ? "-" + s + "s" : "now";
  for (const [key, color] of [["up", "var(--up)"], ["down", "var(--down)"]]) {
    const points = history.filter(h => now - h.time <= 60).map(h => x(h.time).toFixed(1) + "," + y(h[key]).toFixed(1));
    if (points.length) el("polyline", {points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2});
  }
}
function render(s) {
  document.getElementById("version").textContent = "v" + s.version;
  document.getElementById("uptime").textContent = duration(s.now - s.start_time);
  set(document.getElementById("active"), String(s.connections_active), s.connections_active);
  const last = s.history.length ? s.history[s.history.length - 1] : {up: 0, down: 0};
  set(document.getElementById("rate-up"), bits(last.up), last.up);
  set(document.getElementById("rate-down"), bits(last.down), last.down);
  let spliced = 0, copied = 0, errors = 0;
  for (const l of s.listeners) { spliced += l.spliced; copied += l.copied; errors += sum(l.closed, ERRORS); }
  set(document.getElementById("splice-share"), share(spliced, copied), spliced);
  set(document.getElementById("errors"), String(errors), errors);
  set(document.getElementById("pipes"), s.pipes.leased + " / " + s.pipes.idle, s.pipes.leased);
  chart(s.history);

  const lt = document.getElementById("listeners");
  lt.replaceChildren();
  for (const l of s.listeners) {
    const r = lt.insertRow(), f = "listeners." + l.name + ".";
    cell(r, l.name); cell(r, l.bind); cell(r, l.destination);
    cell(r, String(l.active), f + "active", l.active, "num");
    cell(r, String(l.accepted), f + "accepted", l.accepted, "num");
    cell(r, bytes(l.bytes_up), f + "bytes_up", l.bytes_up, "num");
    cell(r, bytes(l.bytes_down), f + "bytes_down", l.bytes_down, "num");
    cell(r, share(l.spliced, l.copied), f + "spliced", l.spliced, "num");
    const refused = sum(l.closed, REFUSALS);
    cell(r, String(refused), f + "refused", refused, "num");
    const errs = sum(l.closed, ERRORS);
    cell(r, String(errs), f + "errors", errs, "num");
  }
  const et = document.getElementById("endpoints");
  et.replaceChildren();
  for (const e of s.endpoints) {
    const r = et.insertRow(), f = "endpoints." + e.upstream + "." + e.address + ".";
    cell(r, e.upstream); cell(r, e.name ? e.address + " (" + e.name + ")" : e.address);
    const state = e.state !== "ready" ? e.state : !e.healthy ? "down" : e.usable ? "up" : "ejected";
    const badge = document.createElement("span");
    badge.className = "badge " + state;
    badge.textContent = state;
    const h = cell(r, "", f + "healthy", e.healthy);
    h.appendChild(badge);
    cell(r, String(e.weight), f + "weight", e.weight, "num");
    cell(r, String(e.active), f + "active", e.active, "num");
    cell(r, String(e.connections), f + "connections", e.connections, "num");
    cell(r, String(e.connect_failures), f + "connect_failures", e.connect_failures, "num");
    cell(r, bytes(e.bytes_up), f + "bytes_up", e.bytes_up, "num");
    cell(r, bytes(e.bytes_down), f + "bytes_down", e.bytes_down, "num");
  }
}
const status = document.getElementById("status");
let refreshes = 0;
async function refresh() {
  try {
    const response = await fetch("stats.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    refreshes++;
    status.className = "";
    status.dataset.refreshes = String(refreshes);
    status.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    status.className = "offline";
    status.textContent = "offline (" + e.message + "), retrying";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)html";
}

}  // namespace zcproxy
