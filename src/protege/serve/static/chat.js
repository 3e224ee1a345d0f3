/* The conversation UI, shared by the chat page (page.js) and the embeddable widget (widget.js).
 *
 * ProtegeChat.mount(container, {base, key}) builds the log and the question box inside
 * `container` (a page element or a widget's shadow root) and returns an object with
 * setAgent(profile, model) and reset(). Answers stream from /v1/chat/completions; the first
 * chunk's `protege` field names who answers and the excerpts retrieved for the question, shown
 * as expandable sources. Thumbs up/down (and an optional comment) go to /v1/feedback.
 * Everything is plain DOM built with textContent: no HTML from the server or a model is parsed.
 */
(function () {
  "use strict";
  if (window.ProtegeChat) return;

  const WHO = { student: "local model", teacher: "big model", guard: "safety filter" };
  // Thumbs as inline SVG (constants, never data): emoji fonts are missing on many systems.
  const THUMB = '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><path fill="currentColor" ' +
    'd="M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 8 6 8.5 6 9v10a2 2 0 0 0 ' +
    '2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z"/></svg>';
  const WHY = {
    student: "Answered by the agent's own small model, running locally",
    teacher: "Answered by the big model (the small one would likely have fallen short)",
    guard: "The safety filter stopped this request",
  };

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  async function errorText(resp) {
    try { return (await resp.json()).error.message; } catch (e) { return "HTTP " + resp.status; }
  }

  /* Server-sent events from a fetch body: calls onData(parsed JSON) per `data:` line. */
  async function readEvents(resp, onData) {
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (line.startsWith("data: ") && line !== "data: [DONE]") onData(JSON.parse(line.slice(6)));
        }
      }
    }
  }

  function mount(container, options) {
    const base = options.base || "";
    const history = [];
    let agent = null, model = null, busy = false;

    const log = el("div", { class: "pc-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    const input = el("textarea", { rows: "1", placeholder: "Ask a question", "aria-label": "Your question",
                                   "aria-describedby": "pc-keys" });
    const send = el("button", { type: "submit", text: "Send" });
    const form = el("form", { class: "pc-ask" }, input, send,
                    el("span", { id: "pc-keys", class: "pc-sr", text: "Enter sends, Shift+Enter starts a new line" }));
    const root = el("div", { class: "pc" }, log, form);
    container.append(root);

    function headers() {
      const h = { "Content-Type": "application/json" };
      const key = options.key ? options.key() : "";
      if (key) h.Authorization = "Bearer " + key;
      return h;
    }

    function scrollDown() { log.scrollTop = log.scrollHeight; }

    function note(text) {
      log.append(el("div", { class: "msg assistant error", role: "alert", text }));
      scrollDown();
    }

    function emptyState() {
      log.replaceChildren();
      if (!agent) return;
      const examples = el("ul", { class: "examples", "aria-label": "Example questions" },
        ...agent.examples.map((q) => el("li", {}, el("button", { type: "button", text: q, onclick: () => ask(q) }))));
      log.append(el("section", { class: "empty", "aria-label": "About this agent" },
        el("h2", { text: agent.title }),
        el("p", { class: "tagline", text: agent.tagline }),
        agent.examples.length ? examples : el("p", { class: "hint", text: "Ask anything about " + agent.title + "." })));
    }

    function sources(list) {
      const box = el("div", { class: "sources" }, el("span", { class: "sources-label", text: "Sources" }));
      for (const s of list) {
        const lead = s.text.replace(/[#*_`>|]+/g, " ").replace(/\s+/g, " ").trim().slice(0, 60);
        box.append(el("details", {},
          el("summary", {}, el("span", { text: s.file + " " }), el("span", { class: "lead", text: "· " + lead + "…" })),
          el("p", { class: "excerpt", text: s.text })));
      }
      return box;
    }

    async function postFeedback(id, rating, comment) {
      const body = { id, rating };
      if (comment) body.comment = comment;
      const resp = await fetch(base + "/v1/feedback", { method: "POST", headers: headers(), body: JSON.stringify(body) });
      if (!resp.ok) { note("Feedback not saved: " + await errorText(resp)); return false; }
      return true;
    }

    function meta(info) {
      const route = info.route;
      const box = el("div", { class: "meta" },
        el("span", { class: "badge", "data-route": route, text: WHO[route] || route,
                     title: (WHY[route] || "") + " (" + info.reason + ")" }));
      const thumbs = [[1, "Good answer"], [-1, "Bad answer"]].map(([rating, label]) =>
        el("button", { type: "button", class: rating > 0 ? "thumb up" : "thumb down", "data-rating": String(rating),
                       "aria-label": label, "aria-pressed": "false", title: label }));
      for (const b of thumbs) {
        b.innerHTML = THUMB;
        b.addEventListener("click", async () => {
          const rating = Number(b.dataset.rating);
          if (!(await postFeedback(info.id, rating))) return;
          thumbs.forEach((t) => t.setAttribute("aria-pressed", String(t === b)));
          box.dataset.rated = String(rating);
          commentBox(box, info.id, rating);
        });
        box.append(b);
      }
      return box;
    }

    function commentBox(box, id, rating) {
      box.querySelector(".comment, .thanks")?.remove();
      const field = el("input", { type: "text", maxlength: "4000", "aria-label": "Comment (optional)",
                                  placeholder: rating > 0 ? "What was good? (optional)" : "What was wrong? (optional)" });
      const comment = el("form", { class: "comment" }, field, el("button", { type: "submit", text: "Send" }));
      comment.addEventListener("submit", async (e) => {
        e.preventDefault();
        const text = field.value.trim();
        if (text && !(await postFeedback(id, rating, text))) return;
        box.dataset.commented = text ? "true" : "false";
        comment.replaceWith(el("span", { class: "thanks", role: "status", text: "Thanks for the feedback." }));
      });
      box.append(comment);
      field.focus();
    }

    async function ask(text) {
      if (busy || !model) return;
      busy = true;
      send.disabled = true;
      log.querySelector(".empty")?.remove();
      history.push({ role: "user", content: text });
      log.append(el("div", { class: "msg user" }, el("div", { class: "body", text })));
      const body = el("div", { class: "body" });
      const bubble = el("div", { class: "msg assistant", "aria-busy": "true" }, body);
      log.append(bubble);
      scrollDown();
      let answer = "", info = null;
      try {
        const resp = await fetch(base + "/v1/chat/completions", {
          method: "POST", headers: headers(), body: JSON.stringify({ model, messages: history, stream: true }),
        });
        if (!resp.ok) { bubble.remove(); history.pop(); note(await errorText(resp)); return; }
        await readEvents(resp, (chunk) => {
          if (chunk.error) { note(chunk.error.message); return; }
          if (chunk.protege && !info) {
            info = chunk.protege;
            if (info.sources && info.sources.length) bubble.append(sources(info.sources));
          }
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) { answer += delta.content; body.textContent = answer; scrollDown(); }
        });
        history.push({ role: "assistant", content: answer });
        if (info) { bubble.append(meta(info)); bubble.dataset.id = info.id; }
        bubble.dataset.done = "true";
      } catch (e) {
        bubble.remove();
        history.pop();
        note("Could not reach the agent (" + e.message + ").");
      } finally {
        bubble.removeAttribute("aria-busy");
        busy = false;
        send.disabled = false;
        scrollDown();
      }
    }

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      ask(text);
      input.focus();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });

    return {
      input,
      /* Show `profile` (from /v1/agents) and talk to `model` (one of its model names). */
      setAgent(profile, chosen) {
        agent = profile;
        model = chosen || profile.name;
        history.length = 0;
        emptyState();
      },
      reset() { history.length = 0; emptyState(); },
      note,
    };
  }

  window.ProtegeChat = { mount, errorText };
})();
