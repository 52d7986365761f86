// Shopper view: every surface as the shopper sees it (the same routes the storefront calls), each item with
// its title, category, score, source and reason, and the shopper's recent events beside them.
import { encode, get } from "../api.js";
import { fill, h, num, section, table, when } from "../ui.js";

const K = 10;

function pageFacts(page) {
  const facts = [`model ${page.model_version}`, `variant ${page.variant}`];
  if (page.experiment) facts.push(`experiment ${page.experiment}`);
  facts.push(page.personalized ? "personalized" : "not personalized");
  if (page.degraded) facts.push(`degraded: ${page.degraded_reasons.join(", ")}`);
  return h("p", { class: page.degraded ? "bad small" : "muted small" }, facts.join(" · "));
}

function itemsTable(page, choose) {
  const rows = page.items.map((item, index) => ({ ...item, position: index + 1 }));
  const listing = table([
    { label: "#", class: "number", value: (row) => row.position },
    { label: "item", value: (row) => h("span", {}, row.title, " ", h("code", {}, row.item_id)) },
    { label: "category", value: (row) => row.category },
    { label: "score", class: "number", value: (row) => num(row.score, 3) },
    { label: "source", value: (row) => row.source },
    { label: "reason", value: (row) => row.reason },
    { label: "", class: "nowrap", value: (row) => h("button", { class: "link", title: "show similar and bought-together items for it",
      onclick: () => choose(row.item_id) }, "similar →") },
  ], rows, "This surface has no item to show for this shopper.");
  listing.querySelectorAll("tbody tr").forEach((tr, i) => { tr.dataset.itemId = rows[i].item_id; });
  return [pageFacts(page), listing];
}

function surface(title, id) {
  const body = h("div", { "data-surface": id });
  return { card: section(title, body), body };
}

function eventsCard(events) {
  const who = events.known
    ? `${events.purchased} purchases known${Object.keys(events.attributes).length
      ? ` · ${Object.entries(events.attributes).map(([k, v]) => `${k}=${v}`).join(", ")}` : ""}`
    : "an unknown shopper: no trained profile and no session";
  return [
    h("p", { class: "muted small" }, who),
    table([
      { label: "when", value: (row) => when(row.timestamp) },
      { label: "event", value: (row) => row.event_type },
      { label: "item", value: (row) => h("span", {}, row.title || "(not in the catalogue)", " ", h("code", {}, row.item_id)) },
    ], events.events, "No event in this shopper's session."),
    events.profile_recent.length
      ? h("div", {}, h("h3", {}, "Latest items of the trained profile"),
          h("ul", { class: "small" }, events.profile_recent.map((item) => h("li", {}, item.title || item.item_id))))
      : null,
  ];
}

export async function render(view, userId) {
  const input = h("input", { id: "user-id", name: "user", placeholder: "a user id, e.g. u00042", value: userId || "",
    required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.:@\\-]{0,127}", title: "letters, digits and _ . : @ -" });
  const form = h("form", { class: "inline", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/shopper/${encode(input.value.trim())}`;
  } }, h("label", { for: "user-id" }, "Shopper"), input, h("button", { type: "submit" }, "Show"));
  view.append(section("Shopper view", form,
    h("p", { class: "muted small" }, "What this shopper sees on each surface, served by the live API.")));
  if (!userId) return;

  const home = surface("Home: recommended for you", "home");
  const similar = surface("Similar to the chosen item", "similar");
  const together = surface("Bought together with the chosen item", "bought-together");
  const popular = surface("Popular", "popular");
  const events = h("div", { id: "shopper-events" });
  const chosen = h("p", { class: "small" });
  view.append(h("div", { class: "grid shopper" },
    h("div", {}, home.card, h("div", { class: "card chosen" }, chosen), similar.card, together.card, popular.card),
    section("Recent events", events)));

  const user = encode(userId);
  let recent = null;
  const choose = async (itemId) => {
    chosen.replaceChildren("Chosen item: ", h("code", { id: "chosen-item" }, itemId),
      " (pick another with “similar →”)");
    await Promise.all([
      fill(similar.body, async () => itemsTable(await get(`/items/${encode(itemId)}/similar`, { k: K, user_id: userId }), choose)),
      fill(together.body, async () => itemsTable(await get(`/items/${encode(itemId)}/bought-together`, { k: K }), choose)),
    ]);
  };
  let homePage = null;
  await Promise.all([
    fill(home.body, async () => {
      homePage = await get(`/users/${user}/recommendations`, { k: K });
      return itemsTable(homePage, choose);
    }),
    fill(popular.body, async () => itemsTable(await get("/items/popular", { k: K }), choose)),
    fill(events, async () => {
      recent = await get(`/users/${user}/events`);
      return eventsCard(recent);
    }),
  ]);
  // the item to start from: the shopper's latest event, else the top of their home page
  const start = (recent && recent.events[0] && recent.events[0].title && recent.events[0].item_id)
    || (homePage && homePage.items[0] && homePage.items[0].item_id);
  if (start) await choose(start);
  else chosen.replaceChildren("No item to start similar and bought-together from: the home page is empty.");
}
