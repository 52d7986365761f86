// Overview: the live model (GET /model), serving health (GET /health), the stream (GET /events/stats).
import { get } from "../api.js";
import { empty, fill, h, lineChart, num, section, seconds, table, when } from "../ui.js";

function modelCard(model) {
  if (!model.model_version) {
    return [h("p", { class: "bad" }, "No model is loaded."), h("p", {}, model.gate_problem)];
  }
  const served = model.metrics[model.served_model] || {};
  const best = model.best_anchor;
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Live model"), h("dd", { id: "model-version" }, model.model_version),
    h("dt", {}, "Trained"), h("dd", {}, when(model.trained_at)),
    h("dt", {}, "Trained on"), h("dd", {}, model.data && model.data.interactions
      ? `${num(model.data.interactions)} interactions, ${num(model.data.users)} shoppers, ${num(model.data.items)} items, `
        + `${when(model.data.first_timestamp)} to ${when(model.data.last_timestamp)}`
      : "–"),
    h("dt", {}, `Served page ${model.metric}`), h("dd", {}, num(served[model.metric], 4)),
    h("dt", {}, "Against the best anchor"), h("dd", {}, best
      ? `${best.name} ${num(best[model.metric], 4)}: ratio ${best.ratio === null ? "–" : best.ratio.toFixed(2)}×`
      : "no anchor evaluated"),
    h("dt", {}, "Catalogue overlay"), h("dd", {},
      `${model.overlay.new_items} new, ${model.overlay.updated_items} updated, ${model.overlay.promoted_items.length} promoted`));
  const gate = model.gate
    ? h("div", { class: model.gate.promote ? "good" : "bad" },
        h("strong", {}, model.gate.promote ? "Gate: promoted" : "Gate: refused"),
        model.gate.decided_at ? ` on ${when(model.gate.decided_at)}` : "",
        h("ul", {}, (model.gate.reasons || []).map((reason) => h("li", {}, reason))))
    : h("p", { class: "muted" }, `Gate: ${model.gate_problem}`);
  // the served page first, then the anchors it is measured against, then its stages scored alone
  const rank = (name) => (name === model.served_model ? 0 : model.anchors.includes(name) ? 1 : 2);
  const metrics = Object.entries(model.metrics).map(([name, values]) => ({ name, ...values }))
    .sort((a, b) => rank(a.name) - rank(b.name) || (b[model.metric] ?? 0) - (a[model.metric] ?? 0));
  const names = metrics.length ? Object.keys(metrics[0]).filter((key) => key !== "name") : [];
  const role = (name) => (name === model.served_model ? "served page"
    : model.anchors.includes(name) ? "anchor" : model.stages.includes(name) ? "stage alone" : "");
  const offline = table(
    [{ label: "model", value: (row) => row.name }, { label: "role", value: (row) => role(row.name) },
      ...names.map((key) => ({ label: key, class: "number", value: (row) => num(row[key], 4) }))],
    metrics, "The manifest records no offline metrics.");
  for (const row of offline.querySelectorAll("tbody tr")) {
    if (row.firstChild.textContent === model.served_model) row.classList.add("highlight");
  }
  return [facts, gate, h("h3", {}, "Offline metrics on the same split"), offline];
}

function healthCard(health) {
  return [
    h("p", { class: health.status === "ok" ? "good" : "bad" }, h("strong", {}, `Serving: ${health.status}`),
      ` · ${num(health.items)} items · model ${health.model_version || "none"}`),
    health.faults.length
      ? h("div", {}, h("p", {}, "Fallbacks forced at model load:"), h("ul", {}, health.faults.map((f) => h("li", {}, f))))
      : h("p", {}, "No fallback: every part of the model loaded."),
  ];
}

function streamCard(stats) {
  const labels = stats.minutes.map((m) => m.minute.slice(11, 16));
  return [
    h("dl", { class: "facts" },
      h("dt", {}, "Events per minute (last hour)"), h("dd", { id: "events-per-minute" }, num(stats.events_per_minute, 2)),
      h("dt", {}, "Events in the last hour"), h("dd", {}, num(stats.events_last_hour)),
      h("dt", {}, "Last applied"), h("dd", {}, stats.processed_at
        ? `${when(stats.processed_at)} (${seconds(stats.seconds_since_processed)} ago)` : "no event this hour"),
      h("dt", {}, "Freshness"), h("dd", {}, stats.lag_seconds === null ? "–"
        : `the newest event was ${seconds(stats.lag_seconds)} old when applied`)),
    stats.events_last_hour
      ? lineChart("Events applied per minute", labels, [{ label: "events", values: stats.minutes.map((m) => m.events) }])
      : empty("No event was applied in the last hour."),
  ];
}

export async function render(view) {
  const model = h("div");
  const health = h("div");
  const stream = h("div");
  view.append(h("div", { class: "grid" },
    section("Live model", model), h("div", {}, section("Serving health", health), section("Events stream", stream))));
  await Promise.all([
    fill(model, async () => modelCard(await get("/model"))),
    fill(health, async () => healthCard(await get("/health"))),
    fill(stream, async () => streamCard(await get("/events/stats"))),
  ]);
}
