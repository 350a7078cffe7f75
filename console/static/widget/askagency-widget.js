/*
 * AskAgency chat widget. Embed with ONE script tag, no build step:
 *
 *   <script src="https://console.example.gov/static/widget/askagency-widget.js" defer
 *           data-server-url="https://bot.example.gov" data-title="Ask the Agency"
 *           data-primary-color="#0b4f8a" data-lang="en" data-greeting="Hi!"
 *           data-location="DEN"></script>
 *
 * data-attachments-url (optional): where photos and PDFs are uploaded (default: the console's
 * /api/widget/attachments next to this script; "none" hides the attach button).
 * data-max-file-mb (optional, default 10): the size the widget refuses before uploading; the
 * server's attachment_max_bytes is the real limit.
 *
 * data-location (optional): the code of the agency location this page is about (an airport,
 * an office), from the location list staff keep in the console; leadership reports count the
 * conversation there. A code not in the list is ignored by analytics.
 *
 * The script loads its stylesheet, its UI strings (i18n.js) and the vendored socket.io client
 * from next to itself, then talks to Rasa's socket.io channel. Safety rules kept throughout:
 * message text is only ever inserted with textContent / text nodes, and only http(s) links are
 * made clickable. Public API: window.AskAgencyWidget.{open, close, addLanguage, setLanguage}.
 */
