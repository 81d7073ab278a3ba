// 👍 and 👎 under each answer (web/render.py), stored by the server (web/feedback.py). A click
// sends the rating at once; then a comment may follow, sent as the same rating with it.
// Runs as the #feedback-result component's js_on_load: the server's answer to each rating
// becomes this component's value (an <output> naming the answer), which is shown under the
// answer it rates. `element`, `props`, `trigger` and `watch` are Gradio's.
window.__qaFeedback?.abort(); // run again (the component re-mounted): one set of listeners
const listening = new AbortController();
window.__qaFeedback = listening;
const signal = listening.signal;

document.addEventListener(
  "click",
  (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const button = target && target.closest("#chat .qa-rate");
    if (!button) return;
    send(button, "");
  },
  { signal },
);

document.addEventListener(
  "submit",
  (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const form = target && target.closest("#chat .qa-feedback-form");
    if (!form) return;
    event.preventDefault();
    const answer = form.closest(".qa");
    const chosen = answer && answer.querySelector(".qa-rate.qa-rated");
    const comment = form.querySelector("textarea").value.trim();
    if (chosen && comment) send(chosen, comment);
  },
  { signal },
);

function send(button, comment) {
  panel(button.closest(".qa")).note.textContent = comment ? "正在提交说明…" : "正在记录…";
  trigger("rate", { answer: button.value, rating: button.name, comment });
}

// The area under an answer's buttons: a note, and the comment form once rated.
function panel(answer) {
  let area = answer.querySelector(".qa-feedback");
  if (!area) {
    area = document.createElement("div");
    area.className = "qa-feedback";
    const note = document.createElement("p");
    note.className = "qa-feedback-note";
    note.setAttribute("role", "status");
    area.append(note);
    answer.append(area);
  }
  return { area, note: area.querySelector(".qa-feedback-note") };
}

function commentForm() {
  const form = document.createElement("form");
  form.className = "qa-feedback-form";
  const box = document.createElement("textarea");
  box.maxLength = 1000;
  box.rows = 2;
  box.placeholder = "补充说明（可选）：哪里有用，哪里不对";
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.textContent = "提交说明";
  form.append(box, submit);
  return form;
}

watch("value", () => {
  const result = element.querySelector(".qa-feedback-result");
  if (!result) return;
  const buttons = [...document.querySelectorAll("#chat .qa-rate")].filter(
    (button) => button.value === result.name,
  );
  if (!buttons.length) return;
  const ok = result.dataset.ok === "1";
  if (ok) {
    for (const button of buttons) {
      button.classList.toggle("qa-rated", button.name === result.dataset.rating);
    }
  }
  const { area, note } = panel(buttons[0].closest(".qa"));
  note.textContent = result.textContent;
  note.classList.toggle("qa-error", !ok);
  const form = area.querySelector(".qa-feedback-form");
  if (ok && result.dataset.commented === "1" && form) form.remove();
  if (ok && result.dataset.commented === "0" && !form) area.append(commentForm());
});
