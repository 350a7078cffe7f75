/* Knowledge-base pages of the AskAgency console.
 *
 * Everything goes through the JSON API (/api/kb/...), the same one agencies use to
 * sync their CMS. No inline script (CSP): the pages pass data in data- attributes.
 * Text from the server is always inserted with textContent, never as HTML.
 */
(function () {
  "use strict";

  const root = document.getElementById("kb");
  if (!root) return;
  const page = root.dataset.page;
  const canEdit = root.dataset.canEdit === "true";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // ------------------------------------------------------------------ helpers
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "style") Object.assign(node.style, value);
      else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(message, status, details) {
      super(message);
      this.status = status;
      this.details = details;
    }
  }

  async function api(method, url, body, raw) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let payload;
    if (raw !== undefined) {
      payload = raw;
      headers["Content-Type"] = "application/octet-stream";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    let resp;
    try {
      resp = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    } catch (err) {
      throw new ApiError("The console did not answer; check your connection and try again.", 0, null);
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (err) {
      data = null;
    }
    if (!resp.ok) {
      const message = (data && data.error) || `Request failed (HTTP ${resp.status}).`;
      throw new ApiError(message, resp.status, data && data.details);
    }
    return data;
  }

  function say(node, text, kind) {
    if (!node) return;
    node.className = "kb-message" + (kind ? " " + kind : "");
    node.replaceChildren();
    if (Array.isArray(text)) node.append(...text);
    else node.textContent = text || "";
  }

  function indexText(index) {
    if (!index) return "";
    if (!index.ok) return ` The index could not be rebuilt (${index.error}); the previous version stays live. Use "Publish now" to retry.`;
    return ` Live: index ${index.version} (${index.faqs} FAQs, ${index.embedded} new text${index.embedded === 1 ? "" : "s"} embedded, ${index.seconds.toFixed(1)} s).`;
  }

  function flash(text, kind) {
    sessionStorage.setItem("kb-flash", JSON.stringify({ text, kind }));
  }

  function showFlash(node) {
    const raw = sessionStorage.getItem("kb-flash");
    if (!raw || !node) return;
    sessionStorage.removeItem("kb-flash");
    try {
      const { text, kind } = JSON.parse(raw);
      say(node, text, kind);
    } catch (err) {
      /* ignore a corrupt flash */
    }
  }

  function pct(score) {
    return `${(score * 100).toFixed(1)}%`;
  }

  function when(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  // ------------------------------------------------------------------ publish now
  const publishNow = document.getElementById("kb-publish-now");
  const publishStatus = document.getElementById("kb-publish-status");
  if (publishNow) {
    publishNow.addEventListener("click", async () => {
      publishNow.disabled = true;
      publishStatus.textContent = "Publishing…";
      try {
        const result = await api("POST", "/api/kb/publish");
        publishStatus.textContent = indexText(result).trim();
        const label = document.getElementById("kb-index-version");
        if (label) label.textContent = result.version;
      } catch (err) {
        publishStatus.textContent = err.message;
      } finally {
        publishNow.disabled = false;
      }
    });
  }

  // ------------------------------------------------------------------ editor
  function initEditor() {
    const form = document.getElementById("faq-form");
    const message = document.getElementById("faq-message");
    showFlash(message);
    const answer = document.getElementById("faq-answer");
    const meter = document.getElementById("sms-meter");
    const source = document.getElementById("faq-source-url");
    const list = document.getElementById("faq-variants");
    const newVariant = document.getElementById("new-variant");
    const single = Number(form.dataset.smsSingle) || 160;
    const part = Number(form.dataset.smsPart) || 153;
    const limit = Number(form.dataset.answerLimit) || 2000;
    const gsm = /^[\n\r !-~£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà€]*$/;
    let unansweredIds = [];

    function segments(text) {
      const unicode = !gsm.test(text);
      const one = unicode ? 70 : single;
      const each = unicode ? 67 : part;
      return { count: text.length <= one ? 1 : Math.ceil(text.length / each), unicode };
    }

    function updateMeter() {
      const text = answer.value;
      const withSource = source.value.trim() ? `${text}\nSource: ${source.value.trim()}` : text;
      const sms = segments(withSource);
      const parts = [`${text.length} / ${limit} characters.`];
      if (source.value.trim()) parts.push(`With the source link: ${withSource.length}.`);
      parts.push(`By SMS: ${sms.count} message${sms.count === 1 ? "" : "s"}${sms.unicode ? " (special characters: 70 per SMS)" : ""}.`);
      if (withSource.length > 2 * single) parts.push("Longer than two SMS: consider shortening.");
      else if (withSource.length > single) parts.push("Fits two SMS (160 characters each).");
      if (text.length >= limit) parts.push("Limit reached.");
      meter.textContent = parts.join(" ");
      meter.className = "sms-meter" + (withSource.length > 2 * single || text.length >= limit ? " over" : withSource.length > single ? " warn" : "");
    }
    answer.addEventListener("input", updateMeter);
    source.addEventListener("input", updateMeter);
    updateMeter();

    // The kind of entry: an out-of-scope entry's question and variants are examples of what the
    // service does not answer and its answer is a note for staff, so the labels say so (both
    // wordings come from the page, in data-answer / data-out-of-scope) and the SMS meter, which
    // is about citizens' messages, is hidden.
    const kind = document.getElementById("faq-kind");
    function applyKind() {
      const outOfScope = kind.value === "out_of_scope";
      form.querySelectorAll("[data-kind-text]").forEach((span) => {
        span.textContent = outOfScope ? span.dataset.outOfScope : span.dataset.answer;
      });
      meter.hidden = outOfScope;
    }
    kind.addEventListener("change", applyKind);
    applyKind();

    function variantTexts() {
      return [...list.querySelectorAll("input.variant")].map((i) => i.value.trim()).filter(Boolean);
    }

    function renumber() {
      [...list.children].forEach((li, i) => {
        li.querySelector("input").setAttribute("aria-label", `Variant ${i + 1}`);
        const btn = li.querySelector("button");
        if (btn) btn.setAttribute("aria-label", `Remove variant ${i + 1}`);
      });
    }

    function addVariant(text) {
      const value = text.trim();
      const error = document.getElementById("err-variants");
      error.textContent = "";
      if (!value) return false;
      const folded = value.toLocaleLowerCase();
      if (variantTexts().some((v) => v.toLocaleLowerCase() === folded) ||
          document.getElementById("faq-question").value.trim().toLocaleLowerCase() === folded) {
        error.textContent = `"${value}" is already a question of this FAQ.`;
        return false;
      }
      if (list.children.length >= Number(form.dataset.maxVariants || 50)) {
        error.textContent = "This FAQ has the maximum number of variants.";
        return false;
      }
      const input = h("input", { class: "variant", value, maxLength: 500 });
      const remove = h("button", { type: "button", class: "remove-variant", text: "Remove" });
      list.append(h("li", {}, input, " ", remove));
      renumber();
      return true;
    }

    if (list) {
      list.addEventListener("click", (event) => {
        const btn = event.target.closest("button.remove-variant");
        if (!btn) return;
        const li = btn.closest("li");
        const next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        renumber();
        (next ? next.querySelector("input") : newVariant || answer).focus();
      });
    }
    if (newVariant) {
      const add = () => {
        if (addVariant(newVariant.value)) newVariant.value = "";
        newVariant.focus();
      };
      document.getElementById("add-variant").addEventListener("click", add);
      newVariant.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          add();
        }
      });
    }

    // Related questions: staff's ordered list (ids), picked by searching question texts.
    const relatedList = document.getElementById("faq-related");
    const relatedField = document.getElementById("faq-related-field");
    const relatedSearch = document.getElementById("related-search");
    const relatedResults = document.getElementById("related-results");
    const relatedError = document.getElementById("err-related");
    const relatedMax = Number(relatedField && relatedField.dataset.maxRelated) || 3;

    function relatedIds() {
      return relatedList ? [...relatedList.children].map((li) => li.dataset.faqId) : [];
    }

    function decorateRelated(li) {
      if (!canEdit) return;
      const question = li.dataset.question;
      li.append(
        " ",
        h("button", { type: "button", class: "related-up", text: "Up" }),
        " ",
        h("button", { type: "button", class: "related-down", text: "Down" }),
        " ",
        h("button", { type: "button", class: "related-remove", text: "Remove" }),
      );
      li.querySelector(".related-remove").dataset.question = question;
    }

    function renumberRelated() {
      [...relatedList.children].forEach((li, i, all) => {
        const q = li.dataset.question;
        const up = li.querySelector(".related-up");
        const down = li.querySelector(".related-down");
        const remove = li.querySelector(".related-remove");
        if (up) {
          up.setAttribute("aria-label", `Move related question ${i + 1} up: ${q}`);
          up.disabled = i === 0;
        }
        if (down) {
          down.setAttribute("aria-label", `Move related question ${i + 1} down: ${q}`);
          down.disabled = i === all.length - 1;
        }
        if (remove) remove.setAttribute("aria-label", `Remove related question ${i + 1}: ${q}`);
      });
    }

    function addRelated(id, question) {
      relatedError.textContent = "";
      if (id === document.getElementById("faq-id").value.trim()) {
        relatedError.textContent = "An FAQ cannot be related to itself.";
        return false;
      }
      if (relatedIds().includes(id)) {
        relatedError.textContent = `"${question}" is already in the list.`;
        return false;
      }
      if (relatedIds().length >= relatedMax) {
        relatedError.textContent = `At most ${relatedMax} related questions: remove one first.`;
        return false;
      }
      const li = h("li", { "data-faq-id": id }, h("span", { class: "related-question", text: question }), " ", h("code", { text: id }));
      li.dataset.question = question;
      decorateRelated(li);
      relatedList.append(li);
      renumberRelated();
      return true;
    }

    function addButton(item, where) {
      return h("button", {
        type: "button",
        class: "related-add",
        text: "Add",
        "aria-label": `Add related question (${where}): ${item.question}`,
        onclick: () => {
          if (addRelated(item.id, item.question) && relatedSearch) relatedSearch.focus();
        },
      });
    }

    if (relatedList) {
      [...relatedList.children].forEach(decorateRelated);
      renumberRelated();
      relatedList.addEventListener("click", (event) => {
        const btn = event.target.closest("button");
        if (!btn) return;
        const li = btn.closest("li");
        if (btn.classList.contains("related-remove")) {
          const next = li.nextElementSibling || li.previousElementSibling;
          li.remove();
          renumberRelated();
          (next ? next.querySelector("button:not([disabled])") : relatedSearch || answer).focus();
        } else if (btn.classList.contains("related-up") && li.previousElementSibling) {
          li.previousElementSibling.before(li);
          renumberRelated();
          btn.disabled ? li.querySelector(".related-down").focus() : btn.focus();
        } else if (btn.classList.contains("related-down") && li.nextElementSibling) {
          li.nextElementSibling.after(li);
          renumberRelated();
          btn.disabled ? li.querySelector(".related-up").focus() : btn.focus();
        }
      });
    }

    if (relatedSearch) {
      let timer = null;
      let asked = 0;
      relatedSearch.addEventListener("keydown", (event) => {
        if (event.key === "Enter") event.preventDefault(); // never submits the form
      });
      relatedSearch.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const text = relatedSearch.value.trim();
          const number = ++asked;
          if (text.length < 2) {
            relatedResults.replaceChildren();
            return;
          }
          const language = document.getElementById("faq-language").value.trim();
          // Out-of-scope entries are never offered, so they cannot be related questions.
          const params = new URLSearchParams({ q: text, per_page: "8", kind: "answer" });
          if (language) params.set("language", language);
          try {
            const data = await api("GET", `/api/kb/faqs?${params}`);
            if (number !== asked) return; // a newer search is on its way
            const self = document.getElementById("faq-id").value.trim();
            const items = data.items.filter((item) => item.id !== self);
            relatedResults.replaceChildren(
              ...(items.length
                ? items.map((item) => h("li", {}, addButton(item, "search result"), " ", item.question, " ", h("code", { text: item.id }), item.status !== "published" ? h("span", { class: "muted", text: ` (${item.status})` }) : null))
                : [h("li", { class: "muted", text: `No ${language || ""} question matches "${text}".` })]),
            );
          } catch (err) {
            relatedResults.replaceChildren(h("li", { class: "error", text: err.message }));
          }
        }, 250);
      });
    }

    const suggested = document.getElementById("related-suggested");
    if (suggested && form.dataset.faqId) {
      (async () => {
        try {
          const data = await api("GET", `/api/kb/faqs/${encodeURIComponent(form.dataset.faqId)}/related`);
          if (!data.in_index) {
            suggested.replaceChildren(h("p", { class: "muted", text: "This FAQ is not in the live index yet: publish it to see the questions the index would suggest." }));
            return;
          }
          if (data.limit === 0) {
            suggested.replaceChildren(h("p", { class: "muted", text: "Related questions are turned off (setting related_faqs_max is 0)." }));
            return;
          }
          const list = data.suggested.length
            ? h("ul", {}, data.suggested.map((item) => h("li", {}, item.question, " ", h("code", { text: item.id }), canEdit ? [" ", addButton(item, "index suggestion")] : null)))
            : h("p", { class: "muted", text: "The index has no other question of this category and language to suggest." });
          suggested.replaceChildren(h("h3", { text: "Suggested by the index (offered while the list is empty)" }), list);
        } catch (err) {
          suggested.replaceChildren(h("p", { class: "muted", text: `Suggestions are not available: ${err.message}` }));
        }
      })();
    }

    // A new FAQ written from an unanswered-question cluster.
    if (form.dataset.mode === "new" && new URLSearchParams(location.search).get("from") === "unanswered") {
      try {
        const prefill = JSON.parse(sessionStorage.getItem("kb-prefill") || "null");
        if (prefill) {
          document.getElementById("faq-question").value = prefill.question || "";
          if (prefill.language) document.getElementById("faq-language").value = prefill.language;
          (prefill.variants || []).forEach(addVariant);
          unansweredIds = prefill.unanswered_ids || [];
          say(message, `Prefilled from ${unansweredIds.length} unanswered question${unansweredIds.length === 1 ? "" : "s"}; they are closed when you save.`);
        }
      } catch (err) {
        /* no prefill */
      }
    }

    function clearErrors() {
      form.querySelectorAll(".field-error").forEach((p) => (p.textContent = ""));
      form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    }

    function showErrors(details) {
      const unplaced = [];
      for (const item of Array.isArray(details) ? details : []) {
        const field = String(item.field || "").split(".")[0];
        const slot = form.querySelector(`[data-error-for="${field}"]`);
        if (slot) {
          slot.textContent = item.reason;
          const input = form.querySelector(`[name="${field}"]`);
          if (input) input.setAttribute("aria-invalid", "true");
        } else {
          unplaced.push(`${item.field}: ${item.reason}`);
        }
      }
      return unplaced;
    }

    function body(status) {
      const value = (id) => document.getElementById(id).value.trim();
      return {
        id: value("faq-id"),
        language: value("faq-language"),
        category: value("faq-category"),
        question: value("faq-question"),
        answer: answer.value,
        variants: variantTexts(),
        related: relatedIds(),
        source_url: value("faq-source-url") || null,
        review_by: value("faq-review-by") || null,
        translation_group: value("faq-translation-group") || null,
        kind: kind.value,
        status,
      };
    }

    function conflictMessage(err) {
      return [
        err.message + " ",
        h("a", { href: location.pathname, text: "Reload the latest version" }),
        " (copy your changes first).",
      ];
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!canEdit) return;
      const target = (event.submitter && event.submitter.dataset.statusTarget) || "keep";
      const status = target === "keep" ? form.dataset.status : target;
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      clearErrors();
      say(message, status === "published" ? "Saving and publishing…" : "Saving…");
      try {
        if (form.dataset.mode === "new") {
          const result = await api("POST", "/api/kb/faqs", { ...body(status), unanswered_ids: unansweredIds });
          sessionStorage.removeItem("kb-prefill");
          flash(`Created ${result.faq.id} (${result.faq.status}).${indexText(result.index)}`, result.index && !result.index.ok ? "error" : "ok");
          location.assign(`/console/kb/faq/${encodeURIComponent(result.faq.id)}`);
          return;
        }
        const payload = { ...body(status), expected_version: Number(form.dataset.version) };
        delete payload.id;
        const result = await api("PUT", `/api/kb/faqs/${encodeURIComponent(form.dataset.faqId)}`, payload);
        const faq = result.faq;
        const changed = String(faq.version) !== form.dataset.version;
        form.dataset.version = String(faq.version);
        form.dataset.status = faq.status;
        form.dataset.kind = faq.kind;
        document.getElementById("faq-version-label").textContent = faq.version;
        const badge = document.getElementById("faq-status-badge");
        badge.textContent = faq.status;
        badge.className = `badge status-${faq.status}`;
        say(
          message,
          (changed ? `Saved version ${faq.version} (${faq.status}).` : "No changes to save.") + indexText(result.index),
          result.index && !result.index.ok ? "error" : "ok",
        );
      } catch (err) {
        if (err.status === 409) say(message, conflictMessage(err), "error");
        else {
          const rest = showErrors(err.details);
          say(message, [err.message, rest.length ? ": " + rest.join("; ") : ""].join(""), "error");
          const first = form.querySelector('[aria-invalid="true"]');
          if (first) first.focus();
        }
      } finally {
        buttons.forEach((b) => (b.disabled = false));
      }
    });

    for (const id of ["faq-unpublish", "faq-archive"]) {
      const btn = document.getElementById(id);
      if (!btn) continue;
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        try {
          const result = await api("POST", `/api/kb/faqs/${encodeURIComponent(form.dataset.faqId)}/status`, {
            status: btn.dataset.status,
            expected_version: Number(form.dataset.version),
          });
          flash(`Status is now ${result.faq.status}.${indexText(result.index)}`, "ok");
          location.reload();
        } catch (err) {
          say(message, err.status === 409 ? conflictMessage(err) : err.message, "error");
          btn.disabled = false;
        }
      });
    }

    const del = document.getElementById("faq-delete");
    if (del) {
      del.addEventListener("click", async () => {
        if (!window.confirm(`Delete FAQ ${form.dataset.faqId}? Its history is kept and can restore it.`)) return;
        try {
          const url = `/api/kb/faqs/${encodeURIComponent(form.dataset.faqId)}?expected_version=${form.dataset.version}`;
          const result = await api("DELETE", url);
          flash(`Deleted ${form.dataset.faqId}.${indexText(result.index)}`, "ok");
          location.assign("/console/kb");
        } catch (err) {
          say(message, err.status === 409 ? conflictMessage(err) : err.message, "error");
        }
      });
    }

    const check = document.getElementById("check-conflicts");
    if (check) {
      check.addEventListener("click", async () => {
        const out = document.getElementById("conflicts-result");
        check.disabled = true;
        out.replaceChildren(h("p", { class: "muted", text: "Comparing question texts…" }));
        try {
          const data = await api("GET", `/api/kb/conflicts?faq_id=${encodeURIComponent(check.dataset.faqId)}`);
          out.replaceChildren(conflictTable(data.conflicts, "No conflicts: every question text is closest to its own FAQ."));
        } catch (err) {
          out.replaceChildren(h("p", { class: "error", text: err.message }));
        } finally {
          check.disabled = false;
        }
      });
    }
  }

  function faqLink(id) {
    return h("a", { href: `/console/kb/faq/${encodeURIComponent(id)}`, text: id });
  }

  function conflictTable(conflicts, emptyText) {
    if (!conflicts.length) return h("p", { class: "ok", text: emptyText });
    return h(
      "table",
      { class: "kb-table" },
      h("thead", {}, h("tr", {}, ["Question text", "In FAQ", "Own FAQ", "Closer to", "Score"].map((t) => h("th", { scope: "col", text: t })))),
      h(
        "tbody",
        {},
        conflicts.map((c) =>
          h(
            "tr",
            {},
            h("td", {}, c.text, c.is_canonical ? h("span", { class: "muted", text: " (canonical)" }) : null),
            h("td", {}, faqLink(c.faq_id)),
            h("td", { text: pct(c.own_score) }),
            h("td", {}, faqLink(c.other_faq_id), h("br"), h("span", { class: "muted", text: `“${c.other_text}”` })),
            h("td", { text: `${pct(c.other_score)} (+${pct(c.gap)})` }),
          ),
        ),
      ),
    );
  }

  // ------------------------------------------------------------------ history
  function initHistory() {
    const table = document.querySelector("table.kb-history");
    const message = document.getElementById("history-message");
    showFlash(message);
    table.addEventListener("click", async (event) => {
      const btn = event.target.closest("button.restore");
      if (!btn) return;
      btn.disabled = true;
      const body = { audit_id: Number(btn.dataset.auditId) };
      if (table.dataset.currentVersion) body.expected_version = Number(table.dataset.currentVersion);
      try {
        const result = await api("POST", `/api/kb/faqs/${encodeURIComponent(table.dataset.faqId)}/restore`, body);
        flash(`Restored: the FAQ is now at version ${result.faq.version}.${indexText(result.index)}`, "ok");
        location.reload();
      } catch (err) {
        say(message, err.message, "error");
        btn.disabled = false;
      }
    });
  }

  // ------------------------------------------------------------------ try it
  function initTry() {
    const form = document.getElementById("try-form");
    const out = document.getElementById("try-result");
    const ask = async () => {
      const text = document.getElementById("try-text").value.trim();
      if (!text) return;
      out.replaceChildren(h("p", { class: "muted", text: "Searching…" }));
      try {
        const data = await api("POST", "/api/kb/try", { text, language: document.getElementById("try-language").value });
        const t = data.thresholds;
        const verdict = {
          answer: "The bot would answer with the first FAQ.",
          clarify: "The bot would ask which of the highlighted FAQs the citizen means.",
          handoff: data.chosen.length
            ? "The bot is not confident: it would offer a person and suggest the highlighted FAQs."
            : "The bot is not confident and would offer a person.",
        }[data.outcome];
        const entry = data.out_of_scope;
        out.replaceChildren(
          h(
            "section",
            { class: "card" },
            h("p", {}, h("span", { class: `outcome ${data.outcome}`, text: data.outcome.toUpperCase() }), " ", verdict),
            entry
              ? h("p", { id: "try-out-of-scope" }, "Out of scope: closest to ", faqLink(entry.faq_id), ` ("${entry.matched_text}", ${pct(entry.score)}), so the bot hands it to a person.`)
              : null,
            h("p", { class: "muted", text: `Top score ${pct(data.top_score)}. Thresholds of this language: answer ≥ ${pct(t.answer_threshold)} with a lead of ${pct(t.answer_margin)}, clarify ≥ ${pct(t.clarify_threshold)}${t.suggest_threshold == null ? "" : `, suggest ≥ ${pct(t.suggest_threshold)}`}. Index ${data.index_version || "none"}.` }),
            data.hits.length
              ? h(
                  "table",
                  { class: "kb-table", id: "try-hits" },
                  h("thead", {}, h("tr", {}, ["#", "FAQ", "Score", "Closest wording"].map((x) => h("th", { scope: "col", text: x })))),
                  h(
                    "tbody",
                    {},
                    data.hits.map((hit, i) =>
                      h(
                        "tr",
                        { "data-faq-id": hit.faq_id },
                        h("td", { text: String(i + 1) }),
                        h("td", {}, faqLink(hit.faq_id), data.chosen.includes(hit.faq_id) ? h("span", { class: "badge", text: data.outcome === "answer" ? "answer" : "offered" }) : null, h("br"), hit.question),
                        h("td", {}, h("span", { class: "scorebar", style: { width: `${Math.round(hit.score * 100)}px` } }), pct(hit.score)),
                        h("td", { text: hit.matched_text }),
                      ),
                    ),
                  ),
                )
              : entry
                ? null
                : h("p", { text: "No FAQ in this language is close." }),
          ),
        );
      } catch (err) {
        out.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      ask();
    });
    if (document.getElementById("try-text").value.trim()) ask();
  }

  // ------------------------------------------------------------------ unanswered
  function initUnanswered() {
    const filters = document.getElementById("unanswered-filters");
    const container = document.getElementById("clusters");
    const summary = document.getElementById("unanswered-summary");
    const message = document.getElementById("unanswered-message");
    const targets = document.getElementById("kb-faq-targets");

    async function load() {
      summary.textContent = "Grouping questions…";
      const params = new URLSearchParams();
      const language = document.getElementById("u-language").value;
      if (language) params.set("language", language);
      params.set("threshold", document.getElementById("u-threshold").value);
      const outOfScope = document.getElementById("u-show").value === "true";
      params.set("out_of_scope", String(outOfScope));
      try {
        const data = await api("GET", `/api/kb/unanswered?${params}`);
        const taken = data.counts.open_out_of_scope || 0;
        const open = (data.counts.open || 0) - taken;
        const groups = `${data.clusters.length} group${data.clusters.length === 1 ? "" : "s"}`;
        summary.textContent = (outOfScope
          ? `${taken} open question${taken === 1 ? "" : "s"} taken by out-of-scope entries, in ${groups}: dismiss those an entry rightly took; add one the bot should answer to its FAQ.`
          : `${open} open question${open === 1 ? "" : "s"} in ${groups}; ${data.counts.accepted || 0} accepted, ${data.counts.created || 0} answered by new FAQs, ${data.counts.dismissed || 0} dismissed; ${taken} taken by out-of-scope entries (Show).`) +
          (data.suggestions_error ? ` Suggestions unavailable: ${data.suggestions_error}` : "");
        container.replaceChildren(...data.clusters.map(renderCluster));
      } catch (err) {
        summary.textContent = err.message;
      }
    }

    // The out-of-scope entries that took a cluster's questions, linked to their editor.
    function takenBy(cluster) {
      const entries = Object.entries(cluster.out_of_scope_entries || {});
      if (!entries.length) return null;
      return h("p", { class: "taken-by" }, "Taken by ", ...entries.flatMap(([id, n], i) => [i ? ", " : "", faqLink(id), n > 1 ? ` (${n})` : ""]));
    }

    // "Add as variant of <id>": files the card's wording into that FAQ (the click handler below).
    function acceptButton(faqId) {
      return h("button", { type: "button", class: "accept", "data-faq-id": faqId, text: `Add as variant of ${faqId}` });
    }

    // The FAQs citizens picked from the bot's options for these questions: their own verdict on
    // where the wording belongs, so each gets a link and (editors) its "Add as variant" button.
    function chosenBy(cluster) {
      const chosen = Object.entries(cluster.chosen || {});
      if (!chosen.length) return null;
      return h(
        "div",
        { class: "chosen-by" },
        h("p", {}, "Citizens then chose ", ...chosen.flatMap(([id, n], i) => [i ? ", " : "", faqLink(id), ` (${n}×)`])),
        canEdit ? h("p", {}, ...chosen.map(([id]) => acceptButton(id))) : null,
      );
    }

    function renderCluster(cluster) {
      const variantInput = h("input", { class: "variant-text", value: cluster.representative, maxLength: 500, "aria-label": "Wording to add as a variant" });
      const card = h(
        "article",
        { class: "card cluster", "data-key": cluster.key },
        h("h2", {}, `“${cluster.representative}”`),
        h("p", { class: "muted" }, h("span", { class: "badge", text: `asked ${cluster.count}×` }), ` ${cluster.language} · ${Object.entries(cluster.reasons).map(([r, n]) => `${r.replaceAll("_", " ")} ${n}`).join(", ")} · last ${when(cluster.last_seen)}`),
        takenBy(cluster),
        chosenBy(cluster),
        h("ul", { class: "examples" }, cluster.examples.map((e) => h("li", {}, e.text, e.count > 1 ? h("span", { class: "muted", text: ` ×${e.count}` }) : null))),
      );
      if (canEdit) {
        card.append(h("label", {}, "Wording to add as a variant", variantInput));
      }
      const suggestions = h("div", { class: "suggestions" }, h("h3", { class: "visually-hidden", text: "Suggested FAQs" }));
      // "No close FAQ" would contradict an FAQ citizens chose (a KB without an index has no suggestions).
      if (!cluster.suggestions.length && !Object.keys(cluster.chosen || {}).length) suggestions.append(h("p", { class: "muted", text: "No close FAQ: it probably needs a new one, or, if it is not for us, add it to an out-of-scope entry." }));
      for (const s of cluster.suggestions) {
        suggestions.append(
          h(
            "div",
            { class: "suggestion" },
            faqLink(s.faq_id),
            h("span", { text: s.question }),
            h("span", { class: "muted", text: pct(s.score) }),
            canEdit ? acceptButton(s.faq_id) : null,
          ),
        );
      }
      card.append(suggestions);
      if (canEdit) {
        const other = h("input", { class: "other-faq", placeholder: "another FAQ id", "aria-label": "Another FAQ id", "aria-describedby": "target-help" });
        // Every FAQ, out-of-scope entries labelled as such (the page's datalist): the suggestions
        // above never include those entries, and adding a question to one marks it "not for us".
        if (targets) other.setAttribute("list", targets.id);
        card.append(
          h(
            "div",
            { class: "row-actions" },
            other,
            h("button", { type: "button", class: "accept-other", text: "Add to that FAQ" }),
            h("button", { type: "button", class: "create", text: "Create new FAQ" }),
            h("button", { type: "button", class: "dismiss", text: "Dismiss" }),
          ),
        );
      }
      card.cluster = cluster;
      return card;
    }

    async function accept(card, faqId) {
      const cluster = card.cluster;
      const variant = card.querySelector("input.variant-text").value.trim();
      say(message, `Adding to ${faqId}…`);
      try {
        const result = await api("POST", "/api/kb/unanswered/accept", { question_ids: cluster.question_ids, faq_id: faqId, variant });
        say(message, `Added “${variant}” to ${faqId} (${result.resolved} question${result.resolved === 1 ? "" : "s"} closed).${indexText(result.index)}`, result.index && !result.index.ok ? "error" : "ok");
        card.remove();
      } catch (err) {
        const details = Array.isArray(err.details) ? ": " + err.details.map((d) => `${d.field}: ${d.reason}`).join("; ") : "";
        say(message, err.message + details, "error");
      }
    }

    container.addEventListener("click", async (event) => {
      const card = event.target.closest("article.cluster");
      if (!card) return;
      const btn = event.target.closest("button");
      if (!btn) return;
      if (btn.classList.contains("accept")) return accept(card, btn.dataset.faqId);
      if (btn.classList.contains("accept-other")) {
        const id = card.querySelector("input.other-faq").value.trim();
        if (!id) return say(message, "Type the id of the FAQ to add the wording to.", "error");
        return accept(card, id);
      }
      if (btn.classList.contains("create")) {
        const cluster = card.cluster;
        const question = card.querySelector("input.variant-text").value.trim() || cluster.representative;
        sessionStorage.setItem(
          "kb-prefill",
          JSON.stringify({
            question,
            language: cluster.language,
            variants: cluster.examples.map((e) => e.text).filter((t) => t.toLocaleLowerCase() !== question.toLocaleLowerCase()),
            unanswered_ids: cluster.question_ids,
          }),
        );
        location.assign("/console/kb/new?from=unanswered");
        return;
      }
      if (btn.classList.contains("dismiss")) {
        try {
          const result = await api("POST", "/api/kb/unanswered/dismiss", { question_ids: card.cluster.question_ids });
          say(message, `Dismissed ${result.resolved} question${result.resolved === 1 ? "" : "s"}.`, "ok");
          card.remove();
        } catch (err) {
          say(message, err.message, "error");
        }
      }
    });
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    load();
  }

  // ------------------------------------------------------------------ health
  function initHealth() {
    const FIRST = 10;

    // The first rows, and the rest behind a "show all" toggle: a long list stays scannable.
    function collapsible(list, build, emptyText) {
      if (!list.length) return h("p", { class: "ok", text: emptyText });
      if (list.length <= FIRST) return build(list);
      return h(
        "div",
        {},
        build(list.slice(0, FIRST)),
        h("details", {}, h("summary", { text: `Show ${list.length - FIRST} more` }), build(list.slice(FIRST))),
      );
    }
    function issueTable(list) {
      return h(
        "table",
        { class: "kb-table" },
        h("thead", {}, h("tr", {}, ["FAQ", "Question", "Lang", "Status", "Detail"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, list.map((i) => h("tr", {}, h("td", {}, faqLink(i.faq_id)), h("td", { text: i.question }), h("td", { text: i.language }), h("td", { text: i.status }), h("td", { text: i.detail })))),
      );
    }
    function duplicateTable(list) {
      return h(
        "table",
        { class: "kb-table" },
        h("thead", {}, h("tr", {}, ["FAQ", "FAQ", "Similarity"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, list.map((d) => h("tr", {}, h("td", {}, faqLink(d.faq_id), h("br"), d.question), h("td", {}, faqLink(d.other_faq_id), h("br"), d.other_question), h("td", { text: pct(d.score) })))),
      );
    }
    api("GET", "/api/kb/health?limit=1000")
      .then((data) => {
        const c = data.counts;
        document.getElementById("health-summary").textContent =
          `${c.review_overdue} overdue for review, ${c.never_matched} never given as an answer, ${c.near_duplicates} near-duplicate pairs, ${c.conflicts} wording conflicts, ${c.few_variants} FAQs with fewer than ${data.advised_variants} question variants.` +
          (data.similarity_error ? ` Similarity checks unavailable: ${data.similarity_error}` : "");
        document.getElementById("health-overdue").replaceChildren(collapsible(data.review_overdue, issueTable, "Every FAQ is within its review date."));
        document.getElementById("health-never").replaceChildren(collapsible(data.never_matched, issueTable, "Every published FAQ has answered someone."));
        document.getElementById("health-duplicates").replaceChildren(collapsible(data.near_duplicates, duplicateTable, "No two FAQs ask the same question."));
        document.getElementById("health-few-variants").replaceChildren(collapsible(data.few_variants, issueTable, data.advised_variants ? `Every published FAQ has ${data.advised_variants} or more question variants.` : "The check is off (ASKAGENCY_ADVISED_VARIANTS=0)."));
        document.getElementById("health-conflicts").replaceChildren(collapsible(data.conflicts, (list) => conflictTable(list, ""), "No conflicts."));
      })
      .catch((err) => {
        document.getElementById("health-summary").textContent = err.message;
      });
  }

  // ------------------------------------------------------------------ import
  function initImport() {
    const form = document.getElementById("import-form");
    if (!form) return;
    const out = document.getElementById("import-preview");

    function query(file, sha) {
      const params = new URLSearchParams({
        format: document.getElementById("import-format").value,
        mode: document.getElementById("import-mode").value,
        publish: document.getElementById("import-publish").checked ? "true" : "false",
        filename: file.name,
      });
      if (sha) params.set("sha256", sha);
      return params;
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = document.getElementById("import-file").files[0];
      if (!file) return;
      out.replaceChildren(h("p", { class: "muted", text: "Checking the file…" }));
      const data = await file.arrayBuffer();
      let preview;
      try {
        preview = await api("POST", `/api/kb/import/preview?${query(file)}`, undefined, data);
      } catch (err) {
        out.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
        return;
      }
      const c = preview.counts;
      const parts = [
        h("p", { id: "import-counts" }, h("strong", { text: `${c.create} to create, ${c.update} to update, ${c.unchanged} unchanged` }), `, ${c.errors} problem${c.errors === 1 ? "" : "s"} (${preview.format.toUpperCase()}).`),
      ];
      if (preview.errors.length) {
        parts.push(
          h("p", { class: "error", role: "alert", text: "Fix these problems and preview again; nothing has been written." }),
          h(
            "table",
            { class: "kb-table", id: "import-errors" },
            h("thead", {}, h("tr", {}, ["Line", "Field", "Problem"].map((t) => h("th", { scope: "col", text: t })))),
            h("tbody", {}, preview.errors.map((e) => h("tr", {}, h("td", { text: e.line || "file" }), h("td", { text: e.field || "" }), h("td", { text: e.reason })))),
          ),
        );
      }
      const changes = preview.rows.filter((r) => r.action !== "unchanged");
      if (changes.length) {
        parts.push(
          h(
            "details",
            {},
            h("summary", { text: `Rows that change (${changes.length})` }),
            h("ul", {}, changes.slice(0, 500).map((r) => h("li", { text: `line ${r.line}: ${r.action} ${r.id}` }))),
          ),
        );
      }
      if (preview.can_commit) {
        const go = h("button", { type: "button", class: "primary", id: "import-commit", text: `Import ${c.create + c.update} change${c.create + c.update === 1 ? "" : "s"}` });
        go.addEventListener("click", async () => {
          go.disabled = true;
          try {
            const result = await api("POST", `/api/kb/import/commit?${query(file, preview.sha256)}`, undefined, data);
            out.replaceChildren(h("p", { class: "kb-message ok", role: "status", text: `Imported: ${result.created} created, ${result.updated} updated, ${result.unchanged} unchanged.${indexText(result.index)}` }));
          } catch (err) {
            out.append(h("p", { class: "error", role: "alert", text: err.message }));
            go.disabled = false;
          }
        });
        parts.push(go);
      }
      out.replaceChildren(...parts);
    });
  }

  // ------------------------------------------------------------------ locations
  function initLocations() {
    const message = document.getElementById("locations-message");
    showFlash(message);
    const form = document.getElementById("location-form");
    if (!form) return; // viewers: the table and the export only
    const table = document.getElementById("locations-table");
    const code = document.getElementById("location-code");
    const name = document.getElementById("location-name");
    const aliases = document.getElementById("location-aliases");
    const active = document.getElementById("location-active");

    // After a change the page reloads at the top, where the message is.
    function reloadWith(text) {
      flash(text, "ok");
      history.scrollRestoration = "manual";
      location.reload();
    }

    function clearErrors() {
      form.querySelectorAll(".field-error").forEach((p) => (p.textContent = ""));
      form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    }

    function fieldError(field, reason) {
      const slot = form.querySelector(`[data-error-for="${field}"]`);
      const input = form.querySelector(`[name="${field}"]`);
      if (!slot) return false;
      slot.textContent = reason;
      if (input) input.setAttribute("aria-invalid", "true");
      return true;
    }

    function rowOf(value) {
      return [...table.querySelectorAll("tbody tr[data-code]")].find((tr) => tr.dataset.code === value);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors();
      const value = code.value.trim().toUpperCase();
      if (!value) {
        fieldError("code", "Enter a code, for example DEN.");
        code.focus();
        return;
      }
      const existed = Boolean(rowOf(value));
      const body = {
        name: name.value,
        aliases: aliases.value.split(/[\n,]/).map((a) => a.trim()).filter(Boolean),
        active: active.checked,
      };
      const save = document.getElementById("location-save");
      save.disabled = true;
      say(message, "Saving…");
      try {
        const saved = await api("PUT", `/api/kb/locations/${encodeURIComponent(value)}`, body);
        reloadWith(`${existed ? "Saved" : "Added"} ${saved.code} (${saved.name}).`);
      } catch (err) {
        const rest = [];
        for (const item of Array.isArray(err.details) ? err.details : []) {
          const field = String(item.field || "").split(".")[0];
          if (!fieldError(field, item.reason)) rest.push(`${item.field}: ${item.reason}`);
        }
        say(message, err.message + (rest.length ? ": " + rest.join("; ") : ""), "error");
        const first = form.querySelector('[aria-invalid="true"]');
        if (first) first.focus();
        save.disabled = false;
      }
    });

    form.addEventListener("reset", () => {
      clearErrors();
      say(message, "");
    });

    table.addEventListener("click", async (event) => {
      const btn = event.target.closest("button");
      const row = btn && btn.closest("tr[data-code]");
      if (!row) return;
      const value = row.dataset.code;
      if (btn.classList.contains("location-edit")) {
        clearErrors();
        code.value = value;
        name.value = row.dataset.name;
        aliases.value = row.dataset.aliases;
        active.checked = row.dataset.active === "true";
        say(message, `Editing ${value}: change the fields below and save.`);
        name.focus();
        return;
      }
      if (btn.classList.contains("location-delete")) {
        if (!window.confirm(`Delete location ${value}? Past conversations keep the code in reports.`)) return;
        btn.disabled = true;
        try {
          await api("DELETE", `/api/kb/locations/${encodeURIComponent(value)}`);
          reloadWith(`Deleted ${value}.`);
        } catch (err) {
          say(message, err.message, "error");
          btn.disabled = false;
        }
      }
    });

    const importForm = document.getElementById("locations-import-form");
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = document.getElementById("locations-file").files[0];
      if (!file) return;
      say(message, `Importing ${file.name}…`);
      try {
        const result = await api("POST", "/api/kb/locations/import", undefined, await file.arrayBuffer());
        reloadWith(`Imported ${result.imported} location${result.imported === 1 ? "" : "s"} from ${file.name}: ${result.created} new, ${result.updated} replaced.`);
      } catch (err) {
        say(message, err.message, "error");
      }
    });
  }

  const pages = { edit: initEditor, history: initHistory, try: initTry, unanswered: initUnanswered, health: initHealth, import: initImport, locations: initLocations };
  if (pages[page]) pages[page]();
  if (page === "list") showFlash(document.getElementById("kb-flash"));
})();
