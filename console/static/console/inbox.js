/* AskAgency agent inbox: ticket list and ticket view, driven by the JSON API.
 *
 * Rules kept throughout: all text goes through textContent (citizen text is never HTML),
 * every state-changing request carries the page's CSRF token, and the page keeps working
 * (with a visible error) when a request fails.
 */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var HEARTBEAT_MS = 30000;
  var LIST_REFRESH_MS = 5000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function api(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers["X-CSRF-Token"] = CSRF;
    return fetch(url, options).then(parseResponse);
  }

  /** Posts a multipart form (a file); the browser sets the Content-Type with its boundary. */
  function upload(url, form) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": CSRF },
      body: form,
    }).then(parseResponse);
  }

  function parseResponse(resp) {
    return resp.text().then(function (text) {
      var data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
      if (!resp.ok) {
        var message = (data && data.error) || "HTTP " + resp.status;
        var error = new Error(message);
        error.status = resp.status;
        throw error;
      }
      return data;
    });
  }

  function fileSize(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  /** A message's photos (thumbnail linking to the full size, plus a download link) and PDFs
   * (a download link with an icon). URLs come from the server; names go through textContent. */
  function renderAttachments(container, files, from) {
    container.textContent = "";
    (files || []).forEach(function (f) {
      if (f.kind === "image" && f.thumbnail_url) {
        var figure = el("figure", "attachment image");
        var open = el("a");
        open.href = f.url;
        open.target = "_blank";
        open.rel = "noopener";
        var img = el("img");
        img.src = f.thumbnail_url;
        img.alt = "Photo from " + from + ": " + f.name + " (opens full size)";
        img.loading = "lazy";
        open.appendChild(img);
        figure.appendChild(open);
        var caption = el("figcaption");
        var save = el("a", null, "Download " + f.name);
        save.href = f.download_url;
        caption.appendChild(save);
        caption.appendChild(el("span", "muted", " (" + fileSize(f.size_bytes) + ")"));
        figure.appendChild(caption);
        container.appendChild(figure);
      } else {
        var link = el("a", "attachment file");
        link.href = f.download_url;
        var icon = el("span", "file-icon", "PDF");
        icon.setAttribute("aria-hidden", "true");
        link.appendChild(icon);
        link.appendChild(el("span", null, f.name + " (" + fileSize(f.size_bytes) + ", download)"));
        container.appendChild(link);
      }
    });
    container.hidden = !(files && files.length);
  }

  function showError(node, error) {
    if (!node) return;
    if (error) {
      node.textContent = error.message || String(error);
      node.hidden = false;
    } else {
      node.textContent = "";
      node.hidden = true;
    }
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " days";
  }

  function when(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    return isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  function label(value) {
    return String(value || "").replace(/_/g, " ");
  }

  function heartbeat(onlineNode) {
    function beat() {
      api("POST", "/api/agents/heartbeat", {}).then(function (data) {
        if (onlineNode && data) onlineNode.textContent = String(data.agents_online);
      }).catch(function () { /* the next beat retries */ });
    }
    beat();
    return window.setInterval(beat, HEARTBEAT_MS);
  }

  // ------------------------------------------------------------------ new-ticket alerts
  // A browser notification (with the agent's permission) and, if chosen, a short sound when a
  // ticket opens while the inbox is open; the tab's title counts them while the tab is hidden.
  // Choices are kept in this browser (localStorage), per agent.
  var ALERTS_KEY = "askagency.inbox.alerts";

  function Alerts(button, sound, status) {
    var saved = {};
    try { saved = JSON.parse(window.localStorage.getItem(ALERTS_KEY) || "{}") || {}; } catch (e) { saved = {}; }
    var supported = typeof window.Notification === "function";
    var notify = !!saved.notify && supported && window.Notification.permission === "granted";
    var unseen = 0;
    var baseTitle = document.title;
    var audio = null;

    function save() {
      try {
        window.localStorage.setItem(ALERTS_KEY, JSON.stringify({ notify: notify, sound: sound.checked }));
      } catch (e) { /* private mode: the choice lasts for this page */ }
    }

    function show() {
      button.setAttribute("aria-pressed", notify ? "true" : "false");
      button.textContent = notify ? "Notifications on (turn off)" : "Notify me of new tickets";
    }

    function beep() {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = audio || new Context();
      [880, 660].forEach(function (frequency, i) {
        var tone = audio.createOscillator();
        var gain = audio.createGain();
        tone.frequency.value = frequency;
        gain.gain.value = 0.08;
        tone.connect(gain);
        gain.connect(audio.destination);
        var start = audio.currentTime + i * 0.18;
        tone.start(start);
        tone.stop(start + 0.15);
      });
    }

    button.hidden = !supported;
    sound.checked = !!saved.sound;
    show();
    button.addEventListener("click", function () {
      if (notify) {
        notify = false;
        save();
        show();
        status.textContent = "";
        return;
      }
      window.Notification.requestPermission().then(function (permission) {
        notify = permission === "granted";
        status.textContent = notify ? "" : "This browser blocks notifications from the console: allow them in the site settings.";
        save();
        show();
      });
    });
    sound.addEventListener("change", function () {
      save();
      if (sound.checked) beep(); // the click is the gesture browsers require before audio
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        unseen = 0;
        document.title = baseTitle;
      }
    });

    /** Tells the agent about tickets that opened since the last refresh. */
    this.announce = function (tickets) {
      if (!tickets.length) return;
      if (document.hidden) {
        unseen += tickets.length;
        document.title = "(" + unseen + ") " + baseTitle;
      }
      if (sound.checked) beep();
      if (!notify) return;
      tickets.forEach(function (t) {
        var title = "New ticket #" + t.id + (t.priority === "high" ? " (high priority)" : "");
        var body = label(t.reason) + " · " + t.language + " · " + (t.channel || "?");
        if (t.trigger_text) body += "\n" + String(t.trigger_text).slice(0, 120);
        var note = new window.Notification(title, { body: body, tag: "askagency-ticket-" + t.id });
        note.onclick = function () {
          window.focus();
          window.location.href = "/console/inbox/" + encodeURIComponent(t.id);
        };
      });
    };
  }

  // ------------------------------------------------------------------ inbox list
  var PAGE = 50; // tickets per "Load more"; the server returns at most PAGE_MAX per request
  var PAGE_MAX = 500;

  function initInbox(root) {
    var rows = document.getElementById("ticket-rows");
    var online = document.getElementById("agents-online");
    var refreshed = document.getElementById("refreshed");
    var errorNode = document.getElementById("inbox-error");
    var moreButton = document.getElementById("load-more");
    var countNode = document.getElementById("ticket-count");
    var spamButton = document.getElementById("close-spam");
    var which = "open";
    var shown = PAGE;
    var selected = {}; // ticket id -> true, kept across refreshes
    var COLUMNS = 10;
    var newestSeen = null; // the highest open ticket id listed so far (ids only grow); null:
    // nothing listed yet, so the first list announces nothing (those tickets were already there)
    var alerts = new Alerts(
      document.getElementById("notify-toggle"),
      document.getElementById("sound-toggle"),
      document.getElementById("notify-status")
    );

    function announceNew(tickets) {
      var newest = newestSeen === null ? 0 : newestSeen;
      tickets.forEach(function (t) { if (t.id > newest) newest = t.id; });
      if (newestSeen !== null) {
        alerts.announce(tickets.filter(function (t) { return t.id > newestSeen; }));
      }
      newestSeen = newest;
    }

    function selectedIds() {
      return Object.keys(selected).map(Number);
    }

    function updateSpamButton() {
      var count = selectedIds().length;
      spamButton.disabled = count === 0 || which !== "open";
      spamButton.textContent = count ? "Close " + count + " as spam" : "Close selected as spam";
    }

    function render(data) {
      var myLanguages = (data.me && data.me.languages) || [];
      var present = {};
      rows.textContent = "";
      if (!data.tickets.length) {
        var empty = el("tr");
        var cell = el("td", "muted", which === "open" ? "No open tickets. " : "No closed tickets yet.");
        cell.colSpan = COLUMNS;
        empty.appendChild(cell);
        rows.appendChild(empty);
      }
      data.tickets.forEach(function (t) {
        present[t.id] = true;
        var tr = el("tr");
        tr.setAttribute("data-ticket-id", String(t.id));
        if (t.priority === "high") tr.classList.add("high");
        if (myLanguages.length && myLanguages.indexOf(t.language) < 0) tr.classList.add("other-language");
        var pick = el("td");
        if (which === "open") {
          var box = el("input");
          box.type = "checkbox";
          box.className = "pick";
          box.setAttribute("aria-label", "Select ticket #" + t.id);
          box.checked = !!selected[t.id];
          box.addEventListener("change", function () {
            if (box.checked) selected[t.id] = true; else delete selected[t.id];
            updateSpamButton();
          });
          pick.appendChild(box);
        }
        tr.appendChild(pick);
        var link = el("a", null, "#" + t.id);
        link.href = "/console/inbox/" + encodeURIComponent(t.id);
        var first = el("td");
        first.appendChild(link);
        tr.appendChild(first);
        var priority = el("td");
        priority.appendChild(el("span", "badge" + (t.priority === "high" ? " danger" : ""), t.priority));
        tr.appendChild(priority);
        tr.appendChild(el("td", null, label(t.reason)));
        tr.appendChild(el("td", null, t.language));
        tr.appendChild(el("td", null, t.channel || "?"));
        var wait = el("td", null, duration(t.wait_seconds));
        if (t.after_hours && t.expected_reply_at) wait.title = "Citizen told: reply by " + when(t.expected_reply_at);
        tr.appendChild(wait);
        var status = el("td");
        status.appendChild(el("span", "badge" + (t.status === "waiting" ? " warn" : ""), label(t.status)));
        if (t.pending_replies) status.appendChild(el("span", "badge warn", t.pending_replies + " pending"));
        tr.appendChild(status);
        tr.appendChild(el("td", null, t.assigned_agent ? t.assigned_agent.name : "—"));
        tr.appendChild(el("td", null, (t.trigger_text || "").slice(0, 120)));
        rows.appendChild(tr);
      });
      // A ticket that left the list (closed elsewhere, or beyond the page) is deselected.
      selectedIds().forEach(function (id) { if (!present[id]) delete selected[id]; });
      updateSpamButton();
      countNode.textContent = "Showing " + data.tickets.length + " of " + data.total;
      var more = data.total - data.tickets.length;
      moreButton.hidden = !(more > 0 && shown < PAGE_MAX);
      moreButton.textContent = "Load more (" + more + " not shown)";
      online.textContent = String(data.agents_online);
      refreshed.textContent = "Updated " + new Date().toLocaleTimeString();
    }

    function load() {
      var asked = which;
      api("GET", "/api/tickets?status=" + which + "&limit=" + shown).then(function (data) {
        showError(errorNode, null);
        render(data);
        if (asked === "open" && which === "open") announceNew(data.tickets);
      }).catch(function (error) { showError(errorNode, error); });
    }

    moreButton.addEventListener("click", function () {
      shown = Math.min(PAGE_MAX, shown + PAGE);
      load();
    });

    spamButton.addEventListener("click", function () {
      var ids = selectedIds();
      if (!ids.length) return;
      var question = "Close " + ids.length + " ticket(s) as spam? Nothing is sent to the citizens.";
      if (!window.confirm(question)) return;
      spamButton.disabled = true;
      api("POST", "/api/tickets/close-spam", { ticket_ids: ids }).then(function () {
        selected = {};
        showError(errorNode, null);
        load();
      }).catch(function (error) {
        showError(errorNode, error);
        updateSpamButton();
      });
    });

    Array.prototype.forEach.call(root.querySelectorAll('input[name="which"]'), function (radio) {
      radio.addEventListener("change", function () {
        which = radio.value;
        shown = PAGE;
        selected = {};
        load();
      });
    });
    load();
    window.setInterval(load, LIST_REFRESH_MS);
    heartbeat(online);
  }

  // ------------------------------------------------------------------ one ticket
  function initTicket(root) {
    var ticketId = root.getAttribute("data-ticket-id");
    var meId = Number(root.getAttribute("data-me"));
    var base = "/api/tickets/" + encodeURIComponent(ticketId);
    var transcript = document.getElementById("transcript");
    var errorNode = document.getElementById("ticket-error");
    var replyText = document.getElementById("reply-text");
    var replyStatus = document.getElementById("reply-status");
    var replyFile = document.getElementById("reply-file");
    var filePreview = document.getElementById("reply-file-preview");
    var fileThumb = document.getElementById("reply-file-thumb");
    var fileName = document.getElementById("reply-file-name");
    var fileError = document.getElementById("reply-file-error");
    var uploadRules = null; // {accept, max_bytes} from the ticket detail
    var ticket = null;
    var messageNodes = {};
    var lastMessageId = 0;
    var source = null;

    function setClosed(closed) {
      Array.prototype.forEach.call(
        root.querySelectorAll("#reply-form button, #reply-text, #reply-file, #assign-me, #transfer, #transfer-to, #close-resolved, #close-unresolved"),
        function (node) { node.disabled = closed; }
      );
    }

    /* The e-mail address or phone number the citizen left for a reply: citizen input, so the
     * text goes through textContent and the link is the server's mailto:/tel: URL only. */
    function renderContact(t) {
      var box = document.getElementById("ticket-contact");
      var link = document.getElementById("ticket-contact-link");
      var url = String(t.contact_url || "");
      if (!t.contact || !/^(mailto|tel):/.test(url)) {
        box.hidden = true;
        link.removeAttribute("href");
        link.textContent = "";
        return;
      }
      link.href = url;
      link.textContent = String(t.contact);
      box.hidden = false;
    }

    /* The knowledge base's out-of-scope entry that took the citizen's question, and the note the
     * agency wrote for staff on it (staff text, still shown through textContent only). */
    function renderOutOfScope(t, note) {
      var box = document.getElementById("ticket-out-of-scope");
      var link = document.getElementById("ticket-out-of-scope-entry");
      var noteText = document.getElementById("ticket-out-of-scope-note");
      if (!t.out_of_scope_entry) {
        box.hidden = true;
        return;
      }
      link.textContent = String(t.out_of_scope_entry);
      link.href = "/console/kb/faq/" + encodeURIComponent(String(t.out_of_scope_entry));
      noteText.textContent = note ? ". Note for staff: " + String(note) : ".";
      box.hidden = false;
    }

    function renderTicket(detail) {
      ticket = detail.ticket;
      if (detail.uploads) {
        uploadRules = detail.uploads;
        replyFile.accept = uploadRules.accept.join(",");
      }
      document.getElementById("ticket-status").textContent = label(ticket.status);
      var priority = document.getElementById("ticket-priority");
      priority.textContent = ticket.priority + " priority";
      priority.className = "badge" + (ticket.priority === "high" ? " danger" : "");
      var facts = "Reason: " + label(ticket.reason) + " · language " + ticket.language +
        " · channel " + (ticket.channel || "?") + " · opened " + when(ticket.created_at);
      if (ticket.first_response_seconds !== null) facts += " · first reply after " + duration(ticket.first_response_seconds);
      if (ticket.after_hours && ticket.expected_reply_at) facts += " · citizen told to expect a reply by " + when(ticket.expected_reply_at);
      document.getElementById("ticket-facts").textContent = facts;
      renderContact(ticket);
      renderOutOfScope(ticket, detail.out_of_scope_note);
      document.getElementById("assignee").textContent = ticket.assigned_agent
        ? "Assigned to " + ticket.assigned_agent.name : "Waiting for an agent";
      var select = document.getElementById("transfer-to");
      select.textContent = "";
      detail.agents.forEach(function (agent) {
        var option = el("option", null, agent.name + " (" + agent.languages.join(", ") + ")");
        option.value = String(agent.id);
        select.appendChild(option);
      });
      var notes = document.getElementById("notes");
      notes.textContent = "";
      detail.notes.forEach(function (note) {
        notes.appendChild(el("li", null, note.author + ": " + note.text));
      });
      setClosed(ticket.status.indexOf("closed") === 0);
    }

    function deliveryText(m) {
      if (m.direction === "citizen" || !m.delivery_status) return "";
      if (m.delivery_status === "delivered") return m.kind === "close" ? "" : "delivered";
      if (m.delivery_status === "failed") return "not delivered: " + (m.last_error || "");
      return m.attempts ? "pending (retrying: " + (m.last_error || "") + ")" : "pending";
    }

    function upsertMessage(m) {
      var node = messageNodes[m.id];
      if (!node) {
        var kind = m.direction === "system" ? "system" : m.direction;
        node = el("li", kind);
        node.setAttribute("data-message-id", String(m.id));
        node.appendChild(el("span", "who"));
        node.appendChild(el("span", "text"));
        var files = el("div", "files");
        files.hidden = true;
        node.appendChild(files);
        node.appendChild(el("span", "delivery"));
        transcript.appendChild(node);
        messageNodes[m.id] = node;
      }
      var who = m.direction === "citizen" ? "Citizen" : m.author;
      node.querySelector(".who").textContent = who + " · " + when(m.created_at);
      var text = m.kind === "close" ? "Closed as " + m.text + "; the assistant took over again." : m.text;
      node.querySelector(".text").textContent = text;
      var filesNode = node.querySelector(".files");
      // A message's files never change: render them the first time a payload lists them.
      var fileIds = (m.attachments || []).map(function (f) { return f.id; }).join(" ");
      if (fileIds && filesNode.getAttribute("data-files") !== fileIds) {
        filesNode.setAttribute("data-files", fileIds);
        renderAttachments(filesNode, m.attachments, who);
      }
      var delivery = node.querySelector(".delivery");
      delivery.textContent = deliveryText(m);
      delivery.className = "delivery " + (m.delivery_status || "");
      node.setAttribute("data-delivery", m.delivery_status || "");
      if (m.delivery_status === "failed") {
        var retry = el("button", null, "Retry");
        retry.type = "button";
        retry.addEventListener("click", function () {
          api("POST", base + "/messages/" + m.id + "/retry", {}).then(upsertMessage)
            .catch(function (error) { showError(errorNode, error); });
        });
        delivery.appendChild(retry);
      }
      if (m.id > lastMessageId) lastMessageId = m.id;
      transcript.scrollTop = transcript.scrollHeight;
    }

    function renderHistory(messages, createdAt) {
      var cutoff = new Date(createdAt).getTime() / 1000;
      messages.forEach(function (m) {
        if (m.timestamp && m.timestamp > cutoff) return; // the ticket's own messages follow
        var item = el("li", m.role === "citizen" ? "citizen" : m.role);
        item.appendChild(el("span", "who", (m.role === "citizen" ? "Citizen" : m.role === "agent" ? "Agent" : "Assistant")));
        item.appendChild(el("span", "text", m.text));
        transcript.appendChild(item);
      });
      transcript.appendChild(el("li", "system", "Handed to a person (" + label(ticket.reason) + ")"));
    }

    function loadAll() {
      return api("GET", base).then(function (detail) {
        renderTicket(detail);
        transcript.textContent = "";
        messageNodes = {};
        return api("GET", base + "/transcript").then(function (t) {
          renderHistory(t.messages, detail.ticket.created_at);
        }).catch(function (error) {
          transcript.appendChild(el("li", "system", "Earlier conversation unavailable: " + error.message));
        }).then(function () {
          detail.messages.forEach(upsertMessage);
          stream();
        });
      }).catch(function (error) { showError(errorNode, error); });
    }

    function stream() {
      if (!window.EventSource) return;
      if (source) source.close();
      source = new EventSource(base + "/events?after=" + lastMessageId);
      source.addEventListener("message", function (event) {
        try { upsertMessage(JSON.parse(event.data)); } catch (e) { /* ignore a bad frame */ }
      });
      source.addEventListener("ticket", function () {
        api("GET", base).then(renderTicket).catch(function (error) { showError(errorNode, error); });
      });
    }

    function act(method, url, body, then) {
      showError(errorNode, null);
      return api(method, url, body).then(then).catch(function (error) { showError(errorNode, error); });
    }

    // The file to send with the reply: checked here for type and size (the server checks again
    // and has the last word), previewed, removable.
    function chosenFile() {
      return replyFile.files && replyFile.files.length ? replyFile.files[0] : null;
    }

    function clearFile() {
      replyFile.value = "";
      filePreview.hidden = true;
      fileThumb.hidden = true;
      fileThumb.removeAttribute("src");
      fileName.textContent = "";
    }

    replyFile.addEventListener("change", function () {
      showError(fileError, null);
      var file = chosenFile();
      if (!file) { clearFile(); return; }
      var accepted = uploadRules ? uploadRules.accept : [];
      if (file.type && accepted.length && accepted.indexOf(file.type) < 0) {
        clearFile();
        showError(fileError, new Error("“" + file.name + "” cannot be sent: only photos (JPEG, PNG, WebP, HEIC) and PDF documents."));
        return;
      }
      if (uploadRules && file.size > uploadRules.max_bytes) {
        clearFile();
        showError(fileError, new Error("“" + file.name + "” is too large (" + fileSize(file.size) + "; at most " + fileSize(uploadRules.max_bytes) + ")."));
        return;
      }
      fileName.textContent = file.name + " (" + fileSize(file.size) + ")";
      fileThumb.hidden = true;
      if (/^image\/(jpeg|png|webp)$/.test(file.type)) {
        // A data: URL: the console's CSP allows data: images, not blob: ones.
        var reader = new FileReader();
        reader.onload = function () {
          if (chosenFile() !== file) return; // another file was chosen meanwhile
          fileThumb.src = String(reader.result);
          fileThumb.alt = "Preview of " + file.name;
          fileThumb.hidden = false;
        };
        reader.readAsDataURL(file);
      }
      filePreview.hidden = false;
    });
    document.getElementById("reply-file-remove").addEventListener("click", function () {
      clearFile();
      showError(fileError, null);
      replyFile.focus();
    });

    document.getElementById("reply-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = replyText.value.trim();
      var file = chosenFile();
      if (!text && !file) {
        replyStatus.textContent = "Write a reply or attach a file.";
        replyText.focus();
        return;
      }
      replyStatus.textContent = "Sending…";
      showError(fileError, null);
      var sent = function (message) {
        replyText.value = "";
        clearFile();
        replyStatus.textContent = "Queued for delivery.";
        upsertMessage(message);
        api("GET", base).then(renderTicket);
      };
      var request;
      if (file) {
        var form = new FormData();
        form.append("file", file, file.name);
        form.append("text", text);
        request = upload(base + "/attachments", form).then(sent).catch(function (error) {
          // The typed text and the chosen file stay, for another try.
          showError(fileError, new Error("The file was not sent: " + error.message));
        });
      } else {
        request = act("POST", base + "/replies", { text: text }, sent);
      }
      request.then(function () { if (replyStatus.textContent === "Sending…") replyStatus.textContent = ""; });
    });
    document.getElementById("assign-me").addEventListener("click", function () {
      act("POST", base + "/assign", { agent_id: meId }, renderTicket);
    });
    document.getElementById("transfer").addEventListener("click", function () {
      var target = Number(document.getElementById("transfer-to").value);
      act("POST", base + "/assign", { agent_id: target }, renderTicket);
    });
    document.getElementById("close-resolved").addEventListener("click", function () {
      act("POST", base + "/close", { resolved: true }, renderTicket);
    });
    document.getElementById("close-unresolved").addEventListener("click", function () {
      act("POST", base + "/close", { resolved: false }, renderTicket);
    });
    document.getElementById("note-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var noteText = document.getElementById("note-text");
      if (!noteText.value.trim()) return;
      act("POST", base + "/notes", { text: noteText.value }, function () {
        noteText.value = "";
        api("GET", base).then(renderTicket);
      });
    });

    // Canned replies: search as you type, debounced; a click copies the answer into the box.
    var cannedInput = document.getElementById("canned-q");
    var cannedList = document.getElementById("canned-results");
    var cannedTimer = null;
    var cannedSeq = 0;
    cannedInput.addEventListener("input", function () {
      window.clearTimeout(cannedTimer);
      cannedTimer = window.setTimeout(function () {
        var seq = ++cannedSeq;
        var q = cannedInput.value.trim();
        if (!q) { cannedList.textContent = ""; return; }
        var url = "/api/canned-replies?q=" + encodeURIComponent(q) +
          (ticket ? "&language=" + encodeURIComponent(ticket.language) : "");
        api("GET", url).then(function (data) {
          if (seq !== cannedSeq) return; // a newer search is under way
          cannedList.textContent = "";
          if (!data.results.length) cannedList.appendChild(el("li", "muted", "No FAQ matches."));
          data.results.forEach(function (r) {
            var item = el("li");
            var button = el("button", null, r.question);
            button.type = "button";
            button.addEventListener("click", function () {
              replyText.value = r.answer + (r.source_url ? "\n" + r.source_url : "");
              replyText.focus();
            });
            item.appendChild(button);
            cannedList.appendChild(item);
          });
        }).catch(function (error) { showError(errorNode, error); });
      }, 200);
    });

    loadAll();
    heartbeat(null);
  }

  var inbox = document.getElementById("inbox");
  if (inbox) initInbox(inbox);
  var one = document.getElementById("ticket");
  if (one) initTicket(one);
})();
