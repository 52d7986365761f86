// Catalogue: search the served catalogue (GET /items?q=), the new items and the traffic they get
// (GET /items?new=true), and set stock, price and promotion of an item (PUT /items/{item_id}).
import { api, encode, get } from "../api.js";
import { errorBox, fill, h, num, section, table, when } from "../ui.js";

function badges(item) {
  return [
    item.promoted ? h("span", { class: "badge good" }, "promoted") : null,
    item.added_since_training ? h("span", { class: "badge" }, "added since training") : null,
    item.explored ? h("span", { class: "badge" }, "explored new arrival") : null,
    item.in_stock ? null : h("span", { class: "badge bad" }, "out of stock"),
  ];
}

// One row's editor: stock, price, promotion, saved with the item's other fields as they are.
function editor(item, onSaved) {
  const stock = h("input", { type: "checkbox", name: "in_stock", checked: item.in_stock, title: "in stock" });
  const price = h("input", { type: "number", name: "price", step: "0.01", min: "0", value: item.price ?? "", class: "price" });
  const promoted = h("input", { type: "checkbox", name: "promoted", checked: item.promoted, title: "promoted" });
  const status = h("span", { class: "status small" });
  const save = h("button", { type: "button", onclick: async () => {
    const body = { title: item.title, category: item.category, brand: item.brand, in_stock: stock.checked, promoted: promoted.checked };
    if (price.value !== "") body.price = Number(price.value);
    status.replaceChildren("saving…");
    save.disabled = true;
    try {
      const stored = await api("PUT", `/items/${encode(item.item_id)}`, body);
      status.replaceChildren(stored.retrievable ? "saved: served within seconds" : "saved: served after the next training (overlay full)");
      status.className = "status small good";
      onSaved();
    } catch (error) {
      status.replaceChildren(errorBox(error));
      status.className = "status small";
    } finally {
      save.disabled = false;
    }
  } }, "Save");
  return h("span", { class: "editor" }, h("label", { class: "check" }, stock, "in stock"),
    h("label", {}, "price ", price), h("label", { class: "check" }, promoted, "promoted"), save, status);
}

function itemsTable(answer, onSaved, emptyText) {
  const listing = table([
    { label: "item", value: (i) => h("span", {}, h("strong", {}, i.title), " ", h("code", {}, i.item_id), " ", badges(i)) },
    { label: "category", value: (i) => i.category },
    { label: "created", value: (i) => (i.created_at ? when(i.created_at).slice(0, 10) : "–") },
    { label: "events, 7 days", class: "number", value: (i) => num(i.events_7d, 1) },
    { label: "stock · price · promotion", value: (i) => editor(i, onSaved) },
  ], answer.items, emptyText);
  listing.querySelectorAll("tbody tr").forEach((tr, n) => { tr.dataset.itemId = answer.items[n].item_id; });
  const more = answer.matches > answer.items.length ? h("p", { class: "muted small" }, `${answer.items.length} of ${answer.matches} shown`) : null;
  return [listing, more];
}

export async function render(view) {
  const results = h("div", { id: "search-results" });
  const fresh = h("div", { id: "new-items" });
  const query = h("input", { id: "item-query", type: "search", placeholder: "an item id or words of its title", minLength: 1, maxLength: 128 });
  const search = () => fill(results, async () => itemsTable(await get("/items", { q: query.value.trim(), k: 25 }),
    () => {}, `No item matches “${query.value.trim()}”.`));
  const newItems = () => fill(fresh, async () => [
    h("p", { class: "muted small" }, "New arrivals get exploration slots on pages until they have interactions; items added "
      + "since the training are retrieved by their attributes. “Events, 7 days” is the traffic they turned into."),
    itemsTable(await get("/items", { new: true, k: 25 }), () => {}, "No new item: every item has interactions or is older."),
  ]);
  view.append(
    section("Catalogue", h("form", { class: "inline", onsubmit: (event) => { event.preventDefault(); search(); } },
      h("label", { for: "item-query" }, "Search"), query, h("button", { type: "submit" }, "Search")), results),
    section("New items and the traffic exploration gives them", fresh));
  await Promise.all([search(), newItems()]);
}
