/* dnatlas explorer: DOM helper, number formats, colour scales and small SVG charts. */
(function () {
  "use strict";
  var DN = (window.DN = window.DN || {});
  var SVGNS = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- DOM
  /** h("div.cls#id", {attr: v, onclick: fn}, child, ...): an element. */
  function h(spec, attrs) {
    var m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec) || [null, spec, ""];
    var el = document.createElement(m[1] || "div");
    (m[2].match(/[.#][\w-]+/g) || []).forEach(function (t) {
      if (t[0] === ".") el.classList.add(t.slice(1));
      else el.id = t.slice(1);
    });
    var rest = Array.prototype.slice.call(arguments, 2);
    if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
      rest.unshift(attrs);
      attrs = null;
    }
    setAttrs(el, attrs);
    append(el, rest);
    return el;
  }

  function setAttrs(el, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    });
  }

  function append(el, children) {
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) append(el, c);
      else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
  }

  /** s("rect", {x:.., ...}, children...): an SVG element. */
  function s(tag, attrs) {
    var el = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined) return;
      if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v);
    });
    append(el, Array.prototype.slice.call(arguments, 2));
    return el;
  }

  DN.h = h;
  DN.s = s;
  DN.clear = function (el) { while (el.firstChild) el.removeChild(el.firstChild); return el; };

  // ---------------------------------------------------------------- numbers
  DN.fmt = function (x, digits) {
    if (x === null || x === undefined || (typeof x === "number" && isNaN(x))) return "–";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x) && Math.abs(x) < 1e6) return x.toLocaleString("en-US");
    var a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(digits === undefined ? 2 : digits - 1);
    return x.toFixed(digits === undefined ? (a < 1 ? 3 : a < 100 ? 2 : 0) : digits);
  };
  DN.fmtPos = function (x) { return Number(x).toLocaleString("en-US"); };
  /** A fraction as a percentage with 2 significant digits (0.00081 -> "0.081%"). */
  DN.fmtPct = function (x) {
    if (x === null || x === undefined || isNaN(x)) return "–";
    if (x === 0) return "0%";
    var p = x * 100;
    return (p >= 10 ? p.toFixed(0) : +p.toPrecision(2)) + "%";
  };
  DN.featureName = function (dictionary, feature) { return dictionary + "#" + feature; };

  // ---------------------------------------------------------------- colours
  // viridis (11 stops), for the Gram map and activations on dark backgrounds
  var VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
                 "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"];
  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.slice(i, i + 2), 16); }); }
  function ramp(stops, t) {
    t = Math.max(0, Math.min(1, isNaN(t) ? 0 : t));
    var x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
    var a = hex(stops[i]), b = hex(stops[i + 1]);
    return "rgb(" + a.map(function (v, k) { return Math.round(v + (b[k] - v) * f); }).join(",") + ")";
  }
  DN.viridis = function (t) { return ramp(VIRIDIS, t); };
  // activation on a white page: white -> amber -> dark red
  var HEAT = ["#ffffff", "#fff3c4", "#ffd166", "#f4a261", "#e76f51", "#b5179e"];
  DN.heat = function (t) { return ramp(HEAT, t); };
  DN.heatStops = HEAT;
  DN.STRAND_COLORS = { "+": "#1f6fb4", "-": "#c4342d" };
  DN.BASE_COLORS = { A: "#1b9e3e", C: "#1f5fbf", G: "#d08a00", T: "#d62728", N: "#888888" };

  // ---------------------------------------------------------------- axes
  function niceTicks(lo, hi, n) {
    if (!isFinite(lo) || !isFinite(hi)) return [];
    if (hi === lo) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / (n || 5))));
    var err = (hi - lo) / (n || 5) / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  DN.niceTicks = niceTicks;
  /** A tick label: no trailing zeros (0.5, 1.5, 20), thousands separated. */
  function tickFmt(t) {
    var a = Math.abs(t);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return t.toExponential(1);
    var v = +t.toPrecision(6);
    return a >= 1000 ? v.toLocaleString("en-US") : String(v);
  }
  DN.tickFmt = tickFmt;

  /** A chart frame: {svg, g, x(v), y(v), W, H} with axes and labels drawn. */
  function frame(opts) {
    var W = opts.width || 420, H = opts.height || 180;
    var M = Object.assign({ l: 52, r: 12, t: 22, b: 38 }, opts.margin || {});
    var svg = s("svg", { class: "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H,
                         role: "img", "aria-label": opts.title || "" });
    var iw = W - M.l - M.r, ih = H - M.t - M.b;
    var x0 = opts.x[0], x1 = opts.x[1], y0 = opts.y[0], y1 = opts.y[1];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) y1 = y0 + 1;
    var fx = function (v) { return M.l + (v - x0) / (x1 - x0) * iw; };
    var fy = function (v) { return M.t + ih - (v - y0) / (y1 - y0) * ih; };
    if (opts.title) svg.appendChild(s("text", { x: M.l, y: 14, class: "chart-title", text: opts.title }));
    var axes = s("g", { class: "axes" });
    axes.appendChild(s("line", { x1: M.l, x2: M.l + iw, y1: M.t + ih, y2: M.t + ih }));
    axes.appendChild(s("line", { x1: M.l, x2: M.l, y1: M.t, y2: M.t + ih }));
    (opts.xticks || niceTicks(x0, x1, 6)).forEach(function (t) {
      var v = typeof t === "object" ? t.v : t, label = typeof t === "object" ? t.label : (opts.xfmt || tickFmt)(t);
      if (v < x0 - 1e-9 || v > x1 + 1e-9) return;
      axes.appendChild(s("line", { x1: fx(v), x2: fx(v), y1: M.t + ih, y2: M.t + ih + 4 }));
      axes.appendChild(s("text", { x: fx(v), y: M.t + ih + 15, "text-anchor": "middle", text: label }));
    });
    niceTicks(y0, y1, 4).forEach(function (t) {
      axes.appendChild(s("line", { x1: M.l - 4, x2: M.l, y1: fy(t), y2: fy(t) }));
      axes.appendChild(s("text", { x: M.l - 6, y: fy(t) + 3, "text-anchor": "end", text: (opts.yfmt || tickFmt)(t) }));
    });
    if (opts.xlabel) axes.appendChild(s("text", { x: M.l + iw / 2, y: H - 4, "text-anchor": "middle", class: "axis-label", text: opts.xlabel }));
    if (opts.ylabel) axes.appendChild(s("text", { x: 12, y: M.t + ih / 2, "text-anchor": "middle", class: "axis-label",
                                                  transform: "rotate(-90 12 " + (M.t + ih / 2) + ")", text: opts.ylabel }));
    svg.appendChild(axes);
    var g = s("g");
    svg.appendChild(g);
    return { svg: svg, g: g, x: fx, y: fy, M: M, iw: iw, ih: ih, W: W, H: H };
  }
  DN.frame = frame;

  function legend(svg, items, x, y) {
    var g = s("g", { class: "legend" });
    items.forEach(function (it, i) {
      var yy = y + i * 14;
      g.appendChild(s("line", { x1: x, x2: x + 18, y1: yy, y2: yy, stroke: it.color, "stroke-width": 2,
                                "stroke-dasharray": it.dash || null }));
      g.appendChild(s("text", { x: x + 22, y: yy + 3, text: it.label }));
    });
    svg.appendChild(g);
  }
  DN.legend = legend;

  // ---------------------------------------------------------------- charts
  /** Activation histogram over the atlas's log bins (edges[0] = 0, last = +inf/null). */
  DN.histogramChart = function (counts, edges, opts) {
    opts = opts || {};
    var bars = [];
    for (var i = 0; i < counts.length; i++) {
      if (!counts[i]) continue;
      var lo = edges[i] > 0 ? Math.log10(edges[i]) : Math.log10(edges[1]) - 0.1;
      var hi = edges[i + 1] ? Math.log10(edges[i + 1]) : lo + 0.1;
      bars.push({ lo: lo, hi: hi, n: counts[i] });
    }
    if (!bars.length) return h("p.muted", "No positive activations recorded.");
    var xlo = Math.floor(Math.min.apply(null, bars.map(function (b) { return b.lo; })));
    var xhi = Math.ceil(Math.max.apply(null, bars.map(function (b) { return b.hi; })));
    var ymax = Math.log10(Math.max.apply(null, bars.map(function (b) { return b.n; })) + 1);
    var xt = [];
    for (var d = xlo; d <= xhi; d++) xt.push({ v: d, label: d === 0 ? "1" : "1e" + d });
    var f = frame({ width: opts.width || 420, height: 190, x: [xlo, xhi], y: [0, Math.ceil(ymax)], xticks: xt,
                    yfmt: function (t) { return t === 0 ? "1" : "1e" + t; },
                    title: "Activation histogram (positive values, both strands)",
                    xlabel: "activation (log scale)", ylabel: "positions" });
    bars.forEach(function (b) {
      var y = f.y(Math.log10(b.n + 1));
      f.g.appendChild(s("rect", { x: f.x(b.lo), width: Math.max(1, f.x(b.hi) - f.x(b.lo) - 0.5), y: y,
                                  height: f.y(0) - y, class: "bar" },
                        s("title", { text: DN.fmt(Math.pow(10, b.lo)) + "–" + DN.fmt(Math.pow(10, b.hi)) + ": " + DN.fmt(b.n) })));
    });
    return f.svg;
  };

  /** Manhattan overview: max per genome bin, records side by side; onpick(record, start, end). */
  DN.manhattanChart = function (values, binSize, records, onpick, opts) {
    opts = opts || {};
    if (!values || !values.length || !binSize) return h("p.muted", "No genome overview in this atlas.");
    var total = values.length * binSize;
    var vmax = Math.max.apply(null, values.map(function (v) { return v || 0; })) || 1;
    var U = total >= 2e6 ? 1e6 : 1e3, unit = U === 1e6 ? "Mb" : "kb";
    var f = frame({ width: opts.width || 860, height: 180, x: [0, total / U], y: [0, vmax],
                    title: "Genome overview: max per " + DN.fmtPos(binSize) + "-nt bin (click a peak → browser)",
                    xlabel: "position in the concatenated genome (" + unit + ")", ylabel: "max activation" });
    records.forEach(function (r, i) {
      if (i % 2 === 1) {
        f.g.appendChild(s("rect", { x: f.x(r.offset / U), width: f.x((r.offset + r.length) / U) - f.x(r.offset / U),
                                    y: f.M.t, height: f.ih, class: "band" }));
      }
    });
    var path = "";
    values.forEach(function (v, i) {
      if (!v) return;
      var x = f.x((i + 0.5) * binSize / U);
      path += "M" + x.toFixed(1) + " " + f.y(0).toFixed(1) + "V" + f.y(v).toFixed(1);
    });
    f.g.appendChild(s("path", { d: path, class: "manhattan" }));
    var hit = s("rect", { x: f.M.l, y: f.M.t, width: f.iw, height: f.ih, class: "hit" });
    hit.addEventListener("click", function (ev) {
      var box = f.svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * (f.W / box.width);
      var g0 = (px - f.M.l) / f.iw * total;
      // snap to the highest bin within 4 px
      var per = total / f.iw, best = Math.floor(g0 / binSize);
      for (var j = Math.floor((g0 - 4 * per) / binSize); j <= Math.floor((g0 + 4 * per) / binSize); j++) {
        if (j >= 0 && j < values.length && (values[j] || 0) > (values[best] || 0)) best = j;
      }
      var gpos = best * binSize;
      var rec = records.filter(function (r) { return gpos >= r.offset && gpos < r.offset + r.length; })[0];
      if (!rec) return;
      var start = gpos - rec.offset + 1;
      onpick(rec.record, start, Math.min(rec.length, start + binSize - 1));
    });
    f.svg.appendChild(hit);
    f.svg.classList.add("clickable");
    return f.svg;
  };

  var LOGO_FONT = "bold 100px Arial, Helvetica, sans-serif";
  var glyphs = null;
  /** Ink box of each base at 100 px in the logo's font (canvas measureText), so that a
   *  letter fills its column and stack height exactly whatever font the system has. */
  function glyphBoxes() {
    if (glyphs) return glyphs;
    glyphs = {};
    var ctx = document.createElement("canvas").getContext("2d");
    ctx.font = LOGO_FONT;
    "ACGT".split("").forEach(function (b) {
      var m = ctx.measureText(b);
      var left = m.actualBoundingBoxLeft || 0, right = m.actualBoundingBoxRight || m.width;
      var asc = m.actualBoundingBoxAscent || 72, desc = m.actualBoundingBoxDescent || 0;
      glyphs[b] = { x0: -left, w: left + right || 70, asc: asc, desc: desc };
    });
    return glyphs;
  }

  /** Sequence logo (information content, bits) from a width x 4 PWM (A, C, G, T). */
  DN.logoChart = function (pwm, width, opts) {
    opts = opts || {};
    var colW = Math.max(16, Math.min(44, 520 / width));
    var f = frame({ width: Math.max(220, 64 + colW * width + 12), height: 200, x: [0.5, width + 0.5], y: [0, 2],
                    xticks: Array.from({ length: width }, function (_, i) { return i + 1; }),
                    title: opts.title || "Motif logo", xlabel: "position", ylabel: "bits" });
    for (var i = 0; i < width; i++) {
      var p = [0, 1, 2, 3].map(function (k) { return Math.max(0, pwm[i * 4 + k] || 0); });
      var tot = p.reduce(function (a, b) { return a + b; }, 0) || 1;
      p = p.map(function (v) { return v / tot; });
      var H = -p.reduce(function (a, v) { return a + (v > 0 ? v * Math.log2(v) : 0); }, 0);
      var ic = Math.max(0, 2 - H);
      var order = [0, 1, 2, 3].sort(function (a, b) { return p[a] - p[b]; });
      var y = f.y(0);
      var x0 = f.x(i + 0.5) + 1, w = f.x(i + 1.5) - f.x(i + 0.5) - 2;
      order.forEach(function (k) {
        var hgt = (f.y(0) - f.y(ic)) * p[k];
        if (hgt < 0.5) return;
        var base = "ACGT"[k];
        // the glyph's ink box scaled into w x hgt, its bottom on y
        var gb = glyphBoxes()[base], sx = w / gb.w, sy = hgt / (gb.asc + gb.desc);
        f.g.appendChild(s("text", { class: "logo-letter", fill: DN.BASE_COLORS[base],
                                    transform: "translate(" + (x0 - gb.x0 * sx) + "," + (y - gb.desc * sy) + ") scale(" + sx + "," + sy + ")",
                                    style: "font: " + LOGO_FONT, x: 0, y: 0, text: base }));
        y -= hgt;
      });
    }
    return f.svg;
  };

  /** Lines: series [{x:[..], y:[..], color, dash, label}]. */
  DN.lineChart = function (series, opts) {
    opts = opts || {};
    var xs = [], ys = [];
    series.forEach(function (sr) {
      sr.x.forEach(function (v, i) { if (sr.y[i] !== null && sr.y[i] !== undefined) { xs.push(v); ys.push(sr.y[i]); } });
    });
    if (!xs.length) return h("p.muted", "Nothing to plot.");
    var ylo = Math.min(0, Math.min.apply(null, ys)), yhi = Math.max.apply(null, ys);
    if (opts.ymin !== undefined) ylo = opts.ymin;
    var f = frame({ width: opts.width || 420, height: opts.height || 200, x: [Math.min.apply(null, xs), Math.max.apply(null, xs)],
                    y: [ylo, yhi * 1.05 || 1], title: opts.title, xlabel: opts.xlabel, ylabel: opts.ylabel,
                    margin: opts.legend ? { r: 175 } : {} });
    if (opts.vline !== undefined) {
      f.g.appendChild(s("line", { x1: f.x(opts.vline), x2: f.x(opts.vline), y1: f.M.t, y2: f.M.t + f.ih, class: "vline" }));
    }
    series.forEach(function (sr) {
      var d = "";
      sr.x.forEach(function (v, i) {
        var yv = sr.y[i];
        if (yv === null || yv === undefined) return;
        d += (d ? "L" : "M") + f.x(v).toFixed(1) + " " + f.y(yv).toFixed(1);
      });
      f.g.appendChild(s("path", { d: d, fill: "none", stroke: sr.color, "stroke-width": 1.6, "stroke-dasharray": sr.dash || null }));
    });
    if (opts.legend) legend(f.svg, series, f.W - 168, f.M.t + 6);
    return f.svg;
  };

  /** A horizontal colour bar: scale(t) over [lo, hi], labelled. */
  DN.colorBar = function (scale, lo, hi, label, opts) {
    opts = opts || {};
    var W = opts.width || 240, svg = s("svg", { class: "colorbar", width: W, height: 42 });
    var id = "cb" + Math.random().toString(36).slice(2, 8);
    var grad = s("linearGradient", { id: id });
    for (var i = 0; i <= 10; i++) grad.appendChild(s("stop", { offset: (i * 10) + "%", "stop-color": scale(i / 10) }));
    svg.appendChild(s("defs", {}, grad));
    svg.appendChild(s("rect", { x: 8, y: 4, width: W - 16, height: 12, fill: "url(#" + id + ")", stroke: "#999" }));
    svg.appendChild(s("text", { x: 8, y: 29, text: tickFmt(+lo.toPrecision(3)) }));
    svg.appendChild(s("text", { x: W - 8, y: 29, "text-anchor": "end", text: tickFmt(+hi.toPrecision(3)) }));
    if (opts.mid !== undefined) svg.appendChild(s("text", { x: W / 2, y: 29, "text-anchor": "middle", text: tickFmt(opts.mid) }));
    svg.appendChild(s("text", { x: W / 2, y: 40, "text-anchor": "middle", class: "axis-label", text: label }));
    return svg;
  };

  /** One example window at base resolution: bases coloured by activation / vmax. */
  DN.sequenceView = function (ex, vmax) {
    var seq = ex.sequence || "", acts = ex.activations || [];
    var row = h("div.seq");
    var peakIdx = -1;
    // index of the peak in reading order
    if (ex.peak) peakIdx = ex.strand === "-" ? ex.end - ex.peak : ex.peak - ex.start;
    for (var i = 0; i < seq.length; i++) {
      var a = acts[i] || 0;
      var t = vmax > 0 ? a / vmax : 0;
      var span = h("span", { style: { background: DN.heat(t), color: t > 0.75 ? "#fff" : "#222" },
                             title: seq[i] + " " + DN.fmt(a) }, seq[i]);
      if (i === peakIdx) span.classList.add("peak");
      row.appendChild(span);
    }
    return row;
  };
})();
