// A bar chart of clicks over time, drawn as SVG by hand: a few dozen lines
// instead of a charting library. Every bar has a <title> (a tooltip, and
// what a screen reader announces), and the whole chart a summary label.
"use strict";

const Chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 600;
  const HEIGHT = 200;
  const AXIS = 24; // room for the labels under the bars

  function el(name, attributes, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function day(iso) {
    return new Date(iso).toLocaleDateString(undefined, {month: "short", day: "numeric"});
  }

  // points: [{start, clicks}], oldest first. Returns an <svg> element.
  function bars(points) {
    const total = points.reduce((sum, p) => sum + p.clicks, 0);
    const top = Math.max(1, ...points.map((p) => p.clicks));
    const svg = el("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT + AXIS}`,
      role: "img",
      "aria-label": `${total} clicks in ${points.length} days; the most in one day: ${top}.`,
      class: "chart",
    });
    const slot = WIDTH / Math.max(1, points.length);
    points.forEach((point, i) => {
      const height = (point.clicks / top) * (HEIGHT - 16);
      const bar = el("rect", {
        x: (i * slot + slot * 0.15).toFixed(1),
        y: (HEIGHT - height).toFixed(1),
        width: (slot * 0.7).toFixed(1),
        height: height.toFixed(1),
        class: "bar",
      });
      bar.append(el("title", {}, `${day(point.start)}: ${point.clicks} clicks`));
      svg.append(bar);
    });
    svg.append(el("line", {x1: 0, y1: HEIGHT, x2: WIDTH, y2: HEIGHT, class: "axis"}));
    // First, middle and last day under the axis: enough to read the range.
    const marks = [...new Set([0, Math.floor(points.length / 2), points.length - 1])];
    for (const i of marks.filter((m) => m >= 0)) {
      const anchor = i === 0 ? "start" : i === points.length - 1 ? "end" : "middle";
      const x = i === 0 ? 0 : i === points.length - 1 ? WIDTH : (i + 0.5) * slot;
      svg.append(el("text", {x, y: HEIGHT + 18, "text-anchor": anchor}, day(points[i].start)));
    }
    svg.append(el("text", {x: 4, y: 12, class: "peak"}, `max ${top}`));
    return svg;
  }

  return {bars};
})();
