// A scene in detail: the larger plan and its object list, in a modal (from a card) or as the page /scenes/{id}.
import { scene } from "./api.js";
import { floorPlan, rgb } from "./plan.js";

const $ = (id) => document.getElementById(id);

function objectTable(s) {
  const table = document.createElement("table");
  table.className = "objects";
  table.innerHTML = "<caption>Objects</caption><thead><tr><th scope='col'>#</th><th scope='col'>label</th>" +
    "<th scope='col'>colour</th><th scope='col'>size (m)</th><th scope='col'>centre (m)</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const o of s.objects) {
    const tr = document.createElement("tr");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = rgb(o.color_rgb);
    const cells = [String(o.object_id), o.label, swatch, o.size.map((x) => x.toFixed(2)).join(" × "),
      o.center.map((x) => x.toFixed(2)).join(", ")];
    for (const c of cells) {
      const td = document.createElement("td");
      td.append(c);
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
  return table;
}

async function fill(container, title, id, query) {
  title.textContent = `Scene ${id}`;
  container.replaceChildren("Loading…");
  try {
    const s = await scene(id);
    title.textContent = `${s.scene_id}: ${s.scene_type}`;
    const plan = document.createElement("div");
    plan.className = "plan-large";
    plan.append(floorPlan(s, query, { fontScale: 1 / 45 }));
    container.replaceChildren(plan, objectTable(s));
  } catch (e) {
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = e.message;
    container.replaceChildren(p);
  }
}

let opener = null; // focus goes back to the button that opened the modal

/** The modal over the search: Escape or Close shuts it. */
export function openScene(id, query) {
  opener = document.activeElement;
  const dlg = $("scene-dialog");
  fill($("scene-dialog-body"), $("scene-dialog-title"), id, query);
  if (!dlg.open) dlg.showModal();
  $("scene-close").focus();
}

/** /scenes/{id}: the scene alone. */
export function showScenePage(id) {
  $("search-view").hidden = true;
  $("scene-view").hidden = false;
  document.title = `${id}: IDeal`;
  return fill($("scene-body"), $("scene-title"), id, "");
}

export function wire() {
  const dlg = $("scene-dialog");
  $("scene-close").addEventListener("click", () => dlg.close());
  dlg.addEventListener("close", () => opener?.focus?.());
  dlg.addEventListener("click", (ev) => { if (ev.target === dlg) dlg.close(); }); // a click on the backdrop
}
