// A link's stats page: totals, the chart of clicks per day, and the top
// referrers, devices and browsers as tables.
"use strict";

const Stats = (() => {
  const $ = (selector) => document.querySelector(selector);

  function text(tag, content, attributes = {}) {
    const node = document.createElement(tag);
    node.textContent = String(content);
    Object.assign(node, attributes);
    return node;
  }

  function table(selector, heading, rows) {
    const t = $(selector);
    t.replaceChildren();
    t.createTHead().insertRow().append(
      text("th", heading, {scope: "col"}), text("th", "Clicks", {scope: "col"}),
    );
    const body = t.createTBody();
    if (rows.length === 0) body.insertRow().append(text("td", "none yet", {colSpan: 2}));
    for (const [name, clicks] of rows) {
      body.insertRow().append(text("td", name), text("td", clicks));
    }
  }

  // stats: the analytics API's LinkStats document.
  function show(stats) {
    const totals = [
      ["Clicks", stats.totals.clicks],
      ["Unique visitors", stats.totals.unique_visitors ?? "unknown"],
      ["Bot clicks (not counted)", stats.totals.bot_clicks],
    ];
    $("#stats-totals").replaceChildren(
      ...totals.flatMap(([term, value]) => [text("dt", term), text("dd", value)]),
    );
    $("#stats-chart").replaceChildren(Chart.bars(stats.series));
    table("#stats-referrers", "Referrer", stats.referrers.map((r) => [r.domain, r.clicks]));
    table("#stats-devices", "Device", stats.devices.device.map((d) => [d.name, d.clicks]));
    table("#stats-browsers", "Browser", stats.devices.browser.map((d) => [d.name, d.clicks]));
  }

  function clear() {
    for (const id of ["totals", "chart", "referrers", "devices", "browsers"]) {
      $(`#stats-${id}`).replaceChildren();
    }
  }

  return {clear, show};
})();
