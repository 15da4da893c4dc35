// The streamproc dashboard: one server-sent event stream (events?access_token=...), merged into
// `state` and drawn with uPlot; the customer lookup calls GET /v1/customers/{id}. Everything is
// served by the worker: nothing is loaded from elsewhere.
"use strict";

const COLORS = ["#2458d3", "#e07a10", "#1a7f37", "#c62828", "#7b3fbf", "#0f8b8d", "#8a6d00", "#d6336c", "#495057"];
const state = { sections: {}, ops: [], models: [] };
const charts = {};
const dash = { state, charts, messages: 0, snapshots: 0, errors: [] };
window.dash = dash;

const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined || Number.isNaN(n)) ? "-" : Number(n).toLocaleString("en");
const fix = (n, d = 3) => (n === null || n === undefined) ? "-" : Number(n).toFixed(d);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const when = (iso) => iso ? String(iso).replace("T", " ").replace(/(\.\d+)?\+00:00$/, "Z") : "-";

// ----- the token -------------------------------------------------------------------------------
function token() {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) { sessionStorage.setItem("streamproc-token", fromUrl); return fromUrl; }
  return sessionStorage.getItem("streamproc-token");
}

function askToken(message) {
  $("board").classList.add("hidden");
  $("token-form").classList.remove("hidden");
  if (message) $("token-form").querySelector(".note").textContent = message;
  $("token-form").onsubmit = (e) => {
    e.preventDefault();
    sessionStorage.setItem("streamproc-token", $("token-input").value.trim());
    location.reload();
  };
}

// ----- the stream ------------------------------------------------------------------------------
function connect(tok) {
  const src = new EventSource("events?access_token=" + encodeURIComponent(tok));
  src.addEventListener("snapshot", (e) => {
    const doc = JSON.parse(e.data);
    state.ops = doc.ops_points || [];
    state.models = doc.model_points || [];
    delete doc.ops_points; delete doc.model_points;
    state.sections = doc;
    dash.snapshots++; dash.messages++;
    render();
  });
  src.addEventListener("tick", (e) => {
    const doc = JSON.parse(e.data);
    if (doc.ops_point) { state.ops.push(doc.ops_point); if (state.ops.length > 300) state.ops.shift(); }
    for (const p of doc.model_points || []) state.models.push(p);
    if (state.models.length > 500) state.models.splice(0, state.models.length - 500);
    delete doc.ops_point; delete doc.model_points;
    Object.assign(state.sections, doc);
    dash.messages++;
    render();
  });
  src.onopen = () => setStatus(true);
  src.onerror = () => {
    setStatus(false);
    if (src.readyState === EventSource.CLOSED) {  // refused (401/403): the token is wrong
      fetch("events?access_token=" + encodeURIComponent(tok)).then((r) => r.json()).then((b) => askToken(b.error.message))
        .catch(() => setTimeout(() => connect(tok), 3000));
    }
  };
}

function setStatus(on) {
  const el = $("status");
  el.className = "status " + (on ? "on" : "off");
  el.textContent = on ? "live" : "reconnecting";
}

// ----- charts ----------------------------------------------------------------------------------
function plot(id, labels, data, opts = {}) {
  const el = $(id);
  const key = labels.join("|");
  let c = charts[id];
  if (c && c.key !== key) { c.u.destroy(); c = null; }
  if (!c) {
    const series = [{}].concat(labels.map((l, i) => ({
      label: l, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: false },
      value: (u, v) => v === null || v === undefined ? "-" : (opts.digits !== undefined ? v.toFixed(opts.digits) : fmt(v)),
    })));
    const u = new uPlot({
      width: Math.max(el.clientWidth, 300), height: 220, series,
      scales: { x: { time: opts.time !== false }, y: opts.y || {} },
      axes: [{ label: opts.xLabel }, { size: 60 }],
      legend: { live: true },
    }, data, el);
    c = charts[id] = { u, key };
    if (dash.firstChartMs === undefined) dash.firstChartMs = Math.round(performance.now());
  } else {
    c.u.setData(data);
  }
  c.points = data[0].length;
}

function drawRates() {
  const pts = state.ops;
  if (!pts.length) return;
  const topics = Object.keys(pts[pts.length - 1].rates);
  plot("c-rates", topics, [pts.map((p) => p.t), ...topics.map((t) => pts.map((p) => p.rates[t] ?? null))]);
}

function drawHistory() {
  const h = state.sections.history;
  if (!h || !h.t.length) return;
  const stages = Object.keys(h.stages), rules = Object.keys(h.alerts);
  plot("c-stages", stages, [h.t, ...stages.map((s) => h.stages[s])]);
  if (rules.length) plot("c-alerts", rules, [h.t, ...rules.map((r) => h.alerts[r])]);
}

