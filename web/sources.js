// The source preview (web/citations.py). An answer's [n] marker opens source n, a source's
// 查看原文 opens that source: the button's value names the document and the place, and the
// server answers with the window of text around it, already escaped (web/render.py).
// Runs as the #source-preview component's js_on_load: `element`, `props`, `trigger` and
// `watch` are Gradio's.
window.__qaSources?.abort(); // run again (the component re-mounted): one set of listeners
const listening = new AbortController();
window.__qaSources = listening;
const signal = listening.signal;
const LOADING =
  '<div class="qa-preview-backdrop"><div class="qa-preview" role="dialog" aria-label="原文">' +
  '<div class="qa-preview-head"><div class="qa-preview-where">原文</div>' +
  '<button type="button" class="qa-preview-close" title="关闭（Esc）">关闭</button></div>' +
  '<p class="qa-note">正在打开原文…</p></div></div>';
let opener = null; // the button that opened the preview, to return the focus to

document.addEventListener(
  "click",
  (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const cite = target.closest("#chat .qa-cite");
    const button = cite ? sourceButton(cite) : target.closest("#chat .qa-open");
    if (!button) return;
    event.preventDefault();
    opener = button;
    props.value = LOADING;
    trigger("open_source", { spec: button.value });
  },
  { signal },
);

// Source n of the answer holding marker [n]: unfolded and scrolled to, so that it is in view
// when the preview closes; its 查看原文 button.
function sourceButton(cite) {
  const answer = cite.closest(".qa");
  const source = answer
    ? [...answer.querySelectorAll(".qa-source")].find(
        (item) => item.getAttribute("value") === cite.value,
      )
    : null;
  if (!source) return null;
  const folded = source.closest("details");
  if (folded) folded.open = true;
  source.scrollIntoView({ block: "nearest" });
  return source.querySelector(".qa-open");
}

function close() {
  props.value = "";
  if (opener && opener.isConnected) opener.focus({ preventScroll: true });
  opener = null;
}

element.addEventListener(
  "click",
  (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest(".qa-preview-close") || target.classList.contains("qa-preview-backdrop")) {
      close();
    }
  },
  { signal },
);

document.addEventListener(
  "keydown",
  (event) => {
    if (event.key === "Escape" && element.querySelector(".qa-preview")) close();
  },
  { signal },
);

watch("value", () => {
  if (!opener && props.value) {
    props.value = ""; // closed while the server was still reading the document
    return;
  }
  const passage = element.querySelector(".qa-preview-passage");
  if (passage) passage.scrollIntoView({ block: "center" });
  const button = element.querySelector(".qa-preview-close");
  if (button) button.focus({ preventScroll: true });
});
