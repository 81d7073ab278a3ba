() => {
  // Conversations are kept in this browser's localStorage, never on the server: a reload,
  // or the next visit, finds them here, and no other browser sees them. With logins, each
  // user has a list of their own. Each tab remembers in sessionStorage which conversation it
  // shows, so a reload reopens it and a new tab starts a new one.
  //
  // web/conversations.py wires Gradio events to the functions below: the page's load event
  // asks `restore` for the chat to show, every change of the chat goes to `save`, and a
  // hidden button (#switch-conversation) asks `switched` for the chat to put in place of the
  // current one (a new, empty one or one picked from the list). A conversation remembers the
  // knowledge base it was asked in: `restore` and `switched` hand back that base with the
  // chat, for the picker, and the chat's text as JSON: after them, Python steps keep that
  // text as the conversation the next answer and follow-ups go on from (web/chat.py), and
  // check that the base still exists.
  const user = window.gradio_config?.username;
  const KEY = "中文文档问答:对话" + (user ? ":" + user : "");
  const CURRENT = KEY + ":当前";
  const VERSION = 1;
  const TITLE_CHARS = 40;
  const DEFAULT_BASE = "default"; // retriever.bases.DEFAULT: not named in the list
  let pending = null; // what `switched` puts in the chat: a conversation's id, or null
  let armed = null; // the delete button waiting for its second click

  function read() {
    try {
      const stored = JSON.parse(localStorage.getItem(KEY) || "null");
      if (stored && stored.version === VERSION && Array.isArray(stored.conversations)) {
        return stored.conversations;
      }
    } catch (error) {
      console.warn("stored conversations are unreadable and start afresh", error);
    }
    return [];
  }

  function write(conversations) {
    // Newest first; when the browser's quota (a few MB) is full, the oldest go.
    conversations.sort((a, b) => b.updated - a.updated);
    while (true) {
      try {
        localStorage.setItem(KEY, JSON.stringify({ version: VERSION, conversations }));
        return;
      } catch (error) {
        if (conversations.length <= 1) {
          console.warn("this browser's storage is full: the conversation is not kept", error);
          return;
        }
        conversations.pop();
      }
    }
  }

  const current = () => sessionStorage.getItem(CURRENT);
  function setCurrent(id) {
    if (id) sessionStorage.setItem(CURRENT, id);
    else sessionStorage.removeItem(CURRENT);
  }

  function textOf(message) {
    const content = message.content;
    if (typeof content === "string") return content;
    if (!Array.isArray(content)) return "";
    return content.map((part) => (part && part.type === "text" ? part.text : "")).join("");
  }

  // What a conversation says, for telling a change from the same messages sent again.
  const said = (messages) => JSON.stringify(messages.map((m) => [m.role, textOf(m)]));
  const firstQuestion = (messages) => {
    const first = messages.find((m) => m.role === "user");
    return first ? textOf(first).trim() : "";
  };

  function save(messages, base) {
    // An empty chat is no conversation (the chat is empty while the page loads, too).
    if (!Array.isArray(messages) || messages.length === 0) return;
    const kept = messages.map((m) => ({ role: m.role, content: m.content }));
    const conversations = read();
    let conversation = conversations.find((c) => c.id === current());
    // A chat that no longer starts with the conversation's first question is a new
    // conversation.
    if (conversation && firstQuestion(conversation.messages) !== firstQuestion(kept)) {
      conversation = null;
    }
    if (!conversation) {
      const now = Date.now();
      conversation = { id: newId(), created: now, updated: now, messages: [] };
      conversations.push(conversation);
      setCurrent(conversation.id);
    }
    if (said(conversation.messages) === said(kept)) return; // opened, not changed
    conversation.messages = kept;
    // The base of the latest answer: a conversation goes on where it was last asked.
    if (typeof base === "string" && base) conversation.base = base;
    conversation.title = firstQuestion(kept).slice(0, TITLE_CHARS);
    conversation.updated = Date.now();
    write(conversations);
    render();
  }

  function newId() {
    // Not crypto.randomUUID: it exists only on HTTPS pages and localhost.
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  // Gradio takes the array a JavaScript event returns as the list of its outputs' values:
  // the chat's messages, the knowledge base picker's choice, and the messages' text as JSON
  // for the server (which takes no chat messages from a browser: web/chat.py). A new
  // conversation, or one saved before conversations remembered their base, keeps the base
  // chosen now.
  function shown(conversation, base) {
    const messages = conversation?.messages || [];
    const text = messages.map((m) => ({ role: m.role, content: textOf(m) }));
    return [messages, conversation?.base || base, JSON.stringify(text)];
  }

  function restore(base) {
    const conversation = read().find((c) => c.id === current());
    if (!conversation) setCurrent(null);
    render();
    return shown(conversation, base);
  }

  function switched(messages, base) {
    // An answer on its way would land in the other conversation.
    if (busy()) return shown({ messages, base }, base);
    const conversation = read().find((c) => c.id === pending);
    setCurrent(conversation ? conversation.id : null);
    render();
    closePanel();
    return shown(conversation, base);
  }

  // A knowledge base renamed on this page (web/page.py's rename_base hands over
  // {"from": old, "to": new}): the conversations kept here that named it follow it. A base
  // renamed elsewhere, or deleted, is not followed: reopening its conversation says so (the
  // index line, web/page.py), and nothing is asked of another base until the user picks one.
  function renamed(names) {
    let change;
    try {
      change = JSON.parse(names || "null");
    } catch {
      return;
    }
    if (!change || typeof change.from !== "string" || typeof change.to !== "string") return;
    const conversations = read();
    let moved = 0;
    for (const conversation of conversations) {
      if (conversation.base === change.from) {
        conversation.base = change.to;
        moved += 1;
      }
    }
    if (moved) {
      write(conversations);
      render();
    }
  }

  // While an answer is on its way, the question box is disabled.
  const busy = () => Boolean(document.querySelector("#question textarea")?.disabled);

  function open(id) {
    pending = id;
    document.querySelector("#switch-conversation")?.click();
  }

  function remove(id) {
    write(read().filter((c) => c.id !== id));
    if (id === current()) open(null);
    render();
  }

  function when(time) {
    const date = new Date(time);
    const now = new Date();
    const clock = `${date.getHours()}:${String(date.getMinutes()).padStart(2, "0")}`;
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (date.toDateString() === now.toDateString()) return `今天 ${clock}`;
    if (date.toDateString() === yesterday.toDateString()) return `昨天 ${clock}`;
    const day = `${date.getMonth() + 1}月${date.getDate()}日`;
    if (date.getFullYear() === now.getFullYear()) return `${day} ${clock}`;
    return `${date.getFullYear()}年${day}`;
  }

  function render() {
    const list = document.querySelector("#conversations .qa-conversations");
    if (!list) return;
    const conversations = read();
    const shown = current();
    list.replaceChildren(
      ...conversations.map((conversation) => {
        const item = document.createElement("li");
        item.className = "qa-conversation";
        item.dataset.id = conversation.id;
        if (conversation.id === shown) item.setAttribute("aria-current", "true");
        const opener = document.createElement("button");
        opener.className = "qa-conversation-open";
        const title = document.createElement("span");
        title.className = "qa-conversation-title";
        title.textContent = conversation.title || "（无标题）";
        const time = document.createElement("time");
        time.className = "qa-conversation-time";
        time.dateTime = new Date(conversation.updated).toISOString();
        time.textContent = when(conversation.updated);
        opener.append(title, time);
        if (conversation.base && conversation.base !== DEFAULT_BASE) {
          const base = document.createElement("span");
          base.className = "qa-conversation-base";
          base.textContent = `知识库「${conversation.base}」`;
          opener.append(base);
        }
        const remover = document.createElement("button");
        remover.className = "qa-conversation-delete";
        remover.dataset.title = title.textContent;
        label(remover, false);
        item.append(opener, remover);
        return item;
      }),
    );
    const empty = document.querySelector("#conversations .qa-conversations-empty");
    if (empty) empty.hidden = conversations.length > 0;
  }

  function label(remover, asking) {
    remover.textContent = asking ? "确定删除？" : "删除";
    remover.classList.toggle("qa-armed", asking);
    const what = `对话：${remover.dataset.title}`;
    remover.setAttribute("aria-label", (asking ? "确定删除" : "删除") + what);
  }

  // On a narrow screen the side panel (conversations and documents) is a sheet over the
  // chat, opened from the bar above the chat (web/layout.css).
  function openPanel(section) {
    document.body.classList.add("qa-panel-open");
    document.querySelector(section)?.scrollIntoView({ block: "start" });
  }
  const closePanel = () => document.body.classList.remove("qa-panel-open");
  // Widened past the narrow layout, the panel is beside the chat again.
  window.matchMedia("(max-width: 767px)").addEventListener("change", closePanel);

  document.addEventListener("click", (event) => {
    const target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest(".qa-new-conversation")) {
      if (!busy()) open(null);
    } else if (target.closest(".qa-show-conversations")) {
      openPanel("#conversations");
    } else if (target.closest(".qa-show-documents")) {
      openPanel("#documents-title");
    } else if (target.closest(".qa-close-panel")) {
      closePanel();
    } else if (target.closest(".qa-conversation-open")) {
      if (!busy()) open(target.closest(".qa-conversation").dataset.id);
    } else if (target.closest(".qa-conversation-delete")) {
      const button = target.closest(".qa-conversation-delete");
      if (armed !== button) {
        // A second click deletes: a conversation deleted is gone for good.
        armed = button;
        label(button, true);
        setTimeout(() => {
          if (armed !== button) return;
          armed = null;
          label(button, false);
        }, 4000);
        return;
      }
      armed = null;
      remove(button.closest(".qa-conversation").dataset.id);
    }
  });
  // Another tab of this browser changed the conversations.
  window.addEventListener("storage", (event) => {
    if (event.key === KEY) render();
  });

  window.qaConversations = { renamed, restore, save, switched };
}
