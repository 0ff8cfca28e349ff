// The gateway's public API as the page uses it: one fetch wrapper, the
// session's tokens, and a plain-language message for every error it returns.
//
// Tokens live in sessionStorage: they survive a reload of the tab but not its
// closing, and no other tab sees them. A cookie would be sent by the browser
// on its own (cross-site requests included), which would need CSRF defences
// the API does not have; memory alone would log the user out on every reload.
// Any script on the page could read them, which is why the page's
// Content-Security-Policy runs no script but its own files.
"use strict";

const Api = (() => {
  const KEY = "shortener.session";

  function session() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY)) || null;
    } catch {
      return null;
    }
  }

  function keep(grant, email) {
    const previous = session();
    sessionStorage.setItem(KEY, JSON.stringify({
      email: email || (previous && previous.email),
      access: grant.access_token,
      refresh: grant.refresh_token,
    }));
  }

  function forget() {
    sessionStorage.removeItem(KEY);
  }

  class ApiError extends Error {
    constructor(status, problem, retryAfter) {
      super(explain(status, problem, retryAfter));
      this.status = status;
      this.code = problem.code || `http_${status}`;
    }
  }

  const MESSAGES = {
    alias_taken: "That alias is already taken. Choose another one.",
    invalid_credentials: "Wrong email or password.",
    email_taken: "An account with this email already exists. Log in instead.",
    link_not_found: "That link does not exist (or was deleted).",
    not_link_owner: "That link belongs to someone else.",
    authentication_required: "Please log in first.",
    invalid_token: "Your session is no longer valid. Please log in again.",
    token_expired: "Your session has expired. Please log in again.",
    invalid_refresh_token: "Your session has ended. Please log in again.",
    refresh_token_reused: "Your session was ended for safety. Please log in again.",
    payload_too_large: "That is too much text to send.",
    malformed_json: "The page sent a request the server could not read. Reload and retry.",
    upstream_unavailable: "The service is unavailable right now. Try again in a moment.",
    upstream_circuit_open: "The service is recovering. Try again in a few seconds.",
    upstream_saturated: "The service is very busy. Try again in a moment.",
    upstream_timeout: "The service took too long to answer. Try again.",
    auth_unavailable: "Logging in is unavailable right now. Try again in a moment.",
    rate_limiter_unavailable: "This is closed for a moment. Try again shortly.",
    dependency_unavailable: "A database is unavailable right now. Try again shortly.",
    range_too_long: "That time range is too long.",
    visit_limit_reached: "This link has had all the visits it allows.",
    link_expired: "This link has expired.",
  };

  function seconds(value) {
    const n = Number.parseInt(value, 10);
    return Number.isFinite(n) && n >= 0 ? n : null;
  }

  function explain(status, problem, retryAfter) {
    if (status === 429) {
      const wait = retryAfter === null ? "a little while" : `${retryAfter} s`;
      return `Too many requests. Please wait ${wait} before trying again.`;
    }
    if (problem.code === "validation_failed" && Array.isArray(problem.errors)) {
      const fields = problem.errors.map((e) => {
        const field = (e.loc || []).filter((p) => p !== "body" && p !== "query").join(".");
        return field ? `${field}: ${e.msg}` : e.msg;
      });
      return `Please check: ${fields.join("; ")}.`;
    }
    const known = MESSAGES[problem.code];
    if (known) return known;
    // invalid_link, invalid_email, invalid_password...: the server's detail
    // already says what to change.
    if (problem.detail) return problem.detail;
    if (status >= 500) return `The server had a problem (${status}). Try again shortly.`;
    return `The request failed (${status}).`;
  }

  async function send(method, path, body, auth) {
    const headers = {accept: "application/json"};
    const current = session();
    if (auth && current) headers.authorization = `Bearer ${current.access}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, {detail: "Cannot reach the server. Check your connection."}, null);
    }
  }

  async function refreshed() {
    const current = session();
    if (!current) return false;
    const response = await send("POST", "/api/v1/auth/refresh", {refresh_token: current.refresh});
    if (!response.ok) {
      forget();
      return false;
    }
    keep(await response.json());
    return true;
  }

  // One call: JSON (or null for 204) on success, ApiError otherwise. An
  // expired access token is exchanged once for a new one, then retried.
  async function call(method, path, body, {auth = true} = {}) {
    let response = await send(method, path, body, auth);
    if (response.status === 401 && auth && session() && (await refreshed())) {
      response = await send(method, path, body, auth);
    }
    if (response.ok) return response.status === 204 ? null : response.json();
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // A proxy's HTML error page, say: the status alone must do.
    }
    throw new ApiError(response.status, problem, seconds(response.headers.get("retry-after")));
  }

  async function login(email, password) {
    const grant = await call("POST", "/api/v1/auth/login", {email, password}, {auth: false});
    keep(grant, email);
  }

  async function logout() {
    const current = session();
    forget();
    if (current) {
      // Ends the session server-side too; the page is logged out either way.
      await call("POST", "/api/v1/auth/logout", {refresh_token: current.refresh}, {auth: false})
        .catch(() => {});
    }
  }

  return {ApiError, call, login, logout, session};
})();
