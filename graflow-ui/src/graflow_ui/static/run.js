// One run: its graph coloured by state (laid out by the server), a timeline of attempts,
// questions to answer, errors with tracebacks, results, and the resume / rerun buttons.
// A `pulse` event (Server-Sent Events) says when the run moved on; the page then reloads it.
"use strict";

(() => {
  const { h, fill, s, api, listen, main, time, duration, badge, shortId, toast, empty, questionCard } = Graflow;
  const runId = Graflow.args().run_id;
  const base = `/api/runs/${encodeURIComponent(runId)}`;
  const page = {
    detail: null,
    graph: null,
    selected: null,
    tasksTotal: null,
  };

  const head = h("section", { class: "run-head" });
  const graphBox = h("div", { class: "graph", id: "graph" });
  const side = h("aside", { class: "task-panel card", id: "task-panel" });
  const timelineBox = h("div", { class: "timeline", id: "timeline" });
  const questions = h("div", { id: "questions" });
  const errors = h("div", { id: "errors" });
  const results = h("div", { id: "results" });
  const launches = h("div", { id: "launches" });
  const zoom = { fit: true };

  main().append(
    head,
    h("div", { class: "run-body" }, h("section", { class: "card graph-card" }, h("div", { class: "card-head" }, h("h2", {}, "Graph"), legend(), zoomButtons()), graphBox), side),
    h("section", { class: "card" }, h("h2", {}, "Questions"), questions),
    h("section", { class: "card" }, h("h2", {}, "Timeline"), timelineBox),
    h("section", { class: "card" }, h("h2", {}, "Errors"), errors),
    h("section", { class: "card" }, h("h2", {}, "Results"), results),
    h("section", { class: "card" }, h("h2", {}, "Started from here"), launches),
  );

  function legend() {
    return h(
      "div",
      { class: "legend" },
      ["done", "running", "retrying", "waiting", "failed", "pending", "skipped"].map((state) => h("span", { class: `chip state-${state}` }, state)),
    );
  }

  function zoomButtons() {
    return h(
      "div",
      { class: "zoom" },
      h("button", { type: "button", onclick: () => ((zoom.fit = true), drawGraph()) }, "fit"),
      h("button", { type: "button", onclick: () => ((zoom.fit = false), drawGraph()) }, "100%"),
    );
  }

  // --- loading ---------------------------------------------------------------------------

  async function load() {
    const detail = await api(base);
    page.detail = detail;
    if (page.graph === null || detail.run.tasks_total !== page.tasksTotal) {
      page.graph = await api(`${base}/graph`);
      page.tasksTotal = detail.run.tasks_total;
    }
    render();
  }

  let reloading = null;
  function reload() {
    if (reloading) return;
    reloading = load()
      .catch((error) => toast(error.message, "error"))
      .finally(() => (reloading = null));
  }

  // --- the parts of the page ---------------------------------------------------------------

  function render() {
    renderHead();
    drawGraph();
    renderPanel();
    drawTimeline();
    renderQuestions();
    renderErrors();
    renderResults();
    renderLaunches();
  }

  function renderHead() {
    const { run, rerun_of: rerunOf, resumable } = page.detail;
    document.title = `${run.workflow} ${shortId(run.run_id)} · Graflow`;
    fill(head, 
      h(
        "div",
        { class: "title-row" },
        h("h1", {}, run.workflow, " ", h("span", { class: "mono dim" }, shortId(run.run_id))),
        h("span", { id: "run-status" }, badge(run.status)),
        h("div", { class: "actions" }, h("button", { id: "resume", disabled: !resumable, onclick: resume, title: resumable ? "carry the run on from where it stopped" : "only a stopped run that did not succeed can be resumed" }, "Resume")),
      ),
      h(
        "p",
        { class: "meta" },
        `started ${time(run.started_at)} · finished ${time(run.finished_at)} · tasks ${run.tasks_done}/${run.tasks_total}`,
        run.holder ? ` · driven by ${run.holder}` : "",
        rerunOf ? [" · a rerun of ", h("a", { href: `/runs/${encodeURIComponent(rerunOf.run_id)}` }, shortId(rerunOf.run_id)), ` from ${rerunOf.from_task}`] : "",
      ),
      run.error ? h("p", { class: "error run-error" }, run.error) : null,
      h("p", { class: "mono small dim" }, `run id ${run.run_id}`),
    );
  }

  async function resume() {
    const button = document.getElementById("resume");
    button.disabled = true;
    try {
      const action = await api(`${base}/resume`, { method: "POST" });
      toast(action.message, "ok");
    } catch (error) {
      toast(error.message, "error");
    }
    reload();
  }

  async function rerun(taskId) {
    try {
      const action = await api(`${base}/rerun`, { method: "POST", body: { from_task: taskId } });
      toast(action.message, "ok");
      if (action.launch && action.launch.new_run_id) location.assign(`/runs/${encodeURIComponent(action.launch.new_run_id)}`);
      else reload();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  // --- the graph ---------------------------------------------------------------------------

  function drawGraph() {
    const graph = page.graph;
    if (!graph.nodes.length) {
      fill(graphBox, empty("This run has no nodes."));
      return;
    }
    const states = new Map(page.detail.tasks.map((task) => [task.task_id, task.state]));
    const svg = s("svg", {
      class: "graph-svg",
      viewBox: `0 0 ${graph.width} ${graph.height}`,
      width: zoom.fit ? "100%" : graph.width,
      height: zoom.fit ? Math.min(graph.height, 640) : graph.height,
      preserveAspectRatio: "xMidYMin meet",
      role: "img",
      "aria-label": `graph of run ${runId}`,
    });
    svg.append(
      s(
        "defs",
        {},
        s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" })),
      ),
    );
    const boxes = s("g", {});
    const edges = s("g", {});
    const tasks = s("g", {});
    for (const node of graph.nodes) {
      const state = states.get(node.id) || "pending";
      if (node.kind === "task") {
        const selected = node.id === page.selected ? " selected" : "";
        tasks.append(
          s(
            "g",
            { class: `node state-${state}${selected}`, "data-task-id": node.id, "data-state": state, transform: `translate(${node.x},${node.y})`, tabindex: 0, onclick: () => select(node.id), onkeydown: (e) => e.key === "Enter" && select(node.id) },
            s("title", {}, `${node.id}: ${state}`),
            s("rect", { width: node.w, height: node.h, rx: 6 }),
            s("text", { x: node.w / 2, y: node.h / 2 + 4, "text-anchor": "middle" }, clip(node.label, 22)),
          ),
        );
      } else {
        boxes.append(
          s(
            "g",
            { class: `box box-${node.kind} state-${state}`, "data-task-id": node.id, "data-state": state, onclick: () => select(node.id) },
            s("title", {}, `${node.id} (${node.kind === "group" ? "parallel group" : "nested workflow"}): ${state}`),
            s("rect", { x: node.x, y: node.y, width: node.w, height: node.h, rx: 8 }),
            s("text", { x: node.x + 10, y: node.y + 15 }, `${clip(node.label, 40)} · ${node.kind === "group" ? "parallel" : "workflow"}`),
          ),
        );
      }
    }
    for (const edge of graph.edges) {
      edges.append(s("polyline", { class: `edge edge-${edge.kind}`, points: edge.points.map((p) => p.join(",")).join(" "), "marker-end": "url(#arrow)" }));
    }
    svg.append(boxes, edges, tasks);
    fill(graphBox, svg);
  }

  function clip(text, length) {
    return text.length > length ? `${text.slice(0, length - 1)}…` : text;
  }

  function select(taskId) {
    page.selected = taskId;
    drawGraph();
    renderPanel();
  }

  // --- the selected task -------------------------------------------------------------------

  function renderPanel() {
    const task = page.detail.tasks.find((t) => t.task_id === page.selected);
    if (!task) {
      fill(side, h("h2", {}, "Task"), empty("Click a task in the graph to see it here."), h("p", { class: "dim small" }, `${page.detail.tasks.length} nodes`));
      return;
    }
    const failures = page.detail.failures.filter((f) => f.task_id === task.task_id);
    const question = page.detail.pending_feedback.find((q) => q.task_id === task.task_id);
    fill(side, 
      h("h2", {}, h("span", { class: "mono" }, task.task_id)),
      h(
        "dl",
        { class: "facts" },
        fact("state", h("span", { class: `chip state-${task.state}` }, task.state)),
        fact("kind", task.added ? `${task.kind}, added at run time` : task.kind),
        fact("steps", String(task.occurrences)),
        task.attempts > 1 ? fact("attempts", `${task.attempts} (retried)`) : null,
        fact("worker", task.worker || "–"),
        fact("time", duration(task.duration)),
        fact("finished", time(task.finished_at)),
      ),
      task.result ? [h("h3", {}, "Result"), resultBlock(task.result)] : null,
      question ? h("p", { class: "waiting-note" }, "Waiting for an answer: ", h("a", { href: `#q-${question.feedback_id}` }, question.prompt)) : null,
      failures.length ? [h("h3", {}, "Failed attempts"), failures.map(failureBlock)] : null,
      h("div", { class: "row" }, h("button", { type: "button", class: "rerun", onclick: () => rerun(task.task_id), title: "run this task and everything after it again, as a new run" }, "Rerun from here")),
    );
  }

  function fact(name, value) {
    return [h("dt", {}, name), h("dd", {}, value)];
  }

  function resultBlock(result) {
    const text = h("pre", { class: "mono result" }, result.text);
    const more = result.truncated
      ? h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: async () => {
              const full = await api(`${base}/results/${encodeURIComponent(result.task_id)}`).catch((error) => toast(error.message, "error"));
              if (full) {
                text.textContent = full.text;
                more.remove();
              }
            },
          },
          "show all",
        )
      : null;
    return h("div", {}, h("span", { class: "dim small" }, result.type), text, more);
  }

  function failureBlock(failure) {
    return h(
      "details",
      { class: `failure${failure.final ? " final" : ""}` },
      h("summary", {}, h("code", {}, failure.task_id), ` attempt ${failure.attempt}: `, h("strong", {}, failure.error_type), `: ${failure.message}`, failure.final ? " (gave up)" : " (retried)"),
      h("p", { class: "dim small" }, `${time(failure.finished_at)}${failure.worker ? ` on ${failure.worker}` : ""}`),
      h("pre", { class: "mono traceback" }, failure.traceback),
    );
  }

  // --- the timeline (Gantt) ------------------------------------------------------------------

  function drawTimeline() {
    const bars = page.detail.timeline;
    if (!bars.length) {
      fill(timelineBox, empty("No attempt recorded yet."));
      return;
    }
    const rows = [];
    const rowOf = new Map();
    for (const bar of bars) {
      if (!rowOf.has(bar.task_id)) {
        rowOf.set(bar.task_id, rows.length);
        rows.push(bar.task_id);
      }
    }
    const start = Math.min(...bars.map((b) => b.start));
    const end = Math.max(...bars.map((b) => b.end));
    const span = Math.max(end - start, 0.001);
    const labelW = 190;
    const width = 900;
    const rowH = 20;
    const height = rows.length * rowH + 24;
    const x = (t) => labelW + ((t - start) / span) * (width - labelW - 10);
    const svg = s("svg", { class: "gantt", viewBox: `0 0 ${width} ${height}`, width: "100%", height, role: "img", "aria-label": "timeline of task attempts" });
    rows.forEach((taskId, i) => {
      svg.append(s("text", { x: labelW - 8, y: i * rowH + 14, "text-anchor": "end", class: "gantt-label" }, clip(taskId, 26)));
    });
    for (const bar of bars) {
      const y = rowOf.get(bar.task_id) * rowH + 3;
      const w = Math.max(x(bar.end) - x(bar.start), 2);
      svg.append(
        s(
          "g",
          { class: `bar bar-${bar.outcome}` },
          s("title", {}, `${bar.task_id}, attempt ${bar.attempt}: ${bar.outcome} in ${duration(bar.end - bar.start)}${bar.worker ? ` on ${bar.worker}` : ""}`),
          s("rect", { x: x(bar.start), y, width: w, height: rowH - 6, rx: 3 }),
          bar.attempt > 1 || bar.outcome === "failed" ? s("text", { x: x(bar.start) + w + 3, y: y + 11, class: "gantt-attempt" }, `#${bar.attempt}`) : null,
        ),
      );
    }
    svg.append(s("text", { x: labelW, y: height - 6, class: "gantt-axis" }, time(start)), s("text", { x: width - 10, y: height - 6, "text-anchor": "end", class: "gantt-axis" }, `+${duration(span)}`));
    fill(timelineBox, svg);
  }

  // --- questions, errors, results, launches ----------------------------------------------------

  function renderQuestions() {
    const pending = page.detail.pending_feedback;
    fill(questions, pending.length ? pending.map((q) => questionCard(q, reload)) : empty("No question waits for an answer."));
  }

  function renderErrors() {
    const failures = page.detail.failures;
    fill(errors, failures.length ? failures.map(failureBlock) : empty(page.detail.run.error ? page.detail.run.error : "No attempt failed."));
  }

  function renderResults() {
    const done = page.detail.tasks.filter((t) => t.result);
    fill(results, 
      done.length
        ? h(
            "table",
            { class: "results" },
            h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "result"))),
            h("tbody", {}, done.map((t) => h("tr", {}, h("td", { class: "mono" }, t.task_id), h("td", {}, resultBlock(t.result))))),
          )
        : empty("No result yet."),
    );
  }

  function renderLaunches() {
    const items = page.detail.launches;
    fill(launches, 
      items.length
        ? items.map((launch) =>
            h(
              "details",
              { class: "launch", open: launch.exit_code === null },
              h("summary", {}, h("code", {}, launch.command.slice(2, 5).join(" ")), ` · pid ${launch.pid} · ${launch.exit_code === null ? "running" : `exit ${launch.exit_code}`} · ${time(launch.started_at)}`),
              launch.new_run_id && launch.new_run_id !== runId ? h("p", {}, "new run ", h("a", { href: `/runs/${encodeURIComponent(launch.new_run_id)}` }, shortId(launch.new_run_id))) : null,
              h("p", { class: "dim small" }, `log: ${launch.log_path}`),
              h("pre", { class: "mono log" }, launch.log_tail || "(no output yet)"),
            ),
          )
        : empty("Resume and rerun start a `graflow` process; its output shows here."),
    );
  }

  // --- live ---------------------------------------------------------------------------------

  load()
    .then(() => listen(`/api/events/runs/${encodeURIComponent(runId)}`, "pulse", reload, (detail) => toast(detail, "error")))
    .catch((error) => fill(main(), h("h1", {}, "Run"), h("p", { class: "error" }, error.message)));
})();
