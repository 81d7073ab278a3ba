() => {
  // Each new answer scrolls into view from its top: Gradio's own autoscroll shows a
  // message's end, which for an answer is the last cited passage, not the answer.
  const seen = new WeakSet();
  new MutationObserver(() => {
    const answers = document.querySelectorAll("#chat .qa");
    const last = answers[answers.length - 1];
    if (!last || seen.has(last)) return;
    seen.add(last);
    let box = last.parentElement;
    while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
    if (!box) return;
    const offset = last.getBoundingClientRect().top - box.getBoundingClientRect().top;
    box.scrollTop += offset - 110; // keep the question bubble above it in view
  }).observe(document.body, { childList: true, subtree: true });
}
