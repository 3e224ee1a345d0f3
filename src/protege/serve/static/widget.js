/* The embeddable widget: `protege widget DIR` prints the <script> tag that loads this file
 * (served at /widget.js after chat.js). It puts a floating button on the host page; the panel
 * it opens talks to the gateway that served the script, with the widget key from the tag
 * (data-key, valid only for this agent, from the host page's origin). Its DOM lives in a
 * shadow root, so the page's styles and ours never mix. Escape closes the panel. */
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.__protegeWidget) return;
  window.__protegeWidget = true;
  const base = new URL(script.src).origin;
  const key = script.dataset.key || "";
  const agentName = script.dataset.agent || "";
  const BUBBLE = '<svg viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';

  function start() {
    const host = document.createElement("div");
    host.id = "protege-widget";
    document.body.append(host);
    const shadow = host.attachShadow({ mode: "open" });
    for (const sheet of ["chat.css", "widget.css"]) {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + "/static/" + sheet;
      shadow.append(link);
    }
    const launcher = document.createElement("button");
    launcher.className = "launcher";
    launcher.type = "button";
    launcher.setAttribute("aria-label", "Open chat");
    launcher.setAttribute("aria-expanded", "false");
    launcher.innerHTML = BUBBLE;  // a constant, never data
    const panel = document.createElement("div");
    panel.className = "panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Chat");
    const bar = document.createElement("div");
    bar.className = "bar";
    const title = document.createElement("strong");
    title.textContent = "Chat";
    const close = document.createElement("button");
    close.className = "close";
    close.type = "button";
    close.setAttribute("aria-label", "Close chat");
    close.textContent = "×";
    bar.append(title, close);
    const slot = document.createElement("div");
    slot.className = "slot";
    panel.append(bar, slot);
    shadow.append(panel, launcher);

    const chat = ProtegeChat.mount(slot, { base, key: () => key });
    let loaded = false;

    async function load() {
      let resp;
      try {
        resp = await fetch(base + "/v1/agents", { headers: { Authorization: "Bearer " + key } });
      } catch (e) {
        chat.note("This chat is not available on this site.");
        return;
      }
      if (!resp.ok) { chat.note(await ProtegeChat.errorText(resp)); return; }
      const agents = (await resp.json()).data;
      const agent = agents.find((a) => a.name === agentName) || agents[0];
      if (!agent) { chat.note("This chat is not available."); return; }
      loaded = true;
      title.textContent = agent.title;
      panel.setAttribute("aria-label", "Chat with " + agent.title);
      launcher.setAttribute("aria-label", "Chat with " + agent.title);
      chat.setAgent(agent, agent.name);
    }

    function open(show) {
      panel.hidden = !show;
      launcher.setAttribute("aria-expanded", String(show));
      if (show) {
        if (!loaded) load();
        chat.input.focus();
      } else {
        launcher.focus();
      }
    }
    launcher.addEventListener("click", () => open(panel.hidden));
    close.addEventListener("click", () => open(false));
    panel.addEventListener("keydown", (e) => { if (e.key === "Escape") open(false); });
  }

  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
