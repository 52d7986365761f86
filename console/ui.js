// Small DOM helpers shared by the views: elements, tables, error boxes, number formats and line charts.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key in node && key !== "list") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A readable box for any failure: the request, its status and code, and the API's own message.
export function errorBox(error) {
  const title = error && error.title ? error.title : "Something went wrong";
  const message = error && error.message ? error.message : String(error);
  return h("div", { class: "error", role: "alert" }, h("strong", {}, title), h("p", {}, message));
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

// Replaces `target`'s content with what `build` returns, showing "loading" first and an error box on failure.
export async function fill(target, build) {
  target.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  try {
    const content = await build();
    target.replaceChildren(...[content].flat(Infinity).filter(Boolean));
  } catch (error) {
    target.replaceChildren(errorBox(error));
  }
}

export function section(title, ...content) {
  return h("section", { class: "card" }, h("h2", {}, title), ...content);
}

// columns: [{label, value: row => text|Node, class?}]
export function table(columns, rows, emptyText = "Nothing to show.") {
  if (!rows.length) return empty(emptyText);
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.value(row)))))));
}

export function pct(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(digits)}%`;
}

export function num(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  return Number.isInteger(value) ? value.toLocaleString("en") : Number(value).toFixed(digits);
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) < 120) return `${value.toFixed(1)} s`;
  if (Math.abs(value) < 7200) return `${(value / 60).toFixed(1)} min`;
  if (Math.abs(value) < 172800) return `${(value / 3600).toFixed(1)} h`;
  return `${(value / 86400).toFixed(1)} days`;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

// A line chart (Chart.js, vendored): labels on x, one line per series {label, values}.
export function lineChart(title, labels, series, { percent = false } = {}) {
  const canvas = h("canvas", { role: "img", "aria-label": title });
  const box = h("figure", { class: "chart" }, h("figcaption", {}, title), h("div", { class: "canvas" }, canvas));
  if (typeof window.Chart !== "function") {
    box.append(errorBox(new Error("the chart library (vendor/chart.umd.min.js) did not load")));
    return box;
  }
  new window.Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label, data: s.values, borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length], spanGaps: true, tension: 0.2, pointRadius: 2,
      })),
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: percent ? { callback: (v) => `${(100 * v).toFixed(1)}%` } : {} } },
      plugins: { legend: { position: "bottom" } },
    },
  });
  return box;
}
