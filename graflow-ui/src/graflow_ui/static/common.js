// Graflow dashboard: what every page shares. No framework, no build step: the pages are small,
// and everything they show comes from the JSON API (/api/...), like any other client's.
"use strict";

const Graflow = (() => {
  const SVG = "http://www.w3.org/2000/svg";

  /** An element with attributes (on* are listeners) and children (strings become text nodes). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  /** The same, in the SVG namespace. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  /** JSON from the API; a POST carries the header that marks it as the dashboard's own. */
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-Graflow-Request"] = "1";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (answer.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      throw new ApiError(401, "log in first");
    }
    const data = await answer.json().catch(() => ({ detail: answer.statusText }));
    if (!answer.ok)
      throw new ApiError(
        answer.status,
        typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail),
      );
    return data;
  }

  /** Server-Sent Events: call onData with each `event`'s JSON; the browser reconnects by itself. */
  function listen(path, event, onData, onProblem) {
    const source = new EventSource(path);
    source.addEventListener(event, (e) => onData(JSON.parse(e.data)));
    source.addEventListener("problem", (e) => {
      source.close();
      if (onProblem) onProblem(JSON.parse(e.data).detail);
    });
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  /** Call `look` now and every `seconds`, while the page is visible. */
  function every(seconds, look) {
    look();
    const timer = setInterval(() => {
      if (!document.hidden) look();
    }, seconds * 1000);
    window.addEventListener("pagehide", () => clearInterval(timer));
  }

  /** Replace what `el` holds with `children` (nested arrays and nulls allowed, as in h). */
  function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
  }

  function args() {
    return JSON.parse(document.getElementById("app").dataset.args || "{}");
  }

  function main() {
    return document.getElementById("app");
  }

  function time(value) {
    if (value === null || value === undefined) return "–";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 90) return `${seconds.toFixed(1)} s`;
    if (seconds < 5400) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  function badge(status) {
    return h("span", { class: `badge status-${status}` }, status);
  }

  function shortId(id) {
    return id.length > 12 ? id.slice(0, 12) : id;
  }

  /** A message at the top of the page that goes away by itself. */
  function toast(message, kind = "info") {
    let box = document.getElementById("toasts");
    if (!box) {
      box = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
      document.body.append(box);
    }
    const note = h("div", { class: `toast ${kind}` }, message);
    box.append(note);
    setTimeout(() => note.remove(), kind === "error" ? 9000 : 4000);
  }

  function empty(text) {
    return h("p", { class: "empty" }, text);
  }

  /** A form that answers one question, shaped by its kind (SPEC 17). Calls onAnswered(request). */
  function answerForm(request, onAnswered) {
    const who = h("input", {
      name: "responded_by",
      placeholder: "your name (optional)",
      value: localStorage.getItem("graflow.responded_by") || "",
    });
    const reason = h("textarea", { name: "reason", rows: 2, placeholder: "reason (optional)" });
    const status = h("p", { class: "form-error", role: "alert" });
    const form = h("form", { class: "answer", "data-feedback-id": request.feedback_id });

    async function send(answer) {
      status.textContent = "";
      const name = who.value.trim();
      localStorage.setItem("graflow.responded_by", name);
      const body = { response_type: request.feedback_type, ...answer };
      if (name) body.responded_by = name;
      if (reason.value.trim()) body.reason = reason.value.trim();
      for (const button of form.querySelectorAll("button")) button.disabled = true;
      try {
        const answered = await api(`/api/feedback/${encodeURIComponent(request.feedback_id)}`, {
          method: "POST",
          body,
        });
        toast(`Answered: ${request.prompt}`, "ok");
        onAnswered(answered);
      } catch (error) {
        status.textContent = error.message;
        for (const button of form.querySelectorAll("button")) button.disabled = false;
      }
    }

    const options = request.options || [];
    let fields;
    let buttons;
    switch (request.feedback_type) {
      case "approval":
        fields = [reason];
        buttons = [
          h(
            "button",
            { type: "button", class: "approve", onclick: () => send({ approved: true }) },
            "Approve",
          ),
          h(
            "button",
            { type: "button", class: "reject", onclick: () => send({ approved: false }) },
            "Reject",
          ),
        ];
        break;
      case "text": {
        const text = h("textarea", { name: "text", rows: 3, required: true, placeholder: "your answer" });
        fields = [text];
        buttons = [h("button", { type: "submit" }, "Send")];
        form.addEventListener("submit", (e) => (e.preventDefault(), send({ text: text.value })));
        break;
      }
      case "selection":
      case "multi_selection": {
        const many = request.feedback_type === "multi_selection";
        const choices = options.map((option, i) =>
          h(
            "label",
            { class: "choice" },
            h("input", {
              type: many ? "checkbox" : "radio",
              name: "choice",
              value: option,
              required: !many && i === 0,
            }),
            option,
          ),
        );
        fields = [h("fieldset", {}, h("legend", {}, many ? "choose any" : "choose one"), choices)];
        buttons = [h("button", { type: "submit" }, "Send")];
        form.addEventListener("submit", (e) => {
          e.preventDefault();
          const chosen = [...form.querySelectorAll("input[name=choice]:checked")].map((input) => input.value);
          send(many ? { selected_multiple: chosen } : { selected: chosen[0] });
        });
        break;
      }
      default: {
        const data = h("textarea", {
          name: "custom_data",
          rows: 4,
          class: "mono",
          placeholder: '{"key": "value"}',
        });
        fields = [data];
        buttons = [h("button", { type: "submit" }, "Send")];
        form.addEventListener("submit", (e) => {
          e.preventDefault();
          let parsed;
          try {
            parsed = JSON.parse(data.value);
          } catch (error) {
            status.textContent = `not JSON: ${error.message}`;
            return;
          }
          if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
            status.textContent = "the answer must be a JSON object";
            return;
          }
          send({ custom_data: parsed });
        });
      }
    }
    if (request.feedback_type !== "approval") fields.push(reason);
    append(form, [fields, h("div", { class: "row" }, who, buttons), status]);
    return form;
  }

  /** A card for one question: what is asked, by which task of which run, and its form. */
  function questionCard(request, onAnswered) {
    return h(
      "article",
      { class: "card question", id: `q-${request.feedback_id}` },
      h(
        "header",
        {},
        h("span", { class: "kind" }, request.feedback_type.replace("_", " ")),
        h("h3", {}, request.prompt),
      ),
      h(
        "p",
        { class: "meta" },
        "task ",
        h("code", {}, request.task_id),
        " of run ",
        h("a", { href: `/runs/${encodeURIComponent(request.run_id)}` }, shortId(request.run_id)),
        ` · asked ${time(request.created_at)}`,
      ),
      Object.keys(request.metadata || {}).length
        ? h("pre", { class: "mono small" }, JSON.stringify(request.metadata, null, 2))
        : null,
      answerForm(request, onAnswered),
    );
  }

  return {
    h,
    s,
    fill,
    api,
    ApiError,
    listen,
    every,
    args,
    main,
    time,
    duration,
    badge,
    shortId,
    toast,
    empty,
    answerForm,
    questionCard,
  };
})();
