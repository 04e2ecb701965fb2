// Drawing for the run page: the graph the server laid out, and the timeline of attempts, as SVG.
// Pure functions of the API's JSON: each returns a new <svg> element.
"use strict";

Graflow.draw = (() => {
  const { s, time, duration } = Graflow;

  function clip(text, length) {
    return text.length > length ? `${text.slice(0, length - 1)}…` : text;
  }

  /**
   * The graph of GET /api/runs/{id}/graph, each node coloured by `states` (task id -> state).
   * `selected` is outlined; `onSelect(taskId)` is called on a click (or Enter) on a node.
   */
  function graph(laidOut, states, { selected, onSelect, fit, label }) {
    const svg = s("svg", {
      class: "graph-svg",
      viewBox: `0 0 ${laidOut.width} ${laidOut.height}`,
      width: fit ? "100%" : laidOut.width,
      height: fit ? Math.min(laidOut.height, 640) : laidOut.height,
      preserveAspectRatio: "xMidYMin meet",
      role: "img",
      "aria-label": label,
    });
    svg.append(
      s(
        "defs",
        {},
        s(
          "marker",
          {
            id: "arrow",
            viewBox: "0 0 10 10",
            refX: 9,
            refY: 5,
            markerWidth: 7,
            markerHeight: 7,
            orient: "auto-start-reverse",
          },
          s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }),
        ),
      ),
    );
    const boxes = s("g", {});
    const edges = s("g", {});
    const tasks = s("g", {});
    for (const node of laidOut.nodes) {
      const state = states.get(node.id) || "pending";
      if (node.kind === "task") {
        tasks.append(taskNode(node, state, node.id === selected, onSelect));
      } else {
        boxes.append(containerBox(node, state, onSelect));
      }
    }
    for (const edge of laidOut.edges) {
      edges.append(
        s("polyline", {
          class: `edge edge-${edge.kind}`,
          points: edge.points.map((p) => p.join(",")).join(" "),
          "marker-end": "url(#arrow)",
        }),
      );
    }
    svg.append(boxes, edges, tasks);
    return svg;
  }

  function taskNode(node, state, selected, onSelect) {
    return s(
      "g",
      {
        class: `node state-${state}${selected ? " selected" : ""}`,
        "data-task-id": node.id,
        "data-state": state,
        transform: `translate(${node.x},${node.y})`,
        tabindex: 0,
        onclick: () => onSelect(node.id),
        onkeydown: (e) => e.key === "Enter" && onSelect(node.id),
      },
      s("title", {}, `${node.id}: ${state}`),
      s("rect", { width: node.w, height: node.h, rx: 6 }),
      s("text", { x: node.w / 2, y: node.h / 2 + 4, "text-anchor": "middle" }, clip(node.label, 22)),
    );
  }

  function containerBox(node, state, onSelect) {
    const what = node.kind === "group" ? "parallel" : "workflow";
    return s(
      "g",
      {
        class: `box box-${node.kind} state-${state}`,
        "data-task-id": node.id,
        "data-state": state,
        onclick: () => onSelect(node.id),
      },
      s(
        "title",
        {},
        `${node.id} (${node.kind === "group" ? "parallel group" : "nested workflow"}): ${state}`,
      ),
      s("rect", { x: node.x, y: node.y, width: node.w, height: node.h, rx: 8 }),
      s("text", { x: node.x + 10, y: node.y + 15 }, `${clip(node.label, 40)} · ${what}`),
    );
  }

  /** A Gantt chart of the timeline's bars: a row per task, failed attempts red, retries numbered. */
  function timeline(bars) {
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
    const svg = s("svg", {
      class: "gantt",
      viewBox: `0 0 ${width} ${height}`,
      width: "100%",
      height,
      role: "img",
      "aria-label": "timeline of task attempts",
    });
    rows.forEach((taskId, i) => {
      svg.append(
        s(
          "text",
          { x: labelW - 8, y: i * rowH + 14, "text-anchor": "end", class: "gantt-label" },
          clip(taskId, 26),
        ),
      );
    });
    for (const bar of bars) {
      const y = rowOf.get(bar.task_id) * rowH + 3;
      const w = Math.max(x(bar.end) - x(bar.start), 2);
      const where = bar.worker ? ` on ${bar.worker}` : "";
      svg.append(
        s(
          "g",
          { class: `bar bar-${bar.outcome}` },
          s(
            "title",
            {},
            `${bar.task_id}, attempt ${bar.attempt}: ${bar.outcome} in ${duration(bar.end - bar.start)}${where}`,
          ),
          s("rect", { x: x(bar.start), y, width: w, height: rowH - 6, rx: 3 }),
          bar.attempt > 1 || bar.outcome === "failed"
            ? s("text", { x: x(bar.start) + w + 3, y: y + 11, class: "gantt-attempt" }, `#${bar.attempt}`)
            : null,
        ),
      );
    }
    svg.append(
      s("text", { x: labelW, y: height - 6, class: "gantt-axis" }, time(start)),
      s(
        "text",
        { x: width - 10, y: height - 6, "text-anchor": "end", class: "gantt-axis" },
        `+${duration(span)}`,
      ),
    );
    return svg;
  }

  return { graph, timeline, clip };
})();
