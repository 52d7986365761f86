// KPIs: CTR, conversion and catalogue coverage of the served pages per day and surface (GET /kpis: the
// daily experiment job's document).
import { get } from "../api.js";
import { empty, fill, h, lineChart, num, section, table, when } from "../ui.js";

function charts(document) {
  const surfaces = Object.entries(document.surfaces);
  if (!surfaces.length) return [empty("No page was served in this period (no impression in the archive).")];
  const labels = [...new Set(surfaces.flatMap(([, days]) => days.map((d) => d.day)))].sort();
  const series = (metric) => surfaces.map(([surface, days]) => {
    const byDay = Object.fromEntries(days.map((d) => [d.day, d[metric]]));
    return { label: surface, values: labels.map((day) => byDay[day] ?? null) };
  });
  const totals = surfaces.map(([surface, days]) => {
    const sum = (key) => days.reduce((total, d) => total + (d[key] || 0), 0);
    return { surface, impressions: sum("impressions"), clicks: sum("clicks"), purchases: sum("purchases") };
  });
  return [
    h("div", { class: "charts three" },
      lineChart("CTR per day", labels, series("ctr"), { percent: true }),
      lineChart("Conversion per day", labels, series("conversion"), { percent: true }),
      lineChart("Catalogue coverage per day", labels, series("coverage"), { percent: true })),
    h("h3", {}, "Over the period"),
    table([
      { label: "surface", value: (r) => r.surface },
      { label: "pages served", class: "number", value: (r) => num(r.impressions) },
      { label: "clicks", class: "number", value: (r) => num(r.clicks) },
      { label: "purchases", class: "number", value: (r) => num(r.purchases) },
    ], totals),
  ];
}

export async function render(view) {
  const body = h("div", { id: "kpi-charts" });
  view.append(section("Online KPIs per surface", body));
  await fill(body, async () => {
    const document = await get("/kpis");
    return [
      h("p", { class: "muted small" }, `${document.period.start} to ${document.period.end}, computed ${when(document.computed_at)}`
        + ` from the archive; coverage over ${document.catalogue_size === null ? "an unknown catalogue size" : `${num(document.catalogue_size)} items`}.`
        + (document.final_through ? ` Days after ${document.final_through} may still gain events (24 h attribution).` : "")),
      ...charts(document),
    ];
  });
}
