// One run: its graph coloured by state (laid out by the server), a timeline of attempts,
// questions to answer, errors with tracebacks, results, and the resume / rerun buttons.
// A `pulse` event (Server-Sent Events) says when the run moved on; the page then reloads it.
"use strict";

(() => {
  const { h, fill, api, listen, main, time, duration, badge, shortId, toast, empty, questionCard } = Graflow;
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
    h(
      "div",
      { class: "run-body" },
      h(
        "section",
        { class: "card graph-card" },
        h("div", { class: "card-head" }, h("h2", {}, "Graph"), legend(), zoomButtons()),
        graphBox,
      ),
      side,
    ),
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
      ["done", "running", "retrying", "waiting", "failed", "pending", "skipped"].map((state) =>
        h("span", { class: `chip state-${state}` }, state),
      ),
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
    fill(
      head,
      h(
        "div",
        { class: "title-row" },
        h("h1", {}, run.workflow, " ", h("span", { class: "mono dim" }, shortId(run.run_id))),
        h("span", { id: "run-status" }, badge(run.status)),
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              id: "resume",
              disabled: !resumable,
              onclick: resume,
              title: resumable
                ? "carry the run on from where it stopped"
                : "only a stopped run that did not succeed can be resumed",
            },
            "Resume",
          ),
        ),
      ),
      h(
        "p",
        { class: "meta" },
        `started ${time(run.started_at)} · finished ${time(run.finished_at)} · tasks ${run.tasks_done}/${run.tasks_total}`,
        run.holder ? ` · driven by ${run.holder}` : "",
        rerunOf
          ? [
              " · a rerun of ",
              h("a", { href: `/runs/${encodeURIComponent(rerunOf.run_id)}` }, shortId(rerunOf.run_id)),
              ` from ${rerunOf.from_task}`,
            ]
          : "",
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
      if (action.launch && action.launch.new_run_id)
        location.assign(`/runs/${encodeURIComponent(action.launch.new_run_id)}`);
      else reload();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  // --- the graph ---------------------------------------------------------------------------

  function drawGraph() {
    if (!page.graph.nodes.length) {
      fill(graphBox, empty("This run has no nodes."));
      return;
    }
    const states = new Map(page.detail.tasks.map((task) => [task.task_id, task.state]));
    const options = {
      selected: page.selected,
      onSelect: select,
      fit: zoom.fit,
      label: `graph of run ${runId}`,
    };
    fill(graphBox, Graflow.draw.graph(page.graph, states, options));
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
      fill(
        side,
        h("h2", {}, "Task"),
        empty("Click a task in the graph to see it here."),
        h("p", { class: "dim small" }, `${page.detail.tasks.length} nodes`),
      );
      return;
    }
    const failures = page.detail.failures.filter((f) => f.task_id === task.task_id);
    const question = page.detail.pending_feedback.find((q) => q.task_id === task.task_id);
    fill(
      side,
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
      question
        ? h(
            "p",
            { class: "waiting-note" },
            "Waiting for an answer: ",
            h("a", { href: `#q-${question.feedback_id}` }, question.prompt),
          )
        : null,
      failures.length ? [h("h3", {}, "Failed attempts"), failures.map(failureBlock)] : null,
      h(
        "div",
        { class: "row" },
        h(
          "button",
          {
            type: "button",
            class: "rerun",
            onclick: () => rerun(task.task_id),
            title: "run this task and everything after it again, as a new run",
          },
          "Rerun from here",
        ),
      ),
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
              const full = await api(`${base}/results/${encodeURIComponent(result.task_id)}`).catch((error) =>
                toast(error.message, "error"),
              );
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
      h(
        "summary",
        {},
        h("code", {}, failure.task_id),
        ` attempt ${failure.attempt}: `,
        h("strong", {}, failure.error_type),
        `: ${failure.message}`,
        failure.final ? " (gave up)" : " (retried)",
      ),
      h(
        "p",
        { class: "dim small" },
        `${time(failure.finished_at)}${failure.worker ? ` on ${failure.worker}` : ""}`,
      ),
      h("pre", { class: "mono traceback" }, failure.traceback),
    );
  }

  // --- the timeline (Gantt) ------------------------------------------------------------------

  function drawTimeline() {
    const bars = page.detail.timeline;
    fill(timelineBox, bars.length ? Graflow.draw.timeline(bars) : empty("No attempt recorded yet."));
  }

  // --- questions, errors, results, launches ----------------------------------------------------

  function renderQuestions() {
    const pending = page.detail.pending_feedback;
    fill(
      questions,
      pending.length
        ? pending.map((q) => questionCard(q, reload))
        : empty("No question waits for an answer."),
    );
  }

  function renderErrors() {
    const failures = page.detail.failures;
    fill(
      errors,
      failures.length
        ? failures.map(failureBlock)
        : empty(page.detail.run.error ? page.detail.run.error : "No attempt failed."),
    );
  }

  function renderResults() {
    const done = page.detail.tasks.filter((t) => t.result);
    fill(
      results,
      done.length
        ? h(
            "table",
            { class: "results" },
            h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "result"))),
            h(
              "tbody",
              {},
              done.map((t) =>
                h("tr", {}, h("td", { class: "mono" }, t.task_id), h("td", {}, resultBlock(t.result))),
              ),
            ),
          )
        : empty("No result yet."),
    );
  }

  function renderLaunches() {
    const items = page.detail.launches;
    fill(
      launches,
      items.length
        ? items.map((launch) =>
            h(
              "details",
              { class: "launch", open: launch.exit_code === null },
              h(
                "summary",
                {},
                h("code", {}, launch.command.slice(2, 5).join(" ")),
                ` · pid ${launch.pid} · ${launch.exit_code === null ? "running" : `exit ${launch.exit_code}`} · ${time(launch.started_at)}`,
              ),
              launch.new_run_id && launch.new_run_id !== runId
                ? h(
                    "p",
                    {},
                    "new run ",
                    h(
                      "a",
                      { href: `/runs/${encodeURIComponent(launch.new_run_id)}` },
                      shortId(launch.new_run_id),
                    ),
                  )
                : null,
              h("p", { class: "dim small" }, `log: ${launch.log_path}`),
              h("pre", { class: "mono log" }, launch.log_tail || "(no output yet)"),
            ),
          )
        : empty("Resume and rerun start a `graflow` process; its output shows here."),
    );
  }

  // --- live ---------------------------------------------------------------------------------

  load()
    .then(() =>
      listen(`/api/events/runs/${encodeURIComponent(runId)}`, "pulse", reload, (detail) =>
        toast(detail, "error"),
      ),
    )
    .catch((error) => fill(main(), h("h1", {}, "Run"), h("p", { class: "error" }, error.message)));
})();
