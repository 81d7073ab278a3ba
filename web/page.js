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

  // Gradio writes where a waiting event is ("queue: 1/2 |") and "processing |" in English
  // whatever the page's language: no catalogue has them. They are put in Chinese as Gradio
  // writes them, in its progress lines only (never in an answer).
  const STATUS = [
    [/^queue: (\d+)\/(\d*) \|$/, (_, at, of) => `排队：第 ${at} 位${of ? `，共 ${of} 位` : ""} |`],
    [/^processing \|$/, () => "处理中 |"],
  ];
  function statusInChinese(node) {
    if (!node.parentElement?.closest(".progress-text")) return;
    const text = node.data.trim();
    for (const [english, chinese] of STATUS) {
      if (english.test(text)) {
        node.data = text.replace(english, chinese);
        return;
      }
    }
  }
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "characterData") statusInChinese(record.target);
      for (const added of record.addedNodes) {
        if (added.nodeType === Node.TEXT_NODE) statusInChinese(added);
        else if (added.nodeType === Node.ELEMENT_NODE) {
          const texts = document.createTreeWalker(added, NodeFilter.SHOW_TEXT);
          while (texts.nextNode()) statusInChinese(texts.currentNode);
        }
      }
    }
  }).observe(document.body, { childList: true, characterData: true, subtree: true });

  // What a screen reader reads, in Chinese and as text: Gradio names each example button
  // "Select example 1: …", and each message "bot's message: " with the message's source,
  // which for an answer is its HTML (web/render.py). Named again whenever Gradio sets them.
  function label(element, name) {
    if (name && element.getAttribute("aria-label") !== name) element.setAttribute("aria-label", name);
  }
  function nameInChinese() {
    document.querySelectorAll("#chat button.example").forEach((button, i) => {
      const text = button.querySelector(".example-text-content, .example-text")?.textContent;
      label(button, `示例问题 ${i + 1}：${(text || button.textContent).trim()}`);
    });
    document.querySelectorAll('#chat [data-testid="bot"], #chat [data-testid="user"]').forEach(
      (message) => {
        const who = message.dataset.testid === "user" ? "问题" : "回答";
        label(message, `${who}：${message.innerText.trim()}`);
      },
    );
  }
  let naming = false;
  new MutationObserver(() => {
    if (naming) return;
    naming = true;
    requestAnimationFrame(() => {
      naming = false;
      nameInChinese();
    });
  }).observe(document.body, {
    childList: true,
    subtree: true,
    characterData: true,
    attributes: true,
    attributeFilter: ["aria-label"],
  });

  // An answer's copy button (web/render.py) holds the answer as plain text, as its value.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("#chat .qa-copy");
    if (!button) return;
    button.dataset.label ??= button.textContent;
    let copied;
    try {
      await navigator.clipboard.writeText(button.value);
      copied = true;
    } catch {
      // No clipboard API where the page is not served over HTTPS or from this machine.
      copied = copyBySelecting(button.value);
    }
    button.textContent = copied ? "已复制" : "无法复制：请选中文字后按 Ctrl+C";
    setTimeout(() => (button.textContent = button.dataset.label), 2000);
  });

  function copyBySelecting(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }
}
