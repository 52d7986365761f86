// Experiments: the list (GET /experiments), a form that checks the API's own rules before PUT
// /experiments/{name} (experiment-rules.json: the same lists as merchandiser.experiments, kept equal by a
// test), stop (DELETE /experiments/{name}) and each report (GET /experiments/{name}/report, with its
// per-day "days" for the charts).
import { api, encode, get } from "../api.js";
import { empty, errorBox, fill, h, lineChart, num, pct, section, table } from "../ui.js";

let rulesLoaded = null;

async function rules() {
  if (rulesLoaded === null) rulesLoaded = fetch("experiment-rules.json").then((r) => r.json());
  return rulesLoaded;
}

// The API's rules (merchandiser/experiments/definition.py), for a message before the round trip.
export function problems(definition, known) {
  const found = [];
  const pattern = new RegExp(known.name_pattern);
  if (!pattern.test(definition.name)) found.push(`name "${definition.name}": lower-case letters, digits, - and _, at most 63`);
  if (!definition.surfaces.length) found.push("choose at least one surface");
  for (const s of definition.surfaces) if (!known.surfaces.includes(s)) found.push(`unknown surface "${s}"`);
  if (!definition.variants.length) found.push("add at least one variant");
  const seen = new Set();
  for (const v of definition.variants) {
    if (!pattern.test(v.name)) found.push(`variant name "${v.name}": lower-case letters, digits, - and _`);
    if (known.reserved_variant_names.includes(v.name)) found.push(`"${v.name}" is what pages outside experiments say`);
    if (seen.has(v.name)) found.push(`variant "${v.name}" appears twice`);
    seen.add(v.name);
    if (!(v.share >= 0 && v.share <= 1)) found.push(`variant "${v.name}": share must be between 0 and 1`);
    if (v.policy !== undefined && !known.policies.includes(v.policy)) found.push(`variant "${v.name}": unknown policy "${v.policy}"`);
  }
  const total = definition.variants.reduce((sum, v) => sum + v.share, 0);
  if (definition.variants.length && Math.abs(total - 1) > known.share_tolerance) {
    found.push(`variant shares sum to ${+total.toFixed(6)}; they must sum to 1`);
  }
  return found;
}

function listOf(answer) {
  return Array.isArray(answer) ? answer : answer.experiments || [];
}

function variantsText(experiment) {
  return experiment.variants.map((v) => `${v.name} ${pct(v.share, 0)}${v.policy ? ` (${v.policy})` : ""}`).join(", ");
}

function variantRow(known, variant = {}) {
  const policy = h("select", { name: "policy" }, h("option", { value: "" }, "personalized page"),
    known.policies.map((p) => h("option", { value: p, selected: variant.policy === p }, `${p} list (holdout)`)));
  const row = h("div", { class: "variant" },
    h("input", { name: "variant", placeholder: "variant name", value: variant.name || "" }),
    h("input", { name: "share", type: "number", step: "0.01", min: "0", max: "1", value: variant.share ?? "" }),
    policy,
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, "remove"));
  return row;
}

function createForm(known, onCreated) {
  const variants = h("div", { class: "variants" },
    variantRow(known, { name: "personalized", share: 0.5 }), variantRow(known, { name: "holdout", share: 0.5, policy: "popularity" }));
  const messages = h("div", { id: "form-messages" });
  const form = h("form", { id: "experiment-form", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const definition = {
      name: String(data.get("name") || "").trim(),
      surfaces: data.getAll("surface").map(String),
      variants: [...variants.querySelectorAll(".variant")].map((row) => {
        const variant = { name: row.querySelector("[name=variant]").value.trim(),
          share: Number(row.querySelector("[name=share]").value) };
        const policy = row.querySelector("[name=policy]").value;
        if (policy) variant.policy = policy;
        return variant;
      }),
    };
    const description = String(data.get("description") || "").trim();
    if (description) definition.description = description;
    const found = problems(definition, known);
    if (found.length) {
      messages.replaceChildren(h("div", { class: "error", role: "alert" }, h("strong", {}, "Not sent: fix these first"),
        h("ul", {}, found.map((p) => h("li", {}, p)))));
      return;
    }
    messages.replaceChildren(h("p", { class: "loading" }, "Creating…"));
    try {
      await api("PUT", `/experiments/${encode(definition.name)}`, definition);
      messages.replaceChildren(h("p", { class: "good" }, `Experiment ${definition.name} created.`));
      await onCreated(definition.name);
    } catch (error) {
      messages.replaceChildren(errorBox(error));
    }
  } },
  h("label", {}, "Name ", h("input", { name: "name", placeholder: "home-vs-popularity", required: true })),
  h("fieldset", {}, h("legend", {}, "Surfaces"), known.surfaces.map((s) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "surface", value: s, checked: s === "home" }), s))),
  h("fieldset", {}, h("legend", {}, "Variants: name, share of shoppers, what they see"), variants,
    h("button", { type: "button", class: "link", onclick: () => variants.append(variantRow(known)) }, "+ variant")),
  h("label", {}, "Description ", h("input", { name: "description", placeholder: "optional" })),
  h("button", { type: "submit" }, "Create"), messages);
  return form;
}

