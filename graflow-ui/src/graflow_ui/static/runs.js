// The runs page: a page of runs, filtered by status and workflow, kept live over Server-Sent Events.
"use strict";

(() => {
  const { h, fill, api, listen, main, time, badge, shortId, empty } = Graflow;
  const STATUSES = ["running", "succeeded", "failed", "suspended", "canceled"];
  const query = new URLSearchParams(location.search);
  const state = {
    status: query.get("status") || "",
    workflow: query.get("workflow") || "",
    offset: Number(query.get("offset") || 0),
    limit: Number(query.get("limit") || 50),
  };
  let source = null;

  const statusSelect = h(
    "select",
    { name: "status", "aria-label": "status" },
    h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)),
  );
  const workflowInput = h("input", {
    name: "workflow",
    placeholder: "workflow name",
    value: state.workflow,
    "aria-label": "workflow",
  });
  const table = h("div", { class: "table-wrap" });
  const pager = h("div", { class: "pager" });
  const filters = h(
    "form",
    { class: "filters", onsubmit: (e) => (e.preventDefault(), apply()) },
    statusSelect,
    workflowInput,
    h("button", { type: "submit" }, "Filter"),
  );
  statusSelect.addEventListener("change", apply);
  main().append(h("div", { class: "page-head" }, h("h1", {}, "Runs"), filters), table, pager);

  function apply() {
    state.status = statusSelect.value;
    state.workflow = workflowInput.value.trim();
    state.offset = 0;
    start();
  }

  function params() {
    const p = new URLSearchParams();
    if (state.status) p.set("status", state.status);
    if (state.workflow) p.set("workflow", state.workflow);
    if (state.offset) p.set("offset", String(state.offset));
    p.set("limit", String(state.limit));
    return p;
  }

  function render(page) {
    if (!page.runs.length) {
      fill(
        table,
        empty(
          page.total
            ? "No runs on this page."
            : "No runs match. Durable runs (graflow run --durable) appear here.",
        ),
      );
    } else {
      fill(
        table,
        h(
          "table",
          { class: "runs" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["run", "workflow", "status", "started", "finished", "tasks", "error"].map((c) =>
                h("th", {}, c),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            page.runs.map((run) =>
              h(
                "tr",
                { "data-run-id": run.run_id },
                h(
                  "td",
                  {},
                  h(
                    "a",
                    { href: `/runs/${encodeURIComponent(run.run_id)}`, class: "mono" },
                    shortId(run.run_id),
                  ),
                ),
                h("td", {}, run.workflow),
                h("td", {}, badge(run.status)),
                h("td", {}, time(run.started_at)),
                h("td", {}, time(run.finished_at)),
                h("td", {}, progress(run.tasks_done, run.tasks_total)),
                h("td", { class: "error-cell", title: run.error || "" }, run.error || ""),
              ),
            ),
          ),
        ),
      );
    }
    const last = Math.min(page.offset + page.limit, page.total);
    fill(
      pager,
      h("span", {}, page.total ? `${page.offset + 1}–${last} of ${page.total.toLocaleString()}` : ""),
      h("button", { disabled: page.offset === 0, onclick: () => move(-1) }, "‹ newer"),
      h("button", { disabled: last >= page.total, onclick: () => move(1) }, "older ›"),
    );
  }

  function progress(done, total) {
    const share = total ? Math.round((100 * done) / total) : 0;
    return h(
      "span",
      { class: "progress", title: `${done} of ${total}` },
      h("span", { class: "track" }, h("span", { class: "fill", style: `width:${share}%` })),
      `${done}/${total}`,
    );
  }

  function move(direction) {
    state.offset = Math.max(0, state.offset + direction * state.limit);
    start();
  }

  async function start() {
    history.replaceState(null, "", `/runs?${params()}`);
    if (source) source.close();
    try {
      render(await api(`/api/runs?${params()}`));
    } catch (error) {
      fill(table, h("p", { class: "error" }, error.message));
      return;
    }
    source = listen(`/api/events/runs?${params()}`, "runs", render);
  }

  start();
})();
