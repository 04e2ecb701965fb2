// Questions tasks asked people (SPEC 17), each with a form that fits its kind.
"use strict";

(() => {
  const { h, fill, api, every, main, empty } = Graflow;
  const list = h("div", { id: "questions" });
  main().append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Questions"),
      h(
        "p",
        { class: "dim" },
        "Tasks wait for these answers; a suspended run carries on once answered and resumed.",
      ),
    ),
    list,
  );
  const open = new Set();

  async function look() {
    let pending;
    try {
      pending = await api("/api/feedback");
    } catch (error) {
      fill(list, h("p", { class: "error" }, error.message));
      return;
    }
    // Keep a form someone is typing into; add new questions, drop answered ones.
    const ids = new Set(pending.map((q) => q.feedback_id));
    for (const id of [...open]) {
      if (!ids.has(id)) {
        document.getElementById(`q-${id}`)?.remove();
        open.delete(id);
      }
    }
    for (const question of pending) {
      if (!open.has(question.feedback_id)) {
        open.add(question.feedback_id);
        list.append(Graflow.questionCard(question, look));
      }
    }
    list.querySelector(".empty")?.remove();
    if (!pending.length) fill(list, empty("No question waits for an answer."));
  }

  every(3, look);
})();