function dailyCharts(report) {
  if (!Array.isArray(report.days) || !report.days.length) {
    return empty("No per-day figures yet: the daily job adds them from the KPI rows of the period's last two weeks.");
  }
  const labels = report.days.map((d) => d.day);
  const names = [...new Set(report.days.flatMap((d) => Object.keys(d.variants)))];
  const series = (metric) => names.map((name) => ({ label: name, values: report.days.map((d) => d.variants[name]?.[metric] ?? null) }));
  return h("div", { class: "charts" }, lineChart("CTR per day", labels, series("ctr"), { percent: true }),
    lineChart("Conversion per day", labels, series("conversion"), { percent: true }));
}

function reportView(report) {
  const variants = Object.entries(report.variants).map(([name, v]) => ({ name, ...v }));
  const srm = report.sample_ratio_p_value;
  return [
    table([
      { label: "variant", value: (r) => r.name },
      ...["users", "impressions", "clicks", "add_to_carts", "purchases"].map((k) => ({ label: k.replace(/_/g, " "), class: "number", value: (r) => num(r[k]) })),
      { label: "revenue", class: "number", value: (r) => num(r.revenue, 2) },
      { label: "CTR", class: "number", value: (r) => pct(r.ctr, 2) },
      { label: "conversion", class: "number", value: (r) => pct(r.conversion, 2) },
      { label: "revenue / page", class: "number", value: (r) => num(r.revenue_per_impression, 3) },
      { label: "coverage", class: "number", value: (r) => pct(r.coverage, 1) },
    ], variants, "No shopper has been served a page of this experiment yet."),
    h("h3", {}, "Lift against the baseline (per-user delta method)"),
    table([
      { label: "metric", value: (c) => c.metric },
      { label: "variant vs baseline", value: (c) => `${c.variant} vs ${c.baseline}` },
      { label: "lift", class: "number", value: (c) => pct(c.lift, 1) },
      { label: "95% CI", class: "number",
        value: (c) => (c.ci_low === null || c.ci_low === undefined ? "–" : `${pct(c.ci_low, 1)} to ${pct(c.ci_high, 1)}`) },
      { label: "p-value", class: "number", value: (c) => (c.p_value === null || c.p_value === undefined ? "–" : c.p_value.toPrecision(2)) },
      { label: "", value: (c) => (c.p_value !== null && c.p_value < 0.05 ? h("span", { class: "badge good" }, "significant") : "") },
    ], report.comparisons || [], "No comparison yet: a variant needs served pages first."),
    h("p", { class: report.sample_ratio_mismatch ? "bad" : "muted small" }, report.sample_ratio_mismatch
      ? `Sample-ratio mismatch (p = ${srm.toPrecision(2)}): the split is broken, no comparison can be trusted.`
      : `Sample ratio as declared (p = ${srm === null || srm === undefined ? "–" : srm.toPrecision(2)}).`),
    dailyCharts(report),
  ];
}

export async function render(view) {
  const known = await rules();
  const list = h("div", { id: "experiment-list" });
  const detail = h("div", { id: "experiment-report" });
  const showReport = (name) => fill(detail, async () => section(`Report: ${name}`,
    ...reportView(await get(`/experiments/${encode(name)}/report`))));
  const refresh = () => fill(list, async () => {
    const experiments = listOf(await get("/experiments"));
    return table([
      { label: "name", value: (e) => h("strong", {}, e.name) },
      { label: "status", value: (e) => h("span", { class: `badge ${e.status === "stopped" ? "" : "good"}` }, e.status || "running") },
      { label: "surfaces", value: (e) => e.surfaces.join(", ") },
      { label: "variants", value: (e) => variantsText(e) },
      { label: "", value: (e) => h("span", { class: "actions" },
        h("button", { class: "link", onclick: () => showReport(e.name) }, "report"),
        e.status === "stopped" ? null : h("button", { class: "link", onclick: async () => {
          if (!confirm(`Stop ${e.name}? Its shoppers get production pages; the report stays.`)) return;
          try {
            await api("DELETE", `/experiments/${encode(e.name)}`);
            await refresh();
          } catch (error) {
            list.prepend(errorBox(error));
          }
        } }, "stop")) },
    ], experiments, "No experiment yet: create one below.");
  });
  view.append(section("Experiments", list), detail, section("New experiment", createForm(known, async (name) => {
    await refresh();
    await showReport(name);
  })));
  await refresh();
}
