// The page: one view at a time, chosen by the address's #fragment, so the
// back button, bookmarks and a reload all work without a router library.
"use strict";

(() => {
  const $ = (selector) => document.querySelector(selector);
  const VIEWS = ["shorten", "account", "links", "stats"];
  const DAY_MS = 86400000;
  let nextCursor = null;
  // Set while the page itself navigates: the message it just showed stays.
  let keepMessage = false;

  // ---- messages: one error (role=alert) and one notice (role=status) at a time
  function say(text, kind = "notice") {
    const [show, hide] = kind === "error" ? ["#error", "#notice"] : ["#notice", "#error"];
    $(hide).hidden = true;
    $(show).textContent = text;
    $(show).hidden = false;
  }

  function clear() {
    $("#error").hidden = true;
    $("#notice").hidden = true;
  }

  // Runs an action, turning any failure into the error message.
  async function attempt(action) {
    try {
      await action();
    } catch (error) {
      say(error instanceof Api.ApiError ? error.message : String(error), "error");
      // A session that could not be renewed is gone: show the page as logged out.
      if (error.status === 401 && Api.session() === null) go("#account");
    }
  }

  // ---- views
  function route() {
    const [view, arg] = location.hash.replace(/^#/, "").split("/");
    const name = VIEWS.includes(view) ? view : "shorten";
    const signedIn = Api.session() !== null;
    if ((name === "links" || name === "stats") && !signedIn) {
      location.hash = "#account";
      return;
    }
    for (const v of VIEWS) $(`#view-${v}`).hidden = v !== name;
    document.querySelectorAll("[data-needs-user]").forEach((n) => (n.hidden = !signedIn));
    document.querySelectorAll("[data-needs-guest]").forEach((n) => (n.hidden = signedIn));
    $("#who").textContent = signedIn ? Api.session().email || "" : "";
    if (name === "links") attempt(() => loadLinks(true));
    if (name === "stats") attempt(() => loadStats(decodeURIComponent(arg || "")));
  }

  function go(hash) {
    if (location.hash === hash) {
      route();
    } else {
      keepMessage = true;
      location.hash = hash;
    }
    $("#main").focus();
  }

  // ---- helpers
  function cell(row, content, label) {
    const td = row.insertCell();
    td.dataset.label = label; // shown beside the value on narrow screens
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    return td;
  }

  function button(text, onClick, label) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  function localInput(iso) {
    // A datetime-local input speaks local time without a zone.
    if (!iso) return "";
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  function optionalNumber(value) {
    return value === "" ? null : Number(value);
  }

  function optionalInstant(value) {
    return value === "" ? null : new Date(value).toISOString();
  }

  // ---- shorten
  async function shorten(event) {
    event.preventDefault();
    clear();
    const form = event.target;
    const body = {url: form.url.value.trim()};
    if (form.alias.value.trim()) body.alias = form.alias.value.trim();
    if (form.expires_at.value) body.expires_at = optionalInstant(form.expires_at.value);
    if (form.max_visits.value) body.max_visits = optionalNumber(form.max_visits.value);
    await attempt(async () => {
      const link = await Api.call("POST", "/api/v1/links", body);
      const qr = `/api/v1/links/${encodeURIComponent(link.code)}/qr`;
      $("#result-link").href = link.short_url;
      $("#result-link").textContent = link.short_url;
      $("#result-qr").src = `${qr}?format=svg&size=192`;
      $("#result-qr").alt = `QR code for ${link.short_url}`;
      $("#result-png").href = `${qr}?format=png&size=512`;
      $("#result").hidden = false;
      say("Short link created.");
      $("#copy").focus();
    });
  }

  async function copy() {
    const text = $("#result-link").textContent;
    try {
      await navigator.clipboard.writeText(text);
      say("Copied to the clipboard.");
    } catch {
      // No clipboard permission (or not a secure context): select it instead.
      getSelection().selectAllChildren($("#result-link"));
      say("Press Ctrl+C (or Cmd+C) to copy the selected link.");
    }
  }

  // ---- account
  async function login(event) {
    event.preventDefault();
    clear();
    const form = event.target;
    await attempt(async () => {
      await Api.login(form.email.value.trim(), form.password.value);
      form.reset();
      say("You are logged in.");
      go("#links");
    });
  }

  async function signup(event) {
    event.preventDefault();
    clear();
    const form = event.target;
    const email = form.email.value.trim();
    const password = form.password.value;
    await attempt(async () => {
      await Api.call("POST", "/api/v1/auth/register", {email, password}, {auth: false});
      await Api.login(email, password);
      form.reset();
      say("Welcome! Your account is ready.");
      go("#links");
    });
  }

  async function logout() {
    await Api.logout();
    say("You are logged out.");
    go("#shorten");
  }

  // ---- my links
  async function clickCounts() {
    // Totals since the oldest day the stats keep (about three years).
    const from = new Date(Date.now() - 1095 * DAY_MS).toISOString();
    const top = await Api.call("GET", `/api/v1/stats/top?limit=100&from=${from}`);
    return new Map(top.items.map((item) => [item.code, item.clicks]));
  }

  async function loadLinks(fresh) {
    if (fresh) {
      nextCursor = null;
      $("#links-body").replaceChildren();
    }
    const query = nextCursor ? `&cursor=${encodeURIComponent(nextCursor)}` : "";
    const [page, clicks] = await Promise.all([
      Api.call("GET", `/api/v1/links?limit=20${query}`),
      clickCounts().catch(() => new Map()), // stats down: the list still shows
    ]);
    for (const link of page.items) linkRow(link, clicks.get(link.code) ?? 0);
    nextCursor = page.next_cursor;
    $("#links-more").hidden = !nextCursor;
    const empty = $("#links-body").rows.length === 0;
    $("#links-empty").hidden = !empty;
    $("#links-table").hidden = empty;
  }

  function linkRow(link, clicks) {
    const row = $("#links-body").insertRow();
    const a = document.createElement("a");
    a.href = link.short_url;
    a.textContent = link.code;
    cell(row, a, "Short link");
    cell(row, link.url, "Target").className = "target";
    cell(row, String(clicks), "Clicks");
    const left = link.max_visits === null ? "no limit" : String(link.max_visits - link.visits);
    cell(row, left, "Visits left");
    cell(row, link.expires_at ? new Date(link.expires_at).toLocaleString() : "never", "Expires");
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(
      button("Stats", () => go(`#stats/${encodeURIComponent(link.code)}`), `Stats of ${link.code}`),
      button("Edit", () => edit(link), `Edit ${link.code}`),
      button("Delete", () => remove(link.code), `Delete ${link.code}`),
    );
    cell(row, actions, "Actions");
  }

  let editing = null;

  function edit(link) {
    editing = link;
    const form = $("#edit-form");
    $("#edit-title").textContent = `Edit ${link.code}`;
    form.url.value = link.url;
    form.expires_at.value = localInput(link.expires_at);
    form.max_visits.value = link.max_visits ?? "";
    $("#edit-dialog").showModal(); // keeps focus inside; Escape closes it
  }

  async function save(event) {
    event.preventDefault();
    const form = event.target;
    const body = {
      url: form.url.value.trim(),
      expires_at: optionalInstant(form.expires_at.value),
      max_visits: optionalNumber(form.max_visits.value),
    };
    await attempt(async () => {
      await Api.call("PATCH", `/api/v1/links/${encodeURIComponent(editing.code)}`, body);
      $("#edit-dialog").close();
      say(`Saved ${editing.code}.`);
      await loadLinks(true);
    });
  }

  async function remove(code) {
    if (!confirm(`Delete ${code}? Its short link will stop working for good.`)) return;
    await attempt(async () => {
      await Api.call("DELETE", `/api/v1/links/${encodeURIComponent(code)}`);
      say(`Deleted ${code}.`);
      await loadLinks(true);
    });
  }

  // ---- stats
  async function loadStats(code) {
    $("#stats-title").textContent = `Stats of ${code}`;
    const from = new Date(Date.now() - 29 * DAY_MS).toISOString();
    const path = `/api/v1/links/${encodeURIComponent(code)}/stats?granularity=day&from=${from}`;
    try {
      Stats.show(await Api.call("GET", path));
    } catch (error) {
      if (error.code !== "link_not_found") throw error;
      // Analytics learns of a link from its events, seconds after it is made.
      Stats.clear();
      say("No stats for this link yet: they appear a few seconds after its first click.");
    }
  }

  // ---- wiring
  document.addEventListener("DOMContentLoaded", () => {
    // The skip link moves focus, not the address: "#main" is not a view.
    $(".skip").addEventListener("click", (event) => {
      event.preventDefault();
      $("#main").focus();
    });
    $("#shorten-form").addEventListener("submit", shorten);
    $("#copy").addEventListener("click", copy);
    $("#login-form").addEventListener("submit", login);
    $("#signup-form").addEventListener("submit", signup);
    $("#logout").addEventListener("click", logout);
    $("#links-more").addEventListener("click", () => attempt(() => loadLinks(false)));
    $("#edit-form").addEventListener("submit", save);
    $("#edit-cancel").addEventListener("click", () => $("#edit-dialog").close());
    window.addEventListener("hashchange", () => {
      if (!keepMessage) clear();
      keepMessage = false;
      route();
    });
    route();
  });
})();
