/*
 * Discussion pages, live (see docs/live.md): the thread page follows "thread:<id>", feeds and the
 * neighborhood panel follow "neighborhood:<slug>" (named by data-live-topic attributes, which
 * alerts/live.js subscribes to). Events arrive as the "engagement:live" DOM event; alert.* events
 * on the same topic belong to alerts.js and are ignored here.
 *
 * Also: suggestions of similar discussions while composing, and the pin map of a thread.
 *
 * Server HTML (body_html) is sanitised before it is sent; everything else goes in as text.
 */
(function () {
  "use strict";

  if (window.engagementForums) return;
  window.engagementForums = { version: 1 };

  /* ---------- helpers ---------- */

  function announce(text) {
    var region = document.getElementById("live-announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function plural(n, one, many) {
    return n === 1 ? one : many;
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /* A form posting to ``action`` (with the CSRF token and ``extra`` hidden fields) and one button. */
  function postForm(action, buttonText, hiddenLabel, extra) {
    var form = el("form");
    form.method = "post";
    form.action = action;
    var token = el("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    form.appendChild(token);
    Object.keys(extra || {}).forEach(function (name) {
      var input = el("input");
      input.type = "hidden";
      input.name = name;
      input.value = extra[name];
      form.appendChild(input);
    });
    var button = el("button", "small secondary", buttonText);
    button.type = "submit";
    if (hiddenLabel) button.appendChild(el("span", "visually-hidden", hiddenLabel));
    form.appendChild(button);
    return form;
  }

  /* The support toggle, as in the templates: reads "✓ Supported" once pressed. */
  function voteForm(action, hiddenLabel, extra) {
    var form = postForm(action, "", "", extra);
    var button = form.querySelector("button");
    button.classList.add("vote");
    button.setAttribute("aria-pressed", "false");
    button.title = "Support this";
    var off = el("span", "vote-off", "Support");
    if (hiddenLabel) off.appendChild(el("span", "visually-hidden", hiddenLabel));
    button.appendChild(off);
    var on = el("span", "vote-on", "✓ Supported");
    on.setAttribute("aria-hidden", "true");
    button.appendChild(on);
    return form;
  }

  function time(iso, text) {
    var node = el("time", null, text);
    node.setAttribute("datetime", iso || "");
    return node;
  }

  function setCount(scope, selector, value) {
    var nodes = scope.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = String(value);
      var label = nodes[i].nextElementSibling;
      if (label && label.classList.contains("count-label")) {
        label.textContent = plural(value, "supporter", "supporters");
      }
    }
  }

  function topicsOf(node) {
    return (node.getAttribute("data-live-topic") || "").split(/\s+/);
  }

  /* ---------- the thread page ---------- */

  var page = document.querySelector("[data-thread-page]");

  function threadNotice(parts) {
    var notice = page.querySelector("[data-thread-notice]");
    if (!notice) return;
    notice.textContent = "";
    parts.forEach(function (part) {
      if (typeof part === "string") notice.appendChild(document.createTextNode(part));
      else notice.appendChild(part);
    });
    notice.hidden = false;
  }

  function link(href, text) {
    var a = el("a", null, text);
    a.href = href;
    return a;
  }

  function placeholder(reply) {
    var li = el("li", "reply state-" + reply.state);
    li.id = "reply-" + reply.id;
    li.setAttribute("data-reply-id", String(reply.id));
    li.tabIndex = -1;
    li.appendChild(el("p", "placeholder", reply.state === "deleted"
      ? "This reply was deleted."
      : "This reply is hidden pending review by a moderator."));
    return li;
  }

  /* The same markup as forums/includes/reply.html, with the controls anyone allowed has. */
  function replyNode(reply) {
    if (reply.state !== "visible") return placeholder(reply);
    var li = el("li", "reply state-visible" + (reply.is_official ? " is-official" : ""));
    li.id = "reply-" + reply.id;
    li.setAttribute("data-reply-id", String(reply.id));
    li.tabIndex = -1;
    var article = el("article");
    article.setAttribute("aria-label", "Reply by " + reply.author);
    var head = el("p", "reply-head");
    head.appendChild(el("strong", "author", reply.author));
    if (reply.is_official) {
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("span", "badge official", "Official"));
      if (reply.department) {
        head.appendChild(document.createTextNode(" "));
        head.appendChild(el("span", "department", reply.department));
      }
    }
    head.appendChild(document.createTextNode(" "));
    var anchor = link("#reply-" + reply.id, "");
    anchor.className = "small";
    anchor.appendChild(time(reply.created_at, "just now"));
    head.appendChild(anchor);
    article.appendChild(head);
    if (reply.quote) {
      var quote = el("blockquote", "quote");
      var who = el("p");
      if (reply.quote.author) {
        who.appendChild(link(reply.quote.url, reply.quote.author + " wrote"));
        who.appendChild(document.createTextNode(":"));
        quote.appendChild(who);
        quote.appendChild(el("p", null, reply.quote.excerpt));
      } else {
        who.appendChild(link(reply.quote.url, "In reply to a reply"));
        who.appendChild(document.createTextNode(" that is no longer shown."));
        quote.appendChild(who);
      }
      article.appendChild(quote);
    }
    var body = el("div", "rich-text");
    body.setAttribute("data-reply-body", "");
    body.innerHTML = reply.body_html; // sanitised by the server
    article.appendChild(body);
    var actions = el("div", "actions");
    var count = el("span", "small");
    var votes = el("span", null, String(reply.vote_count));
    votes.setAttribute("data-reply-votes", "");
    count.appendChild(votes);
    count.appendChild(document.createTextNode(" " + plural(reply.vote_count, "supporter", "supporters")));
    actions.appendChild(count);
    var base = page.getAttribute("data-thread-url");
    if (page.hasAttribute("data-can-vote") && base) {
      actions.appendChild(voteForm(base + "replies/" + reply.id + "/vote/", " this reply by " + reply.author));
    }
    if (page.hasAttribute("data-can-reply")) {
      var quoteLink = link("?quote=" + reply.id + "#reply-form", "Quote");
      quoteLink.className = "small";
      quoteLink.appendChild(el("span", "visually-hidden", " this reply by " + reply.author));
      actions.appendChild(quoteLink);
    }
    if (reply.is_official && page.hasAttribute("data-can-mark-answer") && base) {
      actions.appendChild(postForm(base + "replies/" + reply.id + "/answer/", "Mark as the answer"));
    }
    if (reply.author !== page.getAttribute("data-viewer")) { // nobody flags their own reply
      var flag = flagForm(base + "replies/" + reply.id + "/flag/", reply.id);
      if (flag) actions.appendChild(flag);
    }
    article.appendChild(actions);
    li.appendChild(article);
    return li;
  }

  /* The page's flag form (a <template>), for a reply that arrived live. */
  function flagForm(action, id) {
    var template = page.querySelector("template[data-flag-template]");
    if (!template || !template.content) return null;
    var copy = template.content.firstElementChild.cloneNode(true);
    copy.querySelector("form").action = action;
    var named = copy.querySelectorAll("[id], label[for]");
    for (var i = 0; i < named.length; i++) {
      if (named[i].id) named[i].id = named[i].id.replace(/-new$/, "-" + id);
      var target = named[i].getAttribute("for");
      if (target) named[i].setAttribute("for", target.replace(/-new$/, "-" + id));
    }
    var token = copy.querySelector("input[name=csrfmiddlewaretoken]");
    if (token) token.value = csrfToken();
    return copy;
  }

  function onThreadEvent(message) {
    var data = message.data || {};
    var list = page.querySelector("[data-replies]");
    var existing = data.id != null ? document.getElementById("reply-" + data.id) : null;
    switch (message.type) {
      case "reply.created":
        if (!list || existing) return;
        var node = replyNode(data);
        node.classList.add("is-new");
        list.appendChild(node);
        var empty = page.querySelector("[data-replies-empty]");
        if (empty) empty.hidden = true;
        announce(data.state === "visible" ? "New reply from " + data.author + "." : "A new reply arrived.");
        return;
      case "reply.updated":
      case "reply.removed":
        if (!existing) return;
        if (data.state !== "visible") {
          existing.parentNode.replaceChild(placeholder(data), existing);
          announce(data.state === "deleted" ? "A reply was deleted." : "A reply was hidden pending review.");
        } else if (existing.querySelector("[data-reply-body]") && !existing.querySelector("form textarea")) {
          existing.querySelector("[data-reply-body]").innerHTML = data.body_html; // sanitised
          if (data.edited_at && !existing.querySelector("[data-reply-edited]")) {
            var mark = el("span", "small muted", "· edited");
            mark.setAttribute("data-reply-edited", "");
            existing.querySelector(".reply-head").appendChild(mark);
          }
        } else if (!existing.querySelector("[data-reply-body]")) {
          existing.parentNode.replaceChild(replyNode(data), existing);
          announce("A reply is shown again.");
        }
        return;
      case "thread.counts":
        setCount(page, "[data-thread-votes]", data.vote_count);
        var replies = page.querySelectorAll("[data-thread-replies]");
        for (var i = 0; i < replies.length; i++) replies[i].textContent = String(data.reply_count);
        if (data.reply) {
          var target = document.getElementById("reply-" + data.reply.id);
          var count = target && target.querySelector("[data-reply-votes]");
          if (count) count.textContent = String(data.reply.vote_count);
        }
        return;
      case "thread.updated":
      case "thread.answered":
      case "thread.cosigned":
        if (data.removed) return onThreadRemoved();
        var title = page.querySelector("[data-thread-field=title]");
        if (title && data.title) title.textContent = data.title;
        var locked = page.querySelector("[data-thread-locked]");
        if (locked && typeof data.is_locked === "boolean") locked.hidden = !data.is_locked;
        if (message.type === "thread.answered" && data.answer_id) {
          threadNotice(["City staff marked an official answer. ", link("?#reply-" + data.answer_id, "Read it")]);
          announce("An official answer was marked.");
        } else if (message.type === "thread.cosigned") {
          threadNotice(["An organization co-signed this discussion. ", link(window.location.pathname, "Reload to see who")]);
        }
        return;
      case "thread.removed":
        return onThreadRemoved();
      case "thread.merged":
        threadNotice(["This discussion was merged into another one. ", link(data.url, "Go to the discussion it was merged into")]);
        announce("This discussion was merged into another one.");
        return;
    }
  }

  function onThreadRemoved() {
    threadNotice(["This discussion was removed. It is no longer listed in the neighborhood."]);
    announce("This discussion was removed.");
  }

  /* ---------- feeds and the neighborhood panel ---------- */

  var namesEl = document.getElementById("forum-neighborhood-names");
  var neighborhoodNames = {};
  if (namesEl) {
    try { neighborhoodNames = JSON.parse(namesEl.textContent) || {}; } catch (err) { neighborhoodNames = {}; }
  }

  function matchesFilters(list, thread) {
    var tag = list.getAttribute("data-filter-tag");
    var category = list.getAttribute("data-filter-category");
    if (category && thread.category !== category) return false;
    if (tag && (thread.tags || []).indexOf(tag) === -1) return false;
    return true;
  }

  function feedUrl(slug) {
    return "/neighborhoods/" + encodeURIComponent(slug) + "/discussions/";
  }

  /* The same markup as forums/includes/thread_row.html. */
  function threadRow(list, thread) {
    var li = el("li", "thread-row" + (thread.is_pinned ? " is-pinned" : ""));
    li.id = (list.hasAttribute("data-panel") ? "panel-" : "") + "thread-" + thread.id;
    li.setAttribute("data-thread-id", String(thread.id));
    li.setAttribute("data-hot", String(thread.hot));
    li.setAttribute("data-category", thread.category || "");
    var article = el("article", "thread-card");
    var titleId = (list.hasAttribute("data-panel") ? "panel-" : "") + "thread-" + thread.id + "-title";
    article.setAttribute("aria-labelledby", titleId);
    var support = el("div", "support");
    var count = el("span", "count", String(thread.vote_count));
    count.setAttribute("data-thread-votes", "");
    support.appendChild(count);
    support.appendChild(el("span", "count-label", plural(thread.vote_count, "supporter", "supporters")));
    var voteIn = (list.getAttribute("data-vote-in") || "").split(/\s+/);
    if (!thread.is_locked && voteIn.indexOf(thread.neighborhood) !== -1) {
      var next = window.location.pathname + window.location.search + "#thread-" + thread.id;
      support.appendChild(voteForm(thread.url + "vote/", " “" + thread.title + "”", { next: next }));
    }
    article.appendChild(support);
    var main = el("div", "thread-main");
    var labels = el("p", "thread-labels");
    if (thread.is_pinned) labels.appendChild(el("span", "badge pinned", "Pinned"));
    if (thread.is_locked) labels.appendChild(el("span", "badge locked", "Locked"));
    labels.appendChild(el("span", "category", thread.category_name));
    if (thread.answer_id) labels.appendChild(el("span", "badge success", "Official answer"));
    else if (thread.has_official_reply) labels.appendChild(el("span", "badge info", "Official reply"));
    main.appendChild(labels);
    var heading = el("h3", "thread-title");
    heading.id = titleId;
    heading.appendChild(link(thread.url, thread.title));
    main.appendChild(heading);
    var meta = el("p", "meta");
    meta.appendChild(document.createTextNode(thread.author + " · "));
    meta.appendChild(time(thread.created_at, "just now"));
    meta.appendChild(document.createTextNode(" · "));
    var replies = el("span", null, String(thread.reply_count));
    replies.setAttribute("data-thread-replies", "");
    meta.appendChild(replies);
    meta.appendChild(document.createTextNode(" " + plural(thread.reply_count, "reply", "replies")));
    if (list.hasAttribute("data-show-neighborhood")) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(link(feedUrl(thread.neighborhood), neighborhoodNames[thread.neighborhood] || thread.neighborhood));
    }
    main.appendChild(meta);
    if (thread.tags && thread.tags.length && !list.hasAttribute("data-panel")) {
      var tags = el("ul", "tags");
      tags.setAttribute("aria-label", "Tags");
      thread.tags.forEach(function (tag) {
        var item = el("li");
        item.appendChild(link(feedUrl(thread.neighborhood) + "?tag=" + encodeURIComponent(tag), "#" + tag));
        tags.appendChild(item);
      });
      main.appendChild(tags);
    }
    article.appendChild(main);
    li.appendChild(article);
    return li;
  }

  /* Where a new thread goes: after pinned ones; by "hot" in hot feeds, first in "new" feeds.
     null: it belongs on another page. */
  function insertionPoint(list, thread) {
    var rows = list.querySelectorAll(":scope > [data-thread-id]");
    var sort = list.getAttribute("data-sort");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].classList.contains("is-pinned") && !thread.is_pinned) continue;
      if (sort === "new") return rows[i];
      var hot = parseFloat(rows[i].getAttribute("data-hot"));
      if (isNaN(hot) || thread.hot >= hot) return rows[i];
    }
    var size = parseInt(list.getAttribute("data-page-size") || "0", 10);
    return size && rows.length >= size ? null : "end";
  }

  /* A full page stays full: the row pushed past its end moves to the next page. */
  function trim(list) {
    var size = parseInt(list.getAttribute("data-page-size") || "0", 10);
    var rows = list.querySelectorAll(":scope > [data-thread-id]");
    if (size && rows.length > size) list.removeChild(rows[rows.length - 1]);
  }

  var newCount = 0;

  function showBanner(list) {
    var scope = list.parentNode;
    var banner = scope && scope.querySelector("[data-new-threads]");
    var anchor = banner && banner.querySelector("[data-new-threads-link]");
    if (!banner || !anchor) return;
    newCount += 1;
    anchor.textContent = newCount + " new discussion" + (newCount === 1 ? "" : "s") + " — show";
    banner.hidden = false;
  }

  function updateEmpty(list) {
    var empty = list.parentNode && list.parentNode.querySelector("[data-thread-empty]");
    if (empty) empty.hidden = list.querySelector("[data-thread-id]") !== null;
  }

  function onFeedEvent(list, message) {
    var thread = message.data || {};
    var row = list.querySelector('[data-thread-id="' + thread.id + '"]');
    switch (message.type) {
      case "thread.created":
        if (row || thread.removed || !matchesFilters(list, thread)) return;
        var sort = list.getAttribute("data-sort");
        var firstPage = list.getAttribute("data-page") === "1";
        var where = firstPage && (sort === "new" || sort === "hot") ? insertionPoint(list, thread) : null;
        if (where) {
          var node = threadRow(list, thread);
          node.classList.add("is-new");
          if (where === "end") list.appendChild(node);
          else list.insertBefore(node, where);
          trim(list);
          updateEmpty(list);
        } else {
          showBanner(list);
        }
        announce("New discussion: " + thread.title + ".");
        return;
      case "thread.counts":
        if (!row) return;
        setCount(row, "[data-thread-votes]", thread.vote_count);
        var replies = row.querySelector("[data-thread-replies]");
        if (replies) {
          replies.textContent = String(thread.reply_count);
          var label = replies.nextSibling;
          if (label && label.nodeType === 3) {
            label.textContent = label.textContent.replace(/repl(y|ies)/, plural(thread.reply_count, "reply", "replies"));
          }
        }
        return;
      case "thread.updated":
      case "thread.answered":
        if (!row) return;
        if (thread.removed) {
          row.parentNode.removeChild(row);
          updateEmpty(list);
          return;
        }
        var title = row.querySelector(".thread-title a");
        if (title && thread.title) title.textContent = thread.title;
        if (thread.answer_id && !row.querySelector(".badge.success")) {
          row.querySelector(".thread-labels").appendChild(el("span", "badge success", "Official answer"));
        }
        return;
      case "thread.removed":
        if (!row) return;
        row.parentNode.removeChild(row);
        updateEmpty(list);
        return;
    }
  }

  document.addEventListener("engagement:live", function (event) {
    var message = event.detail || {};
    if (!message.type || message.type.indexOf("alert.") === 0) return;
    if (message.type.indexOf("thread.") !== 0 && message.type.indexOf("reply.") !== 0) return;
    if (page && topicsOf(page).indexOf(message.topic) !== -1) onThreadEvent(message);
    var lists = document.querySelectorAll("[data-thread-feed]");
    for (var i = 0; i < lists.length; i++) {
      if (topicsOf(lists[i]).indexOf(message.topic) !== -1) onFeedEvent(lists[i], message);
    }
  });

  /* ---------- composing: similar discussions nearby ---------- */

  function setupComposer(form) {
    var url = form.getAttribute("data-similar-url");
    var title = form.querySelector("[name=title]");
    var lat = form.querySelector("[name=lat]");
    var lon = form.querySelector("[name=lon]");
    var list = form.querySelector("[data-similar-list]");
    var status = form.querySelector("[data-similar-status]");
    var check = form.querySelector("[data-similar-check]");
    if (!url || !title || !list || !window.fetch) return;
    if (check) {
      // Suggestions come as you type; a disabled check button also keeps Enter from leaving.
      check.hidden = true;
      check.disabled = true;
      var note = check.nextElementSibling;
      if (note) note.hidden = true;
    }
    var timer = null;
    var asked = "";

    function render(results) {
      list.textContent = "";
      results.forEach(function (item) {
        var li = el("li");
        var text = el("span");
        text.appendChild(link(item.url, item.title));
        var facts = " · " + item.vote_count + " " + plural(item.vote_count, "supporter", "supporters") +
          " · " + item.reply_count + " " + plural(item.reply_count, "reply", "replies");
        if (item.distance_m != null) {
          facts += " · " + (item.distance_m >= 1000 ? (item.distance_m / 1000).toFixed(1) + " km" : item.distance_m + " m") + " away";
        }
        text.appendChild(el("span", "small muted", facts));
        li.appendChild(text);
        var support = link(item.url + "#support", "Support this instead");
        support.className = "button small secondary";
        support.appendChild(el("span", "visually-hidden", ": " + item.title));
        li.appendChild(support);
        list.appendChild(li);
      });
      if (status) {
        status.textContent = results.length
          ? results.length + " similar discussion" + (results.length === 1 ? "" : "s") + " found: support one instead of starting another?"
          : "No similar open discussion found. Go ahead!";
      }
    }

    function ask() {
      var text = title.value.trim();
      var params = new URLSearchParams({ neighborhood: form.getAttribute("data-neighborhood") || "", title: text });
      if (lat && lon && lat.value && lon.value) {
        params.set("lat", lat.value);
        params.set("lon", lon.value);
      }
      var query = params.toString();
      if (text.length < 5 || query === asked) return;
      asked = query;
      fetch(url + "?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (data) {
          if (query !== asked) return; // a newer question is on its way
          var found = Array.isArray(data) ? data : (data.results || []);
          render(found.map(function (item) {
            var thread = item.thread || item;
            return {
              title: thread.title, url: thread.url, vote_count: thread.vote_count,
              reply_count: thread.reply_count, distance_m: item.distance_m
            };
          }));
        })
        .catch(function () {});
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(ask, 400);
    }

    title.addEventListener("input", later);
    if (lat) lat.addEventListener("change", later);
    if (lon) lon.addEventListener("change", later);
    if (title.value.trim().length >= 5 && !list.children.length) later();
  }

  var composer = document.querySelector("[data-thread-composer]");
  if (composer) setupComposer(composer);

  /* ---------- a thread's pin ---------- */

  /* ---------- support without a reload ---------- */

  // Support buttons are ordinary forms (they work without JavaScript); with it, the vote goes
  // through the JSON API and the button and count change in place.
  var VOTE_PATH = /\/discussions\/(\d+)\/(?:replies\/(\d+)\/)?(vote|unvote)\/$/;

  function showVoteError(form, text) {
    var note = form.parentNode.querySelector("[data-vote-error]");
    if (!note) {
      note = el("p", "small notice warning");
      note.setAttribute("data-vote-error", "");
      note.setAttribute("role", "alert");
      form.parentNode.insertBefore(note, form.nextSibling);
    }
    note.textContent = text;
  }

  /* A quiet word beside the button after withdrawing (empty text removes it). */
  function showVoteNote(form, text) {
    var note = form.parentNode.querySelector("[data-vote-note]");
    if (!text) {
      if (note) note.parentNode.removeChild(note);
      return;
    }
    if (!note) {
      note = el("span", "small muted vote-note");
      note.setAttribute("data-vote-note", "");
      form.parentNode.insertBefore(note, form.nextSibling);
    }
    note.textContent = text;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || form.tagName !== "FORM" || !window.fetch) return;
    var match = new URL(form.action, window.location.href).pathname.match(VOTE_PATH);
    if (!match) return;
    event.preventDefault();
    var replyId = match[2];
    var voting = match[3] === "vote";
    var url = replyId
      ? "/api/v1/replies/" + replyId + "/vote/"
      : "/api/v1/threads/" + match[1] + "/vote/";
    var button = form.querySelector("button[type=submit], button:not([type])");
    if (button) button.disabled = true;
    fetch(url, {
      method: voting ? "POST" : "DELETE",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    })
      .then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      })
      .then(function (result) {
        if (!result.ok) {
          var error = (result.data && result.data.error) || {};
          showVoteError(form, error.message || "Your support could not be recorded.");
          return;
        }
        var count = result.data.vote_count;
        form.action = form.action.replace(/(un)?vote\/$/, voting ? "unvote/" : "vote/");
        if (button) {
          button.setAttribute("aria-pressed", voting ? "true" : "false");
          button.title = voting ? "You support this; press to withdraw" : "Support this";
        }
        showVoteNote(form, voting ? "" : "Support withdrawn.");
        var scope = replyId
          ? form.closest("[data-reply-id]")
          : form.closest("li") || document.querySelector("[data-thread-page]") || document;
        setCount(scope || document, replyId ? "[data-reply-votes]" : "[data-thread-votes]", count);
        var old = form.parentNode.querySelector("[data-vote-error]");
        if (old) old.parentNode.removeChild(old);
        announce((voting ? "You support this. " : "Support withdrawn. ") + count + " " +
          plural(count, "supporter", "supporters") + ".");
      })
      .catch(function () { form.submit(); })
      .then(function () { if (button) button.disabled = false; });
  });

  window.engagementThreadPin = function (map) {
    var container = map.getContainer();
    var frame = (container.closest && container.closest("[data-map]")) || container.parentNode;
    container.setAttribute("role", "region");
    container.setAttribute("aria-roledescription", "map");
    container.setAttribute("aria-label", frame.getAttribute("data-label") || "Map of the discussion's pin");
    if (container.tabIndex < 0) container.tabIndex = 0;
    map.options.zoomSnap = 0.5;
    var lat = parseFloat(frame.getAttribute("data-pin-lat"));
    var lon = parseFloat(frame.getAttribute("data-pin-lon"));
    var boundaryEl = document.getElementById(frame.getAttribute("data-boundary"));
    var bounds = null;
    if (boundaryEl) {
      try {
        bounds = L.geoJSON(JSON.parse(boundaryEl.textContent), {
          interactive: false,
          style: { color: "#1d4ed8", weight: 2, opacity: 1, fillColor: "#1d4ed8", fillOpacity: 0.15 }
        }).addTo(map).getBounds();
      } catch (err) { bounds = null; /* the pin alone is enough */ }
    }
    if (!isFinite(lat) || !isFinite(lon)) return;
    L.marker([lat, lon], { keyboard: false, title: "Where it is", alt: "Where it is" }).addTo(map);
    // The neighborhood for orientation, and the pin (it may lie just outside).
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds.extend(L.latLng(lat, lon)), { padding: [12, 12], maxZoom: 17 });
    } else {
      map.setView([lat, lon], 16);
    }
  };
})();
