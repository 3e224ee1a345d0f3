/* The owner's page: the panel is rendered on the server (tables and SVG charts, every value
 * escaped there) and fetched with the admin key, which stays in sessionStorage only. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const STORE = "protege-admin-key";

  async function load() {
    const key = sessionStorage.getItem(STORE);
    if (!key) return;
    const resp = await fetch("/admin/panel?days=" + $("days").value, { headers: { Authorization: "Bearer " + key } });
    if (!resp.ok) {
      let message = "HTTP " + resp.status;
      try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
      const p = document.createElement("p");
      p.className = "refused";
      p.setAttribute("role", "alert");
      p.textContent = message;
      $("panel").replaceChildren(p);
      $("keyform").hidden = false;
      $("key").focus();
      return;
    }
    $("panel").innerHTML = await resp.text();
    $("panel").dataset.loaded = "true";
    $("keyform").hidden = true;
    $("window").hidden = false;
  }

  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(STORE, $("key").value.trim());
    $("key").value = "";
    load();
  });
  $("days").addEventListener("change", load);
  if (sessionStorage.getItem(STORE)) load(); else $("key").focus();
})();