function drawModels() {
  const pts = state.models.filter((p) => p.churn);
  if (!pts.length) return;
  const x = pts.map((p) => p.version);
  const baselines = Object.keys(pts[pts.length - 1].churn.baselines || {});
  plot("c-auc", ["served", "model", ...baselines, "calibration error (ECE)"],
       [x, pts.map((p) => p.churn.served_auc), pts.map((p) => p.churn.model_auc),
        ...baselines.map((b) => pts.map((p) => (p.churn.baselines || {})[b] ?? null)), pts.map((p) => p.churn.ece)],
       { time: false, digits: 3, xLabel: "model version" });
  plot("c-mae", ["model", "running mean"],
       [x, pts.map((p) => p.satisfaction.mae), pts.map((p) => p.satisfaction.baseline_mae)],
       { time: false, digits: 3, xLabel: "model version" });
}

// ----- tables ----------------------------------------------------------------------------------
function rows(id, head, body) {
  $(id).innerHTML = "<tr>" + head.map((h) => `<th${h.n ? ' class="n"' : ""}>${esc(h.t ?? h)}</th>`).join("") + "</tr>" +
    (body.length ? body.map((r) => "<tr>" + r.map((v, i) => `<td${head[i].n ? ' class="n"' : ""}>${v}</td>`).join("") + "</tr>").join("")
      : `<tr><td colspan="${head.length}" class="note">none yet</td></tr>`);
}

function renderTiles() {
  const s = state.sections, t = s.totals || {}, last = state.ops[state.ops.length - 1] || { rates: {}, lag: {} };
  const rin = Object.values(t.records_in || {}).reduce((a, b) => a + b, 0);
  const rate = Object.entries(last.rates).filter(([k]) => k !== "applied").reduce((a, [, v]) => a + v, 0);
  $("t-in").textContent = fmt(rin);
  $("t-applied").textContent = fmt(t.applied);
  $("t-rate").textContent = fmt(Math.round(rate));
  $("t-lag").textContent = fmt(Object.values(last.lag || {}).reduce((a, b) => a + b, 0));
  $("t-dead").textContent = fmt(t.dead_lettered);
  $("t-alerts").textContent = fmt(t.alerts);
  $("t-hooks").textContent = fmt((s.webhooks || {}).delivered);
  const churn = (s.models || {}).churn || {};
  $("t-model").textContent = churn.version ? `v${churn.version} · AUC ${fix((churn.served || {}).auc, 2)}` : "-";
  const wm = (s.event_time || {}).watermark;
  $("event-time").textContent = wm ? new Date(wm * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z" : "-";
}

function renderTables() {
  const s = state.sections;
  rows("flows", ["from", "to", { t: "customers", n: true }],
       Object.entries(s.flows || {}).map(([k, n]) => { const [a, b] = k.split(">"); return [esc(a || "(new)"), esc(b), fmt(n)]; }));
  const segs = s.segments || {};
  $("segments").innerHTML = ["lifecycle", "rfm", "value"].map((dim) => {
    const e = Object.entries(segs[dim] || {}), max = Math.max(1, ...e.map(([, n]) => n));
    return `<div class="seg"><h3>${dim === "value" ? "value tier" : dim}</h3><table>` + e.map(([k, n]) =>
      `<tr><td>${esc(k)}</td><td class="n">${fmt(n)}</td><td style="width:45%"><div class="bar" style="width:${(100 * n / max).toFixed(0)}%"></div></td></tr>`).join("") +
      "</table></div>";
  }).join("");
  rows("clusters", ["cluster", { t: "customers", n: true }, "description"],
       (s.clusters || []).map((c) => [esc(c.cluster), fmt(c.customers), esc(c.description || "-")]));
  $("alerts").innerHTML = (s.alerts || []).map((a) => {
    const facts = (a.facts || []).map((f) => `${esc(f.attr)} ${esc(f.op)} ${esc(JSON.stringify(f.value))} (saw ${esc(JSON.stringify(f.saw))})`).join("; ");
    const reasons = (a.reasons || []).map((r) => `${esc(r.feature)} ${esc(r.direction)}`).join(", ");
    return `<li><span class="sev ${esc(a.severity)}">${esc(a.severity)}</span> <b>${esc(a.rule)}</b> · ${esc(when(a.ts))}` +
      `${a.held_out ? ' <span class="note">held out</span>' : ""}<div class="why">${esc(a.message)}</div>` +
      `<div class="why">${facts}${reasons ? " · " + reasons : ""}</div></li>`;
  }).join("") || '<li class="note">none yet</li>';
  const m = (s.models || {}).churn || {};
  rows("calibration", [{ t: "mean score", n: true }, { t: "share churned", n: true }, { t: "labels", n: true }],
       (m.calibration || []).map((d) => [fix(d.mean_predicted), fix(d.observed), fmt(d.count)]));
  const sat = (s.models || {}).satisfaction || {};
  const drift = (d) => d && d.last ? `last at ${fmt(d.last.at_count)} labels (${fix(d.last.mean_before)} → ${fix(d.last.mean_after)})` : "";
  $("drifts").textContent = `Drifts detected (ADWIN): churn ${fmt((m.drift || {}).detections || 0)} ${drift(m.drift)}; ` +
    `satisfaction ${fmt((sat.drift || {}).detections || 0)} ${drift(sat.drift)}. ECE ${fix(m.ece)}; satisfaction MAE ${fix(sat.mae)} ` +
    `against ${fix(sat.baseline_mae)} for the running mean.`;
  const w = s.webhooks || { answers: {} };
  rows("webhooks", ["endpoint", "answers"], Object.entries(w.answers).map(([e, a]) =>
    [esc(e), Object.entries(a).map(([st, n]) => `${esc(st === "None" ? "no answer" : st)}: ${fmt(n)}`).join(", ")])
    .concat([["<b>all</b>", `queued ${fmt(w.queued)}, delivered ${fmt(w.delivered)}, dead letters ${fmt(w.dead)}`]]));
  rows("dead", ["topic", "reason", { t: "records", n: true }], Object.entries(s.dead_letters || {}).map(([k, n]) => {
    const i = k.indexOf(":"); return [esc(k.slice(0, i)), esc(k.slice(i + 1)), fmt(n)];
  }));
}

let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    try {
      renderTiles(); renderTables(); drawRates(); drawHistory(); drawModels();
    } catch (err) { dash.errors.push(String(err)); throw err; }
  });
}

