// Dead letters: entries no worker could run, why, where and when; requeue or discard each.
"use strict";

(() => {
  const { h, fill, api, every, main, time, shortId, toast, empty } = Graflow;
  const table = h("div", { class: "table-wrap", id: "letters" });
  main().append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Dead letters"),
      h(
        "p",
        { class: "dim" },
        "Requeue puts an entry back for the workers (after fixing what rejected it); its run's driver was told of the failure already.",
      ),
    ),
    table,
  );

  async function look() {
    let page;
    try {
      page = await api("/api/dead-letters?limit=200");
    } catch (error) {
      fill(table, empty(error.message));
      return;
    }
    if (!page.letters.length) {
      fill(table, empty("No dead letters."));
      return;
    }
    fill(
      table,
      h("p", { class: "dim small" }, `${page.letters.length} of ${page.total} shown, newest first`),
      h(
        "table",
        { class: "letters" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["when", "task", "run", "worker", "reason", ""].map((c) => h("th", {}, c)),
          ),
        ),
        h(
          "tbody",
          {},
          page.letters.map((letter) =>
            h(
              "tr",
              { "data-letter-id": letter.id },
              h("td", {}, time(letter.at)),
              h("td", { class: "mono" }, letter.task || "?"),
              h(
                "td",
                {},
                letter.run_id
                  ? h("a", { href: `/runs/${encodeURIComponent(letter.run_id)}` }, shortId(letter.run_id))
                  : "–",
              ),
              h("td", { class: "mono" }, letter.worker || "–"),
              h("td", { class: "reason" }, letter.reason || ""),
              h(
                "td",
                { class: "buttons" },
                h("button", { type: "button", onclick: () => act(letter, "requeue") }, "Requeue"),
                h(
                  "button",
                  { type: "button", class: "reject", onclick: () => act(letter, "discard") },
                  "Discard",
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function act(letter, action) {
    if (
      action === "discard" &&
      !confirm(`Discard the dead letter of task ${letter.task}? This cannot be undone.`)
    )
      return;
    try {
      toast(
        (await api(`/api/dead-letters/${encodeURIComponent(letter.id)}/${action}`, { method: "POST" }))
          .message,
        "ok",
      );
    } catch (error) {
      toast(error.message, "error");
    }
    look();
  }

  every(10, look);
})();
