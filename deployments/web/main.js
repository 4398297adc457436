// The page's entry: /scenes/{id} shows one scene; / the search (?q=... starts one at once, e.g. a shared link).
import { config } from "./api.js";
import { search, wire as wireDialog } from "./dialog.js";
import { showScenePage, wire as wireScene } from "./scene.js";
import { wire as wireSimulation } from "./simulate.js";

wireScene();
const base = new URL(document.baseURI).pathname;
const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "";
const m = /^scenes\/([^/]+)$/.exec(path);
if (m) {
  showScenePage(decodeURIComponent(m[1]));
} else {
  wireDialog();
  wireSimulation(config.simulatedUser);
  const q = new URLSearchParams(location.search).get("q");
  if (q) {
    document.getElementById("query").value = q;
    search(q);
  } else {
    document.getElementById("query").focus();
  }
}
document.documentElement.dataset.ready = "true"; // the handlers are in place (tests wait on this)
