// Schedules: the store's schedules, their next fire time, pause and resume (graflow_ui.schedules).
"use strict";

(() => {
  const { h, fill, api, every, main, time, toast, empty } = Graflow;
  const body = h("div", { id: "schedules", class: "table-wrap" });
  main().append(h("div", { class: "page-head" }, h("h1", {}, "Schedules")), body);

  async function look() {
    let list;
    try {
      list = await api("/api/schedules");
    } catch (error) {
      fill(body, empty(error.message));
      return;
    }
    if (!list.available) {
      fill(body, h("p", { class: "empty", id: "no-scheduler" }, list.message));
      return;
    }
    fill(
      body,
      h("p", { class: "dim small" }, list.message),
      list.schedules.length
        ? h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["name", "workflow", "trigger", "next fire", "state", ""].map((c) => h("th", {}, c)),
              ),
            ),
            h(
              "tbody",
              {},
              list.schedules.map((item) =>
                h(
                  "tr",
                  {},
                  h("td", { class: "mono" }, item.name),
                  h("td", {}, item.workflow),
                  h("td", { class: "mono" }, item.trigger),
                  h("td", {}, item.paused ? "–" : time(item.next_fire_at)),
                  h("td", {}, item.paused ? "paused" : "active"),
                  h(
                    "td",
                    {},
                    h(
                      "button",
                      { type: "button", onclick: () => act(item.name, item.paused ? "resume" : "pause") },
                      item.paused ? "Resume" : "Pause",
                    ),
                  ),
                ),
              ),
            ),
          )
        : empty("No schedules yet."),
    );
  }

  async function act(name, action) {
    try {
      await api(`/api/schedules/${encodeURIComponent(name)}/${action}`, { method: "POST" });
      toast(`${name}: ${action === "pause" ? "paused" : "resumed"}`, "ok");
    } catch (error) {
      toast(error.message, "error");
    }
    look();
  }

  every(15, look);
})();
