// The console's shell: a hash router over five views, sign-in in AWS, and a banner for anything unexpected,
// so that the page never goes blank without saying why.
import { config } from "./api.js";
import { session, signIn, signOut } from "./aws.js";
import { errorBox, h } from "./ui.js";
import * as catalogue from "./views/catalogue.js";
import * as experiments from "./views/experiments.js";
import * as kpis from "./views/kpis.js";
import * as overview from "./views/overview.js";
import * as shopper from "./views/shopper.js";

const VIEWS = { overview, shopper, experiments, catalogue, kpis };
const view = document.getElementById("view");
const problems = document.getElementById("problems");

function report(error) {
  problems.append(errorBox(error));
}

window.addEventListener("error", (event) => report(event.error || new Error(event.message)));
window.addEventListener("unhandledrejection", (event) => report(event.reason));

// "#/shopper/u001" → view "shopper", argument "u001"
function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return { name: VIEWS[name] ? name : "overview", argument: rest.map(decodeURIComponent).join("/") };
}

async function render() {
  const { name, argument } = route();
  problems.replaceChildren();
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.getAttribute("href") === `#/${name}`);
  }
  document.title = `Merchandiser · ${name}`;
  view.replaceChildren();
  delete view.dataset.ready;
  view.dataset.view = name;
  try {
    await VIEWS[name].render(view, argument);
  } catch (error) {
    view.replaceChildren(errorBox(error));
  }
  view.dataset.ready = name;
}

async function start() {
  let cfg;
  try {
    cfg = await config();
  } catch (error) {
    view.replaceChildren(errorBox(error));
    return;
  }
  const who = document.getElementById("who");
  if (cfg.mode === "aws") {
    const user = await session(cfg);
    if (!user) {
      who.replaceChildren();
      view.replaceChildren(h("section", { class: "card" }, h("h2", {}, "Staff only"),
        h("p", {}, "Sign in with your staff account to use the console."),
        h("button", { onclick: () => signIn(cfg) }, "Sign in")));
      return;
    }
    who.replaceChildren(user.email, " ", h("button", { class: "link", onclick: () => signOut(cfg) }, "Sign out"));
  } else {
    who.replaceChildren(h("span", { class: "badge" }, "local twin"));
  }
  window.addEventListener("hashchange", render);
  await render();
}

start();