(function () {
  "use strict";

  if (window.AskAgencyWidget && window.AskAgencyWidget.loaded) {
    return; // embedded twice: keep the first one
  }

  var script =
    document.currentScript ||
    document.querySelector("script[src*='askagency-widget'][data-server-url]") ||
    document.querySelector("script[src*='askagency-widget']");
  var scriptUrl = new URL(script && script.src ? script.src : "askagency-widget.js", document.baseURI);
  var assetBase = new URL(".", scriptUrl);

  var DEFAULT_PRIMARY = "#0b4f8a";
  var QUEUE_LIMIT = 20;
  var TYPING_TIMEOUT_MS = 20000;
  // custom.type values of bot messages (askagency/bot_messages.py; tests/unit/test_bot_messages.py
  // checks these lists against it): a person takes over after the first, the bot is back after
  // the second.
  var HANDOFF_START = { handoff: 1, agent_message: 1 };
  var HANDOFF_END = { handoff_closed: 1, faq_answer: 1, clarify: 1, fallback: 1 };
  // The "Back to the assistant" button of a handoff message stays usable while the citizen
  // writes to the person (other suggestions are disabled once the citizen answers).
  var CANCEL_HANDOFF_INTENT = "cancel_handoff";
  // Files a citizen may attach (attachments/sanitize.py ACCEPTED_MIME_TYPES; checked by
  // tests/unit/console/test_widget_attachments.py). HEIC photos may come without a type.
  var ACCEPTED_TYPES = "image/jpeg,image/png,image/webp,image/heic,image/heif,application/pdf";
  var ACCEPTED_EXTENSIONS = ".heic,.heif";
  var URL_RE = /https?:\/\/[^\s<>"']+/g;
  var TRAILING_PUNCT_RE = /[.,;:!?)\]]+$/;

  // ---------------------------------------------------------------- configuration
  function attr(name) {
    var value = script ? script.getAttribute("data-" + name) : null;
    return value === null ? null : String(value).trim();
  }

  function positiveInt(value, fallback) {
    var n = parseInt(value, 10);
    return n > 0 ? n : fallback;
  }

  /** "den " -> "DEN"; anything that is not a location code (askagency/location_codes.py) -> "". */
  function locationCode(value) {
    var code = (value || "").trim().toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9_-]{0,15}$/.test(code)) {
      if (code && window.console) console.warn("AskAgency widget: data-location must be a location code such as DEN");
      return "";
    }
    return code;
  }

  var config = {
    serverUrl: attr("server-url") || "",
    socketPath: attr("socket-path") || "/socket.io/",
    title: attr("title") || "Ask the Agency",
    primaryColor: attr("primary-color") || DEFAULT_PRIMARY,
    lang: (attr("lang") || "").toLowerCase(),
    greeting: attr("greeting"),
    historyUrl: attr("history-url"),
    attachmentsUrl: attr("attachments-url"),
    maxFileBytes: positiveInt(attr("max-file-mb"), 10) * 1024 * 1024,
    maxLength: positiveInt(attr("max-length"), 2000),
    location: locationCode(attr("location")),
  };
  if (config.historyUrl === null) {
    config.historyUrl = new URL("/api/widget/history", scriptUrl).href;
  } else if (config.historyUrl === "" || config.historyUrl === "none") {
    config.historyUrl = "";
  }
  if (config.attachmentsUrl === null) {
    config.attachmentsUrl = new URL("/api/widget/attachments", scriptUrl).href;
  } else if (config.attachmentsUrl === "" || config.attachmentsUrl === "none") {
    config.attachmentsUrl = "";
  }

  // ---------------------------------------------------------------- storage (may be blocked)
  var memoryStore = {};
  var store = {
    get: function (key) {
      try {
        return window.localStorage.getItem(key);
      } catch (e) {
        return Object.prototype.hasOwnProperty.call(memoryStore, key) ? memoryStore[key] : null;
      }
    },
    set: function (key, value) {
      memoryStore[key] = String(value);
      try {
        window.localStorage.setItem(key, String(value));
      } catch (e) {
        /* private mode or quota: the in-memory copy keeps this page working */
      }
    },
  };
  // The assistant issues the conversation id and a signed token (session_confirm); the widget
  // keeps both and proves ownership with the token on every join and history read. An id the
  // widget made up itself would be refused, so nothing is generated here.
  var SESSION_KEY = "askagency:session:" + config.serverUrl;
  var TOKEN_KEY = "askagency:token:" + config.serverUrl;
  var LANG_KEY = "askagency:lang";

  var SESSION_RE = /^[A-Za-z0-9._~-]{1,128}$/;
  var TOKEN_RE = /^[A-Za-z0-9._~-]{1,128}$/;
  var storedSession = store.get(SESSION_KEY);
  var storedToken = store.get(TOKEN_KEY);
  var isReturning = !!(
    storedSession &&
    SESSION_RE.test(storedSession) &&
    storedToken &&
    TOKEN_RE.test(storedToken)
  );
  var sessionId = isReturning ? storedSession : null;
  var sessionToken = isReturning ? storedToken : null;

  function seenKey() {
    return "askagency:seen:" + sessionId;
  }

  // ---------------------------------------------------------------- small helpers
  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var el = document.createElement("script");
      el.src = src;
      el.async = true;
      el.onload = function () {
        resolve();
      };
      el.onerror = function () {
        reject(new Error("could not load " + src));
      };
      document.head.appendChild(el);
    });
  }

  function loadCss(href) {
    return new Promise(function (resolve) {
      var el = document.createElement("link");
      el.rel = "stylesheet";
      el.href = href;
      el.onload = el.onerror = function () {
        resolve();
      };
      document.head.appendChild(el);
    });
  }

  /** Loads our socket.io client without clobbering a different `io` the host page may use. */
  function loadSocketIo() {
    var previous = window.io;
    return loadScript(new URL("../vendor/socket.io.min.js", assetBase).href).then(function () {
      var ours = window.io;
      if (previous === undefined) {
        try {
          delete window.io;
        } catch (e) {
          window.io = undefined;
        }
      } else {
        window.io = previous;
      }
      return ours;
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** A link target only when it is an absolute http(s) URL; null otherwise (javascript:, data:...). */
  function safeUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url : null;
    } catch (e) {
      return null;
    }
  }

  function hexToRgb(hex) {
    var m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex || "");
    if (!m) return null;
    var h = m[1];
    if (h.length === 3) h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2];
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
  }

  function luminance(rgb) {
    var c = rgb.map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  function contrast(a, b) {
    var la = luminance(a);
    var lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  /**
   * The agency's colour is used only where it keeps WCAG AA contrast: text on it is white or
   * near-black, whichever contrasts more, and it is used as a text/border colour on white only
   * when that reaches 4.5:1.
   */
  function themeColors(primary) {
    var rgb = hexToRgb(primary);
    if (!rgb) {
      if (window.console) console.warn("AskAgency widget: data-primary-color must be #rgb or #rrggbb");
      rgb = hexToRgb(DEFAULT_PRIMARY);
      primary = DEFAULT_PRIMARY;
    }
    var white = [255, 255, 255];
    var dark = [27, 31, 36];
    var onPrimary = contrast(rgb, white) >= contrast(rgb, dark) ? "#ffffff" : "#1b1f24";
    var best = Math.max(contrast(rgb, white), contrast(rgb, dark));
    if (best < 4.5) {
      primary = DEFAULT_PRIMARY;
      onPrimary = "#ffffff";
      rgb = hexToRgb(DEFAULT_PRIMARY);
    }
    var accent = contrast(rgb, white) >= 4.5 ? primary : DEFAULT_PRIMARY;
    return { primary: primary, onPrimary: onPrimary, accent: accent };
  }

  function prefersReducedMotion() {
    return !!(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  // ---------------------------------------------------------------- i18n
  var extraLanguages = {};

  function tables() {
    var all = {};
    var shipped = window.AskAgencyWidgetI18n || {};
    Object.keys(shipped).forEach(function (k) {
      all[k] = shipped[k];
    });
    Object.keys(extraLanguages).forEach(function (k) {
      all[k] = extraLanguages[k];
    });
    return all;
  }

  function normaliseLang(code) {
    if (!code) return "";
    var base = String(code).toLowerCase().split(/[-_]/)[0];
    return tables()[base] ? base : "";
  }

  function chooseLanguage() {
    return (
      normaliseLang(store.get(LANG_KEY)) ||
      normaliseLang(config.lang) ||
      normaliseLang(document.documentElement.getAttribute("lang")) ||
      normaliseLang(navigator.language) ||
      "en"
    );
  }

  var lang = "en";

  function t(key, values) {
    var all = tables();
    var table = all[lang] || {};
    var template = table[key];
    if (template === undefined) template = (all.en || {})[key];
    if (template === undefined) template = key;
    return String(template).replace(/\{(\w+)\}/g, function (whole, name) {
      return values && values[name] !== undefined ? String(values[name]) : whole;
    });
  }

  // ---------------------------------------------------------------- state
  var ui = {};
  var socket = null;
  var confirmed = false;
  var queue = [];
  var handoffActive = false;
  var typingTimer = null;
  var isOpen = false;
  var unread = 0;
  var seenCount = sessionId ? positiveInt(store.get(seenKey()), 0) : 0;
  var botMessageCount = 0;
  var historyPending = false;
  var liveBuffer = [];
  var historyKeys = [];
  var instanceId = "aaw-" + Math.random().toString(36).slice(2, 8);
  var pendingFile = null; // the file chosen for the next message: {file, dataUrl, isImage}
  var uploading = false;

  // ---------------------------------------------------------------- DOM
  function build() {
    var colors = themeColors(config.primaryColor);
    var root = el("div", "aaw-root");
    root.setAttribute("data-askagency-widget", "");
    root.style.setProperty("--aaw-primary", colors.primary);
    root.style.setProperty("--aaw-on-primary", colors.onPrimary);
    root.style.setProperty("--aaw-accent", colors.accent);

    var launcher = el("button", "aaw-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", instanceId + "-panel");
    var icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    icon.setAttribute("focusable", "false");
    icon.setAttribute("class", "aaw-launcher-icon");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute(
      "d",
      "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"
    );
    icon.appendChild(path);
    var launcherText = el("span", "aaw-launcher-text");
    var badge = el("span", "aaw-badge");
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(icon);
    launcher.appendChild(launcherText);
    launcher.appendChild(badge);

    var panel = el("section", "aaw-panel");
    panel.id = instanceId + "-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-modal", "false");
    panel.setAttribute("aria-labelledby", instanceId + "-title");
    panel.hidden = true;

    var header = el("div", "aaw-header");
    var title = el("h2", "aaw-title", config.title);
    title.id = instanceId + "-title";
    var langWrap = el("div", "aaw-lang");
    var langLabel = el("label", "aaw-lang-label");
    langLabel.htmlFor = instanceId + "-lang";
    var langSelect = el("select", "aaw-lang-select");
    langSelect.id = instanceId + "-lang";
    langWrap.appendChild(langLabel);
    langWrap.appendChild(langSelect);
    var closeBtn = el("button", "aaw-close");
    closeBtn.type = "button";
    var closeGlyph = el("span", "", "\u00d7");
    closeGlyph.setAttribute("aria-hidden", "true");
    closeBtn.appendChild(closeGlyph);
    header.appendChild(title);
    header.appendChild(langWrap);
    header.appendChild(closeBtn);

    var disclaimer = el("p", "aaw-disclaimer");
    var conn = el("p", "aaw-conn");
    conn.setAttribute("role", "status");

    var log = el("div", "aaw-log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-relevant", "additions");
    log.tabIndex = 0;

    var typing = el("div", "aaw-typing");
    typing.setAttribute("role", "status");
    var dots = el("span", "aaw-dots");
    dots.setAttribute("aria-hidden", "true");
    dots.appendChild(el("span"));
    dots.appendChild(el("span"));
    dots.appendChild(el("span"));
    var typingText = el("span", "aaw-typing-text");
    typing.appendChild(dots);
    typing.appendChild(typingText);
    typing.hidden = true;

    var actions = el("div", "aaw-actions");
    var restart = el("button", "aaw-human aaw-restart");
    restart.type = "button";
    var human = el("button", "aaw-human");
    human.type = "button";
    actions.appendChild(restart);
    actions.appendChild(human);

    var form = el("form", "aaw-composer");
    form.setAttribute("novalidate", "");
    var inputLabel = el("label", "aaw-visually-hidden");
    inputLabel.htmlFor = instanceId + "-input";
    var input = el("input", "aaw-input");
    input.id = instanceId + "-input";
    input.type = "text";
    input.autocomplete = "off";
    input.maxLength = config.maxLength;
    input.setAttribute("aria-describedby", instanceId + "-error");
    var sendBtn = el("button", "aaw-send");
    sendBtn.type = "submit";
    var error = el("p", "aaw-error");
    error.id = instanceId + "-error";
    error.setAttribute("aria-live", "assertive");
    var attachBtn = null;
    var fileInput = null;
    if (config.attachmentsUrl && window.fetch && window.FileReader) {
      attachBtn = el("button", "aaw-attach");
      attachBtn.type = "button";
      attachBtn.appendChild(clipIcon());
      fileInput = el("input", "aaw-file-input");
      fileInput.type = "file";
      fileInput.accept = ACCEPTED_TYPES + "," + ACCEPTED_EXTENSIONS;
      fileInput.hidden = true; // the paper clip button is the control; this is its picker
      form.appendChild(fileInput);
      form.appendChild(attachBtn);
    }
    form.appendChild(inputLabel);
    form.appendChild(input);
    form.appendChild(sendBtn);
    // The chosen file, shown before it is sent, with a control to take it off again.
    var preview = el("div", "aaw-preview");
    preview.setAttribute("role", "group");
    preview.hidden = true;

    panel.appendChild(header);
    panel.appendChild(disclaimer);
    panel.appendChild(conn);
    panel.appendChild(log);
    panel.appendChild(typing);
    panel.appendChild(actions);
    panel.appendChild(preview);
    panel.appendChild(form);
    panel.appendChild(error);

    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(root);

    ui = {
      root: root,
      launcher: launcher,
      launcherText: launcherText,
      badge: badge,
      panel: panel,
      title: title,
      langLabel: langLabel,
      langSelect: langSelect,
      closeBtn: closeBtn,
      disclaimer: disclaimer,
      conn: conn,
      log: log,
      typing: typing,
      typingText: typingText,
      human: human,
      restart: restart,
      inputLabel: inputLabel,
      input: input,
      sendBtn: sendBtn,
      error: error,
      attachBtn: attachBtn,
      fileInput: fileInput,
      preview: preview,
    };

    launcher.addEventListener("click", function () {
      if (isOpen) close();
      else open();
    });
    closeBtn.addEventListener("click", close);
    root.addEventListener("keydown", function (event) {
      if ((event.key === "Escape" || event.key === "Esc") && isOpen) {
        event.preventDefault();
        close();
      }
    });
    langSelect.addEventListener("change", function () {
      setLanguage(langSelect.value, true);
    });
    human.addEventListener("click", function () {
      send("/ask_human", { display: t("talkToPerson") });
      ui.input.focus();
    });
    restart.addEventListener("click", function () {
      startOver();
      ui.input.focus();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text && !pendingFile) return;
      if (text.length > config.maxLength) {
        showError(t("tooLong", { max: config.maxLength }));
        return;
      }
      if (pendingFile) {
        sendWithFile(text);
        return;
      }
      showError("");
      input.value = "";
      send(text, { display: text });
    });
    if (attachBtn) {
      attachBtn.addEventListener("click", function () {
        fileInput.value = "";
        fileInput.click();
      });
      fileInput.addEventListener("change", function () {
        if (fileInput.files && fileInput.files[0]) chooseFile(fileInput.files[0]);
      });
      // A screenshot pasted into the input, or a photo dropped onto the conversation.
      input.addEventListener("paste", function (event) {
        var file = firstFile(event.clipboardData);
        if (!file) return;
        event.preventDefault();
        chooseFile(file);
      });
      panel.addEventListener("dragover", function (event) {
        if (!hasFiles(event.dataTransfer)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        panel.classList.add("aaw-dropping");
      });
      panel.addEventListener("dragleave", function (event) {
        if (!event.relatedTarget || !panel.contains(event.relatedTarget)) {
          panel.classList.remove("aaw-dropping");
        }
      });
      panel.addEventListener("drop", function (event) {
        panel.classList.remove("aaw-dropping");
        var file = firstFile(event.dataTransfer);
        if (!file) return;
        event.preventDefault();
        chooseFile(file);
        input.focus();
      });
    }
    input.addEventListener("input", function () {
      if (ui.error.textContent) showError("");
    });
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = !text;
    if (text) ui.input.setAttribute("aria-invalid", "true");
    else ui.input.removeAttribute("aria-invalid");
  }

  /** (Re)writes every UI string; called at start and when the citizen picks another language. */
  function applyStrings() {
    ui.root.setAttribute("lang", lang);
    ui.launcherText.textContent = t("launcher");
    updateLauncherLabel();
    ui.closeBtn.setAttribute("aria-label", t("close"));
    ui.langLabel.textContent = t("languageLabel");
    ui.disclaimer.textContent = t("disclaimer");
    ui.log.setAttribute("aria-label", t("logLabel"));
    ui.typingText.textContent = t("typing");
    ui.human.textContent = t("talkToPerson");
    ui.restart.textContent = t("newConversation");
    ui.inputLabel.textContent = t("inputLabel");
    ui.input.placeholder = t("inputPlaceholder");
    ui.sendBtn.textContent = t("send");
    if (ui.attachBtn) ui.attachBtn.setAttribute("aria-label", t("attach"));
    if (ui.attachBtn) ui.attachBtn.title = t("attach");
    if (ui.root && pendingFile) renderPreview();
    var all = tables();
    ui.langSelect.textContent = "";
    Object.keys(all).forEach(function (code) {
      var option = el("option", "", all[code].languageName || code);
      option.value = code;
      option.setAttribute("lang", code);
      option.selected = code === lang;
      ui.langSelect.appendChild(option);
    });
    renderConnection();
    if (ui.greeting) {
      var text = ui.greeting.querySelector(".aaw-text");
      if (text) {
        text.textContent = "";
        appendRichText(text, greetingText());
      }
      var sender = ui.greeting.querySelector(".aaw-sender");
      if (sender) sender.textContent = t("assistant");
    }
  }

  function updateLauncherLabel() {
    // Starts with the visible text, so speech users can say what they see (WCAG 2.5.3).
    var label =
      t("launcher") + " \u2013 " + t(isOpen ? "launcherClose" : "launcherOpen", { title: config.title });
    if (unread > 0 && !isOpen) {
      label += " (" + (unread === 1 ? t("unreadOne") : t("unread", { count: unread })) + ")";
    }
    ui.launcher.setAttribute("aria-label", label);
    ui.launcher.setAttribute("aria-expanded", isOpen ? "true" : "false");
    ui.badge.textContent = unread > 9 ? "9+" : String(unread);
    ui.badge.hidden = !(unread > 0 && !isOpen);
  }

  function setLanguage(code, remember) {
    var chosen = normaliseLang(code);
    if (!chosen) return false;
    lang = chosen;
    if (remember) store.set(LANG_KEY, lang);
    if (ui.root) applyStrings();
    return true;
  }

  // ---------------------------------------------------------------- open / close
  function open() {
    if (isOpen) return;
    isOpen = true;
    ui.panel.hidden = false;
    ui.root.classList.add("aaw-is-open");
    markSeen();
    updateLauncherLabel();
    scrollToEnd();
    ui.input.focus();
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    ui.panel.hidden = true;
    ui.root.classList.remove("aaw-is-open");
    updateLauncherLabel();
    ui.launcher.focus();
  }

  function markSeen() {
    unread = 0;
    seenCount = botMessageCount;
    if (sessionId) store.set(seenKey(), seenCount);
  }

  function scrollToEnd() {
    var log = ui.log;
    if (!log) return;
    if (log.scrollTo && !prefersReducedMotion()) {
      log.scrollTo({ top: log.scrollHeight, behavior: "smooth" });
    } else {
      log.scrollTop = log.scrollHeight;
    }
  }

  // ---------------------------------------------------------------- connection status
  var connState = "connecting";

  function setConnState(state) {
    connState = state;
    renderConnection();
  }

  function renderConnection() {
    var text = "";
    if (connState === "connecting") text = t("connecting");
    else if (connState === "offline") text = t("offline");
    else if (connState === "unavailable") text = t("unavailable");
    ui.conn.textContent = text;
    ui.conn.hidden = !text;
  }

  // ---------------------------------------------------------------- typing indicator
  function showTyping() {
    if (handoffActive) return;
    ui.typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
    scrollToEnd();
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    typingTimer = null;
    ui.typing.hidden = true;
  }

  // ---------------------------------------------------------------- rendering
  /** Text with http(s) URLs turned into links; everything else stays plain text nodes. */
  function appendRichText(parent, text) {
    var str = String(text);
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(str)) !== null) {
      var raw = match[0].replace(TRAILING_PUNCT_RE, "");
      var url = safeUrl(raw);
      if (!url) continue;
      if (match.index > last) parent.appendChild(document.createTextNode(str.slice(last, match.index)));
      parent.appendChild(makeLink(url, raw));
      last = match.index + raw.length;
      URL_RE.lastIndex = last;
    }
    if (last < str.length) parent.appendChild(document.createTextNode(str.slice(last)));
  }

  function makeLink(url, label) {
    var a = el("a", "aaw-link", label);
    a.href = url.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.appendChild(el("span", "aaw-visually-hidden", " " + t("newTab")));
    return a;
  }

  function shortUrl(url) {
    var shown = url.hostname.replace(/^www\./, "");
    if (url.pathname && url.pathname !== "/") shown += url.pathname.replace(/\/$/, "");
    return shown;
  }

  /**
   * Text-only channels get the source as a last line ("Source: https://..."); the widget shows
   * it as a proper link instead, so that line is dropped when it is just a label and the URL.
   */
  function withoutSourceLine(text, sourceUrl) {
    var lines = text.split("\n");
    while (lines.length > 1) {
      var last = lines[lines.length - 1];
      if (!last.trim()) {
        lines.pop();
        continue;
      }
      if (last.indexOf(sourceUrl) !== -1 && last.replace(sourceUrl, "").trim().length <= 20) {
        lines.pop();
        continue;
      }
      break;
    }
    return lines.join("\n").replace(/\s+$/, "");
  }

  function agentLabel(custom) {
    var agent = custom && custom.agent;
    var name = "";
    if (typeof agent === "string") name = agent;
    else if (agent && typeof agent === "object") name = agent.name || agent.display_name || "";
    name = String(name).trim().slice(0, 60);
    return name ? t("agentNamed", { name: name }) : t("agent");
  }

  function formatTime(value) {
    var date = typeof value === "number" ? new Date(value * 1000) : new Date(String(value));
    if (isNaN(date.getTime())) return String(value);
    try {
      return new Intl.DateTimeFormat(lang, {
        weekday: "long",
        hour: "numeric",
        minute: "2-digit",
      }).format(date);
    } catch (e) {
      return date.toLocaleString();
    }
  }

  function disableQuickReplies() {
    var buttons = ui.log.querySelectorAll(".aaw-quick button");
    for (var i = 0; i < buttons.length; i++) {
      if (handoffActive && buttons[i].getAttribute("data-intent") === CANCEL_HANDOFF_INTENT) continue;
      buttons[i].disabled = true;
    }
  }

  function senderName(role, custom) {
    if (role === "citizen") return t("you");
    if (role === "agent") return agentLabel(custom);
    return t("assistant");
  }

  /** The citizen's own file in their bubble: the photo, else the file's name, else (history)
   * how many files were sent. */
  function appendCitizenFile(bubble, msg) {
    if (msg.localImage && /^data:image\//.test(msg.localImage)) {
      var img = el("img", "aaw-photo");
      img.src = msg.localImage;
      img.alt = t("yourPhoto", { name: msg.fileName || t("photo") });
      bubble.insertBefore(img, bubble.firstChild);
    } else if (msg.fileName) {
      bubble.insertBefore(el("p", "aaw-file-sent", "\ud83d\udcce " + msg.fileName), bubble.firstChild);
    } else if (msg.attachmentCount > 0) {
      var label = msg.attachmentCount === 1 ? t("fileSentOne") : t("fileSentMany", { count: msg.attachmentCount });
      bubble.insertBefore(el("p", "aaw-file-sent", "\ud83d\udcce " + label), bubble.firstChild);
    }
  }

  /** A photo from the agency as an image that opens full size; a file as a download link.
   * Only absolute http(s) URLs are used (a signed link of the console). */
  function appendBotFiles(bubble, msg, role, custom) {
    var image = safeUrl(msg.image);
    if (image) {
      var full = el("a", "aaw-image-link");
      full.href = image.href;
      full.target = "_blank";
      full.rel = "noopener noreferrer";
      var img = el("img", "aaw-photo");
      img.src = image.href;
      img.alt = t("imageFrom", { sender: senderName(role, custom) });
      img.loading = "lazy";
      full.appendChild(img);
      full.appendChild(el("span", "aaw-visually-hidden", " " + t("newTab")));
      bubble.appendChild(full);
    }
    var file = msg.attachment && typeof msg.attachment === "object" ? msg.attachment : null;
    var fileUrl = file ? safeUrl(file.url) : null;
    if (fileUrl) {
      var name = String(file.name || t("file")).slice(0, 200);
      var row = el("p", "aaw-file");
      var link = makeLink(fileUrl, "");
      link.classList.add("aaw-file-link");
      link.setAttribute("download", name);
      var glyph = el("span", "aaw-file-glyph", "\ud83d\udcc4 ");
      glyph.setAttribute("aria-hidden", "true");
      link.insertBefore(glyph, link.firstChild);
      link.insertBefore(document.createTextNode(t("download", { name: name })), glyph.nextSibling);
      row.appendChild(link);
      bubble.appendChild(row);
    }
  }

  /**
   * Renders one message. `msg` = {role: "citizen"|"bot"|"agent", text, buttons, custom, image?,
   * attachment?} (a citizen's: localImage?, fileName?, attachmentCount?).
   * Returns the message element.
   */
  function renderMessage(msg) {
    var custom = msg.custom && typeof msg.custom === "object" ? msg.custom : {};
    var role = msg.role;
    if (role !== "citizen" && custom.type === "agent_message") role = "agent";
    if (role === "citizen") disableQuickReplies();

    var item = el("div", "aaw-msg aaw-msg--" + role);
    if (custom.type) item.setAttribute("data-type", String(custom.type));
    if (custom.faq_id !== undefined && custom.faq_id !== null) {
      item.setAttribute("data-faq-id", String(custom.faq_id));
    }

    var sender = el("p", "aaw-sender", senderName(role, custom));
    item.appendChild(sender);

    var bubble = el("div", "aaw-bubble");
    var source = role === "citizen" ? null : safeUrl(custom.source_url);
    var body = msg.text ? String(msg.text) : "";
    if (source) body = withoutSourceLine(body, custom.source_url);
    if (body) {
      var textEl = el("p", "aaw-text");
      if (role === "citizen") textEl.textContent = body;
      else appendRichText(textEl, body);
      bubble.appendChild(textEl);
    }
    if (role === "citizen") appendCitizenFile(bubble, msg);
    else appendBotFiles(bubble, msg, role, custom);
    if (source && role !== "citizen") {
      var sourceEl = el("p", "aaw-source");
      sourceEl.appendChild(el("span", "aaw-source-label", t("source") + " "));
      var link = makeLink(source, shortUrl(source));
      link.classList.add("aaw-source-link");
      sourceEl.appendChild(link);
      bubble.appendChild(sourceEl);
    }
    if (bubble.childNodes.length) item.appendChild(bubble);

    if (role !== "citizen" && (custom.after_hours || custom.expected_reply_at)) {
      var notice = el("p", "aaw-notice aaw-after-hours");
      var parts = [];
      if (custom.after_hours) parts.push(t("afterHours"));
      if (custom.expected_reply_at) {
        parts.push(t("expectedReply", { time: formatTime(custom.expected_reply_at) }));
      }
      notice.textContent = parts.join(" ");
      item.appendChild(notice);
    }

    if (role !== "citizen" && Array.isArray(msg.buttons) && msg.buttons.length) {
      var group = el("div", "aaw-quick");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", t("suggestions"));
      msg.buttons.forEach(function (button) {
        if (!button || button.payload === undefined || button.payload === null) return;
        var title = String(button.title !== undefined ? button.title : button.payload);
        var payload = String(button.payload);
        var b = el("button", "aaw-quick-btn", title);
        b.type = "button";
        b.setAttribute("data-intent", payload.replace(/^\//, "").split("{")[0]);
        b.addEventListener("click", function () {
          send(payload, { display: title });
          ui.input.focus();
        });
        group.appendChild(b);
      });
      if (group.childNodes.length) item.appendChild(group);
    }

    if (role === "bot" && custom.type === "faq_answer") {
      item.appendChild(feedbackControls(custom.faq_id));
    }

    if (role !== "citizen") {
      if (HANDOFF_START[custom.type]) handoffActive = true;
      else if (HANDOFF_END[custom.type]) {
        handoffActive = false;
        // The handoff's "Back to the assistant" buttons are done.
        var back = ui.log.querySelectorAll('.aaw-quick button[data-intent="' + CANCEL_HANDOFF_INTENT + '"]');
        for (var k = 0; k < back.length; k++) back[k].disabled = true;
      }
    }

    ui.log.appendChild(item);
    return item;
  }

  function feedbackControls(faqId) {
    var box = el("div", "aaw-feedback");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", t("helpfulQuestion"));
    var question = el("span", "aaw-feedback-q", t("helpfulQuestion"));
    question.setAttribute("aria-hidden", "true");
    box.appendChild(question);
    [
      ["good", "yes", "helpfulYes"],
      ["bad", "no", "helpfulNo"],
    ].forEach(function (spec) {
      var b = el("button", "aaw-feedback-btn aaw-feedback-" + spec[0]);
      b.type = "button";
      b.setAttribute("aria-label", t(spec[2]));
      b.appendChild(thumbIcon(spec[0] === "bad"));
      b.appendChild(el("span", "aaw-feedback-label", t(spec[1])));
      b.addEventListener("click", function () {
        var metadata = {};
        if (faqId !== undefined && faqId !== null) metadata.faq_id = faqId;
        send("/feedback_" + spec[0], { metadata: metadata });
        feedbackDone(box);
        ui.input.focus();
      });
      box.appendChild(b);
    });
    return box;
  }

  // A decorative 24x24 icon (hidden from assistive technology: its button has a name).
  function icon(className, pathData) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", className);
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", pathData);
    svg.appendChild(shape);
    return svg;
  }

  function thumbIcon(down) {
    var svg = icon(
      "aaw-thumb",
      "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.5-1.1L13.2 1 6.6 7.6" +
        "C6.2 8 6 8.5 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7c.1-.3.2-.5.2-.8v-2z"
    );
    if (down) svg.firstChild.setAttribute("transform", "rotate(180 12 12)");
    return svg;
  }

  function feedbackDone(box) {
    if (!box || box.classList.contains("aaw-feedback--done")) return;
    box.classList.add("aaw-feedback--done");
    box.removeAttribute("role");
    box.removeAttribute("aria-label");
    box.textContent = "";
    box.appendChild(el("span", "aaw-feedback-thanks", t("feedbackThanks")));
  }

  // ---------------------------------------------------------------- photos and files
  function clipIcon() {
    return icon(
      "aaw-clip",
      "M16.5 6.5v10.6a4.5 4.5 0 0 1-9 0V5.5a3 3 0 0 1 6 0v10.4a1.5 1.5 0 0 1-3 0V6.5H9v9.4" +
        "a3 3 0 0 0 6 0V5.5a4.5 4.5 0 0 0-9 0v11.6a6 6 0 0 0 12 0V6.5z"
    );
  }

  function hasFiles(transfer) {
    if (!transfer || !transfer.types) return false;
    for (var i = 0; i < transfer.types.length; i++) {
      if (transfer.types[i] === "Files") return true;
    }
    return false;
  }

  function firstFile(transfer) {
    var files = transfer && transfer.files;
    return files && files.length ? files[0] : null;
  }

  function isAccepted(file) {
    var type = String(file.type || "").toLowerCase();
    if (type) return ACCEPTED_TYPES.split(",").indexOf(type) !== -1;
    return /\.(heic|heif)$/i.test(file.name || "");
  }

  /** The code the server would refuse this file with, checked first to save the upload. */
  function localRefusal(file) {
    if (!file.size) return "empty";
    if (file.size > config.maxFileBytes) return "too_large";
    if (!isAccepted(file)) return "unsupported_type";
    return "";
  }

  function uploadErrorText(code) {
    var key = {
      empty: "fileEmpty",
      too_large: "fileTooLarge",
      unsupported_type: "fileUnsupported",
      damaged: "fileDamaged",
      too_many_pixels: "fileTooManyPixels",
      rate_limited: "fileRateLimited",
    }[code];
    return t(key || "fileFailed", { max: Math.round(config.maxFileBytes / (1024 * 1024)) });
  }

  /** Shows the chosen file under the conversation; it is sent with the next message. */
  function chooseFile(file) {
    if (uploading) return;
    var refused = localRefusal(file);
    if (refused) {
      showError(uploadErrorText(refused));
      return;
    }
    showError("");
    var chosen = { file: file, dataUrl: "", isImage: /^image\//i.test(file.type || "") };
    pendingFile = chosen;
    renderPreview();
    if (!chosen.isImage) return;
    // A data: URL (not a blob: one), which the console's own Content-Security-Policy allows.
    var reader = new FileReader();
    reader.onload = function () {
      if (pendingFile !== chosen) return;
      chosen.dataUrl = typeof reader.result === "string" ? reader.result : "";
      renderPreview();
    };
    reader.readAsDataURL(file);
  }

  function clearFile() {
    pendingFile = null;
    if (ui.fileInput) ui.fileInput.value = "";
    renderPreview();
  }

  function fileName(file) {
    return String((file && file.name) || t(file && /^image\//i.test(file.type) ? "photo" : "file"));
  }

  function renderPreview() {
    var box = ui.preview;
    box.textContent = "";
    if (!pendingFile) {
      box.hidden = true;
      box.removeAttribute("aria-label");
      return;
    }
    var name = fileName(pendingFile.file);
    box.setAttribute("aria-label", t("attachmentChosen"));
    if (pendingFile.isImage && pendingFile.dataUrl) {
      var img = el("img", "aaw-preview-img");
      img.src = pendingFile.dataUrl;
      img.alt = "";
      box.appendChild(img);
    } else {
      var glyph = el("span", "aaw-preview-glyph", "\ud83d\udcc4");
      glyph.setAttribute("aria-hidden", "true");
      box.appendChild(glyph);
    }
    box.appendChild(el("span", "aaw-preview-name", name));
    var remove = el("button", "aaw-preview-remove");
    remove.type = "button";
    remove.setAttribute("aria-label", t("removeAttachment", { name: name }));
    var cross = el("span", "", "\u00d7");
    cross.setAttribute("aria-hidden", "true");
    remove.appendChild(cross);
    remove.disabled = uploading;
    remove.addEventListener("click", function () {
      clearFile();
      ui.input.focus();
    });
    box.appendChild(remove);
    box.hidden = false;
    scrollToEnd();
  }

  function setUploading(on) {
    uploading = on;
    ui.sendBtn.disabled = on;
    if (ui.attachBtn) ui.attachBtn.disabled = on;
    if (on) ui.preview.setAttribute("aria-busy", "true");
    else ui.preview.removeAttribute("aria-busy");
    var remove = ui.preview.querySelector(".aaw-preview-remove");
    if (remove) remove.disabled = on;
  }

  /** POST the file with the conversation's token; resolves {id, kind, name} or rejects {code}. */
  function uploadFile(file) {
    var url = new URL(config.attachmentsUrl, document.baseURI);
    url.searchParams.set("session_id", sessionId);
    return fetch(url.href, {
      method: "POST",
      credentials: "omit",
      body: file,
      headers: {
        Accept: "application/json",
        "Content-Type": file.type || "application/octet-stream",
        "X-Conversation-Token": sessionToken,
        "X-Attachment-Name": encodeURIComponent(String(file.name || "")),
      },
    }).then(
      function (resp) {
        return resp
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            if (resp.status === 201 && body && typeof body.id === "string") return body;
            throw { code: body && typeof body.error === "string" ? body.error : "" };
          });
      },
      function () {
        throw { code: "" };
      }
    );
  }

  /**
   * Uploads the chosen file, then sends the message with the text as its caption. A refused
   * file leaves the text and the file where they were, with the reason under the input.
   */
  function sendWithFile(text) {
    if (uploading) return;
    if (!sessionId || !sessionToken || !confirmed) {
      showError(t("fileOffline"));
      return;
    }
    var chosen = pendingFile;
    setUploading(true);
    showError("");
    uploadFile(chosen.file)
      .then(function (stored) {
        setUploading(false);
        if (pendingFile === chosen) clearFile();
        if (ui.input.value.trim() === text) ui.input.value = "";
        send(text, {
          display: text,
          attachments: [stored.id],
          localImage: chosen.isImage ? chosen.dataUrl : "",
          fileName: typeof stored.name === "string" ? stored.name : fileName(chosen.file),
        });
      })
      .catch(function (err) {
        setUploading(false);
        showError(uploadErrorText(err && err.code));
      });
  }

  // ---------------------------------------------------------------- incoming messages
  function messageKey(msg) {
    var custom = msg.custom && typeof msg.custom === "object" ? msg.custom : {};
    return [msg.text || "", custom.type || "", custom.faq_id || ""].join("\u0001");
  }

  function receiveBot(data) {
    if (!data || typeof data !== "object") return;
    var msg = {
      role: "bot",
      text: typeof data.text === "string" ? data.text : "",
      buttons: Array.isArray(data.buttons)
        ? data.buttons
        : Array.isArray(data.quick_replies)
          ? data.quick_replies
          : null,
      custom: data.custom && typeof data.custom === "object" ? data.custom : {},
      image: typeof data.image === "string" ? data.image : "",
      attachment: data.attachment && typeof data.attachment === "object" ? data.attachment : null,
    };
    var hasFile = !!(msg.image || msg.attachment);
    if (!msg.text && !msg.buttons && !Object.keys(msg.custom).length && !hasFile) return;
    if (restartTimer) {
      resetConversation(); // the withdrawn handoff's answer: the old log is going anyway
      return;
    }
    if (historyPending) {
      liveBuffer.push(msg);
      return;
    }
    hideTyping();
    renderMessage(msg);
    countBotMessage();
    scrollToEnd();
  }

  function countBotMessage() {
    botMessageCount += 1;
    if (isOpen) markSeen();
    else unread = Math.max(0, botMessageCount - seenCount);
    updateLauncherLabel();
  }

  // ---------------------------------------------------------------- history
  var PAYLOAD_LABELS = { "/ask_human": "talkToPerson", "/cancel_handoff": "backToAssistant" };

  function renderHistory(messages) {
    var lastFaqBox = {};
    var lastAnyBox = null;
    messages.forEach(function (m) {
      if (!m || typeof m !== "object") return;
      if (m.role === "citizen" && typeof m.attachments === "number" && m.attachments > 0) {
        var caption = typeof m.text === "string" ? m.text : "";
        renderMessage({ role: "citizen", text: caption, attachmentCount: m.attachments });
        historyKeys.push(messageKey({ text: caption }));
        return;
      }
      if (m.role === "citizen") {
        var payload = typeof m.payload === "string" ? m.payload : "";
        if (payload.indexOf("/feedback_") === 0) {
          var box = (m.faq_id !== undefined && lastFaqBox[String(m.faq_id)]) || lastAnyBox;
          feedbackDone(box);
          return;
        }
        var text = typeof m.text === "string" ? m.text : "";
        if (text.charAt(0) === "/") {
          var key = PAYLOAD_LABELS[text.split("{")[0]];
          if (!key) return; // an intent payload with no visible label
          text = t(key);
        }
        if (!text) return;
        renderMessage({ role: "citizen", text: text });
        historyKeys.push(messageKey({ text: text }));
        return;
      }
      var item = renderMessage({
        role: m.role === "agent" ? "agent" : "bot",
        text: typeof m.text === "string" ? m.text : "",
        buttons: Array.isArray(m.buttons) ? m.buttons : null,
        custom: m.custom && typeof m.custom === "object" ? m.custom : {},
        image: typeof m.image === "string" ? m.image : "",
        attachment: m.attachment && typeof m.attachment === "object" ? m.attachment : null,
      });
      botMessageCount += 1;
      historyKeys.push(messageKey(m));
      var fb = item.querySelector(".aaw-feedback");
      if (fb) {
        lastAnyBox = fb;
        if (m.custom && m.custom.faq_id !== undefined) lastFaqBox[String(m.custom.faq_id)] = fb;
      }
    });
  }

  function loadHistory() {
    if (!config.historyUrl || !isReturning || !window.fetch) return Promise.resolve();
    historyPending = true;
    ui.log.setAttribute("aria-busy", "true");
    var url = new URL(config.historyUrl, document.baseURI);
    url.searchParams.set("session_id", sessionId);
    return fetch(url.href, {
      credentials: "omit",
      headers: { Accept: "application/json", "X-Conversation-Token": sessionToken },
    })
      .then(function (resp) {
        if (resp.status === 404) return { messages: [] };
        if (!resp.ok) throw new Error("history HTTP " + resp.status);
        return resp.json();
      })
      .then(function (body) {
        renderHistory(Array.isArray(body && body.messages) ? body.messages : []);
      })
      .catch(function (err) {
        if (window.console) console.warn("AskAgency widget: history not loaded:", err);
        var note = el("p", "aaw-notice aaw-history-error", t("historyError"));
        ui.log.appendChild(note);
      })
      .then(function () {
        historyPending = false;
        ui.log.removeAttribute("aria-busy");
        var buffered = liveBuffer;
        liveBuffer = [];
        buffered.forEach(function (msg) {
          var key = messageKey(msg);
          var idx = historyKeys.lastIndexOf(key);
          if (idx !== -1) {
            historyKeys.splice(idx, 1); // already shown from history
            return;
          }
          receiveBot({
            text: msg.text,
            buttons: msg.buttons,
            custom: msg.custom,
            image: msg.image,
            attachment: msg.attachment,
          });
        });
        if (isOpen) markSeen();
        else unread = Math.max(0, botMessageCount - seenCount);
        updateLauncherLabel();
        scrollToEnd();
      });
  }

  // ---------------------------------------------------------------- outgoing messages
  function send(text, options) {
    options = options || {};
    var files = Array.isArray(options.attachments) ? options.attachments : [];
    if (options.display || files.length) {
      renderMessage({
        role: "citizen",
        text: options.display || "",
        localImage: options.localImage || "",
        fileName: files.length ? options.fileName || "" : "",
      });
      scrollToEnd();
    }
    var metadata = { language: lang };
    if (config.location) metadata.location = config.location;
    if (options.metadata) {
      Object.keys(options.metadata).forEach(function (k) {
        metadata[k] = options.metadata[k];
      });
    }
    var payload = { message: text, session_id: sessionId, metadata: metadata };
    // The ids of files uploaded for this message: the server turns it into the file intent.
    if (files.length) payload.attachments = files.slice();
    if (socket && confirmed) {
      socket.emit("user_uttered", payload);
    } else {
      if (queue.length >= QUEUE_LIMIT) queue.shift();
      queue.push(payload);
    }
    showTyping();
  }

  function flushQueue() {
    while (socket && confirmed && queue.length) {
      var queued = queue.shift();
      queued.session_id = sessionId; // queued before the assistant issued it
      socket.emit("user_uttered", queued);
    }
  }

  // ---------------------------------------------------------------- socket.io
  function connect(io) {
    if (!config.serverUrl || typeof io !== "function") {
      setConnState("unavailable");
      return;
    }
    // WebSocket first: it needs no CORS set-up on Rasa and is one connection; long-polling is the
    // fallback for networks that block WebSockets (that one needs Rasa's --cors for this origin).
    socket = io(config.serverUrl, {
      path: config.socketPath,
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelayMax: 10000,
    });
    socket.on("connect", function () {
      confirmed = false;
      socket.emit(
        "session_request",
        sessionId ? { session_id: sessionId, token: sessionToken } : {}
      );
    });
    socket.on("session_confirm", function (data) {
      var confirmedId = data && typeof data === "object" ? data.session_id : null;
      var token = data && typeof data === "object" ? data.token : null;
      if (
        typeof confirmedId !== "string" ||
        !SESSION_RE.test(confirmedId) ||
        typeof token !== "string" ||
        !TOKEN_RE.test(token)
      ) {
        if (window.console) console.warn("AskAgency widget: unusable session_confirm", data);
        return;
      }
      if (sessionId && confirmedId !== sessionId && window.console) {
        console.warn("AskAgency widget: the assistant started a new conversation");
      }
      sessionId = confirmedId;
      sessionToken = token;
      store.set(SESSION_KEY, sessionId);
      store.set(TOKEN_KEY, sessionToken);
      confirmed = true;
      setConnState("connected");
      flushQueue();
    });
    socket.on("bot_uttered", receiveBot);
    socket.on("disconnect", function () {
      confirmed = false;
      hideTyping();
      setConnState("offline");
    });
    socket.on("connect_error", function () {
      confirmed = false;
      setConnState("offline");
    });
  }

  // ---------------------------------------------------------------- new conversation
  var RESTART_WAIT_MS = 5000;
  var restartTimer = null;

  /**
   * "New conversation": a person who is waiting is told the citizen went back (the handoff is
   * withdrawn first, and its answer awaited, so the ticket closes politely), then the assistant
   * issues a new conversation on the same socket and the log starts again with the greeting.
   * The old conversation stays in the assistant's history; this browser forgets it.
   */
  function startOver() {
    if (restartTimer) return;
    if (handoffActive && socket && confirmed) {
      send("/" + CANCEL_HANDOFF_INTENT);
      restartTimer = setTimeout(resetConversation, RESTART_WAIT_MS);
      return;
    }
    resetConversation();
  }

  function resetConversation() {
    clearTimeout(restartTimer);
    restartTimer = null;
    handoffActive = false;
    hideTyping();
    queue = [];
    sessionId = null;
    sessionToken = null;
    store.set(SESSION_KEY, "");
    store.set(TOKEN_KEY, "");
    botMessageCount = 0;
    seenCount = 0;
    unread = 0;
    updateLauncherLabel();
    ui.log.textContent = "";
    showGreeting();
    if (socket && socket.connected) {
      confirmed = false;
      socket.emit("session_request", {});
    }
  }

  // ---------------------------------------------------------------- start
  /** data-greeting-<lang> beats data-greeting, which beats the shipped greeting of the language. */
  function greetingText() {
    var perLang = attr("greeting-" + lang);
    if (perLang) return perLang;
    if (config.greeting && normaliseLang(config.lang || document.documentElement.lang) === lang) {
      return config.greeting;
    }
    if (config.greeting && !normaliseLang(config.lang || document.documentElement.lang)) {
      return config.greeting;
    }
    return t("greeting");
  }

  /** The greeting at the top of the log: the widget's own, not a message of the assistant. */
  function showGreeting() {
    var greet = renderMessage({ role: "bot", text: greetingText(), custom: { type: "greeting" } });
    greet.classList.add("aaw-msg--local");
    ui.greeting = greet;
  }

  function start(io) {
    lang = chooseLanguage();
    build();
    applyStrings();
    showGreeting();
    loadHistory();
    connect(io);
  }

  window.AskAgencyWidget = {
    loaded: true,
    open: function () {
      if (ui.panel) open();
    },
    close: function () {
      if (ui.panel) close();
    },
    setLanguage: function (code) {
      return setLanguage(code, true);
    },
    addLanguage: function (code, strings) {
      if (typeof code === "string" && strings && typeof strings === "object") {
        extraLanguages[code.toLowerCase()] = strings;
        if (ui.root) applyStrings();
      }
    },
    sessionId: function () {
      return sessionId;
    },
  };

  function boot() {
    var i18n = window.AskAgencyWidgetI18n
      ? Promise.resolve()
      : loadScript(new URL("i18n.js", assetBase).href).catch(function () {
          /* English keys are the fallback labels */
        });
    var io = loadSocketIo().catch(function (err) {
      if (window.console) console.error("AskAgency widget:", err);
      return null;
    });
    Promise.all([loadCss(new URL("askagency-widget.css", assetBase).href), i18n, io]).then(
      function (results) {
        start(results[2]);
      }
    );
  }

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot);
})();
