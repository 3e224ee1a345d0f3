/* The chat page: finds the agents this gateway (and the key, if one is needed) can reach, shows
 * the chosen one's empty state, and hands the conversation to chat.js. The key lives in
 * sessionStorage only: it is gone when the tab closes. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const STORE = "protege-key";
  const MODES = ["auto (the router picks)", "local model only", "big model only"];
  let agents = [];

  const chat = ProtegeChat.mount($("chat"), { key: () => sessionStorage.getItem(STORE) || "" });

  function choose(modelName) {
    const agent = agents.find((a) => a.models.includes(modelName)) || agents[0];
    document.title = agent.title;
    $("title").textContent = agent.title;
    chat.setAgent(agent, modelName);
  }

  let loads = 0;
  async function load() {
    const call = ++loads;
    const key = sessionStorage.getItem(STORE);
    const resp = await fetch("/v1/agents", { headers: key ? { Authorization: "Bearer " + key } : {} });
    if (call !== loads) return;  // a newer call (the key changed meanwhile) has the answer that counts
    if (resp.status === 401 || resp.status === 403) {
      $("keyform").hidden = false;
      $("changekey").hidden = true;
      chat.reset();
      chat.note(await ProtegeChat.errorText(resp) + " Enter an API key above (`protege keys create DIR` makes one).");
      $("key").focus();
      return;
    }
    if (!resp.ok) { chat.note(await ProtegeChat.errorText(resp)); return; }
    agents = (await resp.json()).data;
    if (!agents.length) { chat.note("This gateway serves no agent this key can use."); return; }
    const select = $("model");
    select.replaceChildren();
    for (const agent of agents) {
      const group = document.createElement("optgroup");
      group.label = agent.title;
      agent.models.forEach((m, i) => group.append(new Option(agents.length > 1 ? agent.title + ": " + MODES[i] : MODES[i], m)));
      select.append(group);
    }
    $("picker").hidden = false;
    $("keyform").hidden = true;
    $("changekey").hidden = !key;
    choose(select.value);
    chat.input.focus();
  }

  $("model").addEventListener("change", (e) => choose(e.target.value));
  $("changekey").addEventListener("click", () => {
    $("changekey").hidden = true;
    $("keyform").hidden = false;
    $("key").focus();
  });
  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("key").value.trim();
    if (key) sessionStorage.setItem(STORE, key); else sessionStorage.removeItem(STORE);
    $("key").value = "";
    load();
  });
  load();
})();
