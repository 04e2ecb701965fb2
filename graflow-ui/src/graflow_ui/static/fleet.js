// The worker fleet of a Redis store: live workers, what each runs, its counters; queue depth over time.
"use strict";

(() => {
  const { h, fill, s, api, every, main, time, duration, shortId, empty } = Graflow;
  const queues = h("div", { id: "queues", class: "queues" });
  const workers = h("div", { id: "workers", class: "table-wrap" });
  main().append(
    h("div", { class: "page-head" }, h("h1", {}, "Fleet")),
    h("section", { class: "card" }, h("h2", {}, "Queues"), queues),
    h("section", { class: "card" }, h("h2", {}, "Workers"), workers),
  );

  async function look() {
    let found;
    try {
      found = await Promise.all([api("/api/queues"), api("/api/workers")]);
    } catch (error) {
      const text = error.status === 404 ? error.message : `cannot read the fleet: ${error.message}`;
      fill(queues, empty(text));
      fill(workers);
      return;
    }
    const [queueList, workerList] = found;
    fill(queues, ...queueList.map(queueCard));
    fill(
      workers,
      workerList.length
        ? workerTable(workerList)
        : empty("No live worker: start one with `graflow-worker --redis-url ... --key-prefix ...`."),
    );
  }

  function queueCard(queue) {
    return h(
      "article",
      { class: "queue" },
      h("h3", {}, queue.name, " ", h("span", { class: "mono dim small" }, queue.stream)),
      h(
        "div",
        { class: "numbers" },
        number("waiting", queue.depth),
        number("running", queue.in_flight),
        h("a", { href: "/dead-letters" }, number("dead letters", queue.dead_letters)),
      ),
      laneTable(queue.queues || {}),
      depthChart(queue.history),
    );
  }

  function laneTable(queues) {
    const names = Object.keys(queues).sort();
    if (!names.length) return h("span");
    return h(
      "table",
      { class: "queues small" },
      h("tr", {}, h("th", {}, "queue"), h("th", {}, "waiting"), h("th", {}, "running")),
      ...names.map((name) =>
        h(
          "tr",
          {},
          h("td", { class: "mono" }, name),
          h("td", {}, String(queues[name].waiting)),
          h("td", {}, String(queues[name].running)),
        ),
      ),
    );
  }

  function number(label, value) {
    return h("div", { class: "number" }, h("strong", {}, String(value)), h("span", {}, label));
  }

  function depthChart(history) {
    if (history.length < 2)
      return h("p", { class: "dim small" }, "Depth over the last minutes appears after a few samples.");
    const width = 600;
    const height = 120;
    const t0 = history[0].at;
    const t1 = history[history.length - 1].at;
    const top = Math.max(1, ...history.map((p) => Math.max(p.depth, p.in_flight)));
    const x = (t) => 30 + ((t - t0) / Math.max(t1 - t0, 1)) * (width - 40);
    const y = (v) => height - 20 - (v / top) * (height - 30);
    const line = (key) => history.map((p) => `${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
    return s(
      "svg",
      {
        class: "depth",
        viewBox: `0 0 ${width} ${height}`,
        width: "100%",
        height,
        role: "img",
        "aria-label": "queue depth over the last minutes",
      },
      s("polyline", { points: line("depth"), class: "depth-line" }),
      s("polyline", { points: line("in_flight"), class: "flight-line" }),
      s("text", { x: 2, y: 12, class: "axis" }, String(top)),
      s("text", { x: 2, y: height - 20, class: "axis" }, "0"),
      s("text", { x: 30, y: height - 4, class: "axis" }, `${duration(t1 - t0)} ago`),
      s(
        "text",
        { x: width - 10, y: height - 4, "text-anchor": "end", class: "axis" },
        "now · waiting (blue), running (green)",
      ),
    );
  }

  function workerTable(list) {
    return h(
      "table",
      { class: "workers" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [
            "worker",
            "host",
            "state",
            "running",
            "processed",
            "ok",
            "failed",
            "task time",
            "up since",
            "seen",
          ].map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        list.map((w) => [
          h(
            "tr",
            { "data-worker-id": w.worker_id },
            h("td", { class: "mono" }, w.worker_id),
            h("td", {}, `${w.host || "?"}:${w.pid ?? "?"}`),
            h("td", {}, w.state || "?"),
            h("td", {}, `${w.running.length}/${w.max_concurrent_tasks ?? "?"}`),
            h("td", {}, String(w.tasks_processed)),
            h("td", {}, String(w.tasks_succeeded)),
            h("td", {}, String(w.tasks_failed)),
            h("td", {}, duration(w.total_execution_time)),
            h("td", {}, time(w.started)),
            h("td", {}, time(w.last_seen)),
          ),
          w.running.length
            ? h(
                "tr",
                { class: "running-row" },
                h(
                  "td",
                  { colspan: 10 },
                  w.running.map((task) =>
                    h(
                      "span",
                      { class: "running-task" },
                      h("code", {}, task.task_id),
                      " of ",
                      h(
                        "a",
                        { href: `/runs/${encodeURIComponent(task.session_id)}` },
                        shortId(String(task.session_id)),
                      ),
                      `, attempt ${task.attempt}, since ${time(task.since)}`,
                    ),
                  ),
                ),
              )
            : null,
        ]),
      ),
    );
  }

  every(5, look);
})();