// ----- customer lookup -------------------------------------------------------------------------
async function lookup(tok, id) {
  const out = $("customer");
  out.innerHTML = '<p class="note">looking up…</p>';
  const r = await fetch("../v1/customers/" + encodeURIComponent(id), { headers: { Authorization: "Bearer " + tok } });
  const doc = await r.json();
  if (!r.ok) { out.innerHTML = `<p class="error">${esc(doc.error ? doc.error.message : r.statusText)}</p>`; return; }
  const p = doc.profile, c = doc.scores.churn, seg = doc.segments;
  const reasons = (c.reasons || []).map((x) => `<li>${esc(x.feature)} = ${esc(fix(x.value, 2))}: ${esc(x.direction)}</li>`).join("");
  const offers = doc.scores.offers === null ? "<li>offers are off (STREAMPROC_OFFERS)</li>" :
    (doc.scores.offers.map((o) => `<li><b>${esc(o.item)}</b> <span class="why">${esc(o.reason)}</span></li>`).join("") || "<li>-</li>");
  const hist = (p.history || []).slice().reverse().map((h) => [esc(when(h.at)), esc(h.kind), esc(h.what), esc(h.why)]);
  out.innerHTML = `<div class="profile">
    <div><h3>Customer <code>${esc(doc.customer)}</code></h3><table>
      <tr><td>as of</td><td>${esc(when(doc.as_of))}</td></tr>
      <tr><td>lifecycle</td><td><b id="cust-stage">${esc(seg.lifecycle)}</b> since ${esc(when(seg.lifecycle_since))}</td></tr>
      <tr><td>RFM / value / cluster</td><td>${esc(seg.rfm ?? "-")} / ${esc(seg.value ?? "-")} / ${esc(seg.cluster_name || seg.cluster || "-")}</td></tr>
      <tr><td>first / last seen</td><td>${esc(when(p.first_seen))} / ${esc(when(p.last_seen))}</td></tr>
      <tr><td>events / sessions</td><td>${fmt(p.events)} / ${fmt(p.sessions)}</td></tr>
      <tr><td>purchases / spend</td><td>${fmt(p.purchases)} / ${fmt(p.spend)}</td></tr>
      <tr><td>feedback / mean rating</td><td>${fmt(p.feedbacks)} / ${p.ratings ? fix(p.rating_sum / p.ratings, 2) : "-"}</td></tr>
    </table></div>
    <div><h3>Scores</h3><table>
      <tr><td>churn risk</td><td><b id="cust-risk">${fix(c.risk)}</b> (${esc(c.source)}, model v${esc(c.model_version)}, as of ${esc(when(c.at))})</td></tr>
      <tr><td>predicted satisfaction</td><td>${fix(doc.scores.predicted_satisfaction)}</td></tr>
    </table><p class="note">why this churn risk:</p><ul>${reasons || "<li>-</li>"}</ul>
    <p class="note">next-best offers:</p><ol id="cust-offers">${offers}</ol></div>
    <div><h3>History</h3><table id="cust-history"></table></div></div>`;
  rows("cust-history", ["event time", "kind", "what", "why"], hist);
}

// ----- start -----------------------------------------------------------------------------------
window.addEventListener("error", (e) => dash.errors.push(String(e.message)));
window.addEventListener("resize", () => {
  for (const [id, c] of Object.entries(charts)) c.u.setSize({ width: Math.max($(id).clientWidth, 300), height: 220 });
});
const tok = token();
if (!tok) {
  askToken();
} else {
  connect(tok);
  $("lookup").onsubmit = (e) => { e.preventDefault(); lookup(tok, $("lookup-id").value.trim()).catch((err) => { $("customer").innerHTML = `<p class="error">${esc(err)}</p>`; }); };
}
