/* Shared by every page: DOM building with textContent only, number formats matching the
   server's Jinja filters, and JSON fetches. Changes authenticate with the HttpOnly login
   cookie (set by the ?token= login URL), which scripts never see. */
"use strict";

const sweepctl = (() => {
  /** An element with attributes and text; data never goes through innerHTML. */
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Plotly reads a subset of HTML in labels: escape before handing it user strings. */
  function plotlyText(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function number(value) {
    if (value === null || value === undefined || value === "") return "–";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return Number(value.toPrecision(4)).toString();
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    const total = Math.floor(seconds);
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}h ${pad(m)}m` : `${m}m ${pad(s)}s`;
  }

  function when(iso) {
    if (!iso) return "–";
    return iso.replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$/, " UTC");
  }

  function headers(extra) {
    return Object.assign({ Accept: "application/json" }, extra || {});
  }

  /** {ok, status, body}; body is the parsed JSON or {detail: text}. */
  async function fetchJSON(url, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    opts.credentials = "same-origin";
    const response = await fetch(url, opts);
    let body;
    try {
      body = await response.json();
    } catch (_err) {
      body = { detail: `HTTP ${response.status}` };
    }
    return { ok: response.ok, status: response.status, body };
  }

  /** The API's one-line message; pydantic's list of errors becomes one line too. */
  function detail(body) {
    const value = body && body.detail;
    if (typeof value === "string") return value;
    if (Array.isArray(value)) {
      return value.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
    }
    return JSON.stringify(body);
  }

  return { el, plotlyText, number, duration, when, fetchJSON, detail };
})();
