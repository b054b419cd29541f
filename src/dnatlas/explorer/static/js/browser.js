/* dnatlas explorer: the genome browser (igv.js, UMD build) and the Gram-matrix map. */
(function () {
  "use strict";
  var DN = (window.DN = window.DN || {});
  DN.pages = DN.pages || {};
  var h = DN.h;

  // ---------------------------------------------------------------- regions
  var REGION = /^\s*([^:\s]+):([\d,]+)(?:-([\d,]+))?\s*$/;

  /** "rec:1,001-2,000" -> {chr, start, end} (1-based closed), or null. */
  DN.parseRegion = function (text) {
    var m = REGION.exec(text || "");
    if (!m) return null;
    var start = parseInt(m[2].replace(/,/g, ""), 10);
    var end = m[3] ? parseInt(m[3].replace(/,/g, ""), 10) : start;
    if (!(start >= 1) || end < start) return null;
    return { chr: m[1], start: start, end: end };
  };
  DN.regionText = function (r) { return r.chr + ":" + DN.fmtPos(r.start) + "-" + DN.fmtPos(r.end); };
  DN.regionKey = function (r) { return r.chr + ":" + r.start + "-" + r.end; };

  function record(chr) {
    return (DN.meta.records || []).filter(function (r) { return r.record === chr; })[0];
  }

  // ---------------------------------------------------------------- tiled data access
  /** Annotation or concept labels over 0-based [start, end): igv features (0-based). */
  function readIntervals(kind, chr, start, end) {
    var rec = record(chr);
    if (!rec) return Promise.resolve([]);
    var bin = DN.isStatic() ? DN.meta.static.annotation_bin
                            : Math.min(DN.meta.limits.annotation_max_nt, 50000);
    var first = Math.floor(Math.max(0, start) / bin), last = Math.floor(Math.max(0, Math.min(end, rec.length) - 1) / bin);
    if (last - first > 40) return Promise.resolve([]);   // too far out: igv's visibility window
    var calls = [];
    for (var k = first; k <= last; k++) {
      var params = { chr: chr, start: k * bin + 1, end: (k + 1) * bin };
      if (!DN.isStatic()) params.end = Math.min(params.end, rec.length);
      calls.push(DN.api(kind, params));
    }
    return Promise.all(calls).then(function (parts) {
      var seen = new Set(), out = [];
      parts.forEach(function (p) {
        (p.features || []).forEach(function (f) {
          var id = f.chr + ":" + f.start + ":" + f.end + ":" + f.name + ":" + f.type + ":" + f.strand;
          if (seen.has(id)) return;
          seen.add(id);
          out.push(Object.assign({}, f, { color: f.color || (kind === "labels" ? labelColor(f.type) : typeColor(f.type, f.strand)) }));
        });
      });
      return out;
    });
  }
  DN.readIntervals = readIntervals;

  var TYPE_COLORS = { CDS: "#2c6fbb", gene: "#5b8fd6", tRNA: "#2a9d8f", rRNA: "#e76f51", tmRNA: "#8d6cab",
                      ncRNA: "#8d6cab", terminator: "#b5179e", repeat_region: "#6c757d", CRISPR: "#f4a261" };
  var OTHER_COLORS = ["#6c757d", "#9c6644", "#80b918", "#4361ee", "#ef476f", "#118ab2"];
  function typeColor(type) {
    if (TYPE_COLORS[type]) return TYPE_COLORS[type];
    return OTHER_COLORS[parseInt(DN.fnv1a32(String(type)).slice(0, 6), 16) % OTHER_COLORS.length];
  }
  var LABEL_PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
  function labelColor(concept) {
    var hsh = parseInt(DN.fnv1a32(String(concept)).slice(0, 6), 16);
    return LABEL_PALETTE[hsh % LABEL_PALETTE.length];
  }
  DN.typeColor = typeColor;

  /** One feature's activations over 0-based [start, end): {plus, minus} igv wig points. */
  function readActivation(dictionary, feature, chr, start, end) {
    if (DN.isStatic()) {
      return DN.api(["feature", dictionary, feature]).then(function (page) {
        var plus = [], minus = [];
        (page.tracks || []).forEach(function (t) {
          if (t.chr !== chr) return;
          t.plus.forEach(function (p) { if (p.end > start && p.start < end) plus.push(p); });
          t.minus.forEach(function (p) { if (p.end > start && p.start < end) minus.push(p); });
        });
        return { plus: plus, minus: minus };
      });
    }
    var rec = record(chr);
    var d = DN.dictionaries()[dictionary];
    // no live model for it (e.g. a random-init control): nothing to ask the server
    if (!rec || !d || !d.live) return Promise.resolve({ plus: [], minus: [] });
    // tiles of a fixed size (cached per tile by DN.api): panning re-asks nothing
    var span = Math.max(1, end - start);
    var tile = 2000;
    while (tile < span / 2 && tile * 5 <= DN.meta.limits.track_max_nt) tile *= 5;
    tile = Math.min(tile, DN.meta.limits.track_max_nt);
    var first = Math.floor(Math.max(0, start) / tile), last = Math.floor((Math.min(end, rec.length) - 1) / tile);
    if (last - first > 12) return Promise.resolve({ plus: [], minus: [] });
    var calls = [];
    for (var k = first; k <= last; k++) {
      calls.push(DN.api("track", { dictionary: dictionary, feature: feature, chr: chr,
                                   start: k * tile + 1, end: Math.min((k + 1) * tile, rec.length) }));
    }
    return Promise.all(calls).then(function (parts) {
      var plus = [], minus = [];
      parts.forEach(function (t) { plus.push.apply(plus, t.plus); minus.push.apply(minus, t.minus); });
      return { plus: plus, minus: minus };
    });
  }
  DN.readActivation = readActivation;

  // ---------------------------------------------------------------- igv
  function referenceConfig() {
    var meta = DN.meta;
    if (!DN.isStatic() && meta.reference) {
      return { id: meta.reference.id, name: meta.genome || meta.reference.id,
               fastaURL: meta.reference.fastaURL, indexURL: meta.reference.indexURL,
               wholeGenomeView: false };
    }
    // record lengths only: igv-reports' "@len=" FASTA extension, one base per record
    var fasta = (meta.records || []).map(function (r) {
      return ">" + r.record + ":1-1 @len=" + r.length + "\nN";
    }).join("\n") + "\n";
    return { id: meta.genome || "genome", name: meta.genome || "genome",
             fastaURL: "data:text/plain;base64," + btoa(fasta), wholeGenomeView: false };
  }

  function activationTrackConfig(dictionary, feature) {
    var name = DN.featureName(dictionary, feature);
    // the + and − wig tracks ask for the same region: read it once (the tiles themselves
    // are cached by DN.api)
    var last = null;
    function both(chr, start, end) {
      var key = chr + ":" + start + "-" + end;
      if (!last || last.key !== key) last = { key: key, p: readActivation(dictionary, feature, chr, start, end) };
      return last.p;
    }
    // without a visibility window igv reads whole chromosomes; with one it reads ~4x the view
    var window_ = DN.meta.limits.track_max_nt;
    return {
      type: "merged", name: name + "  (+ up, − down)", height: 90, autoscale: true,
      dnatlas: { dictionary: dictionary, feature: feature },
      tracks: [
        { type: "wig", name: name + " +", color: DN.STRAND_COLORS["+"], graphType: "bar", visibilityWindow: window_,
          reader: { readFeatures: function (chr, start, end) {
            return both(chr, start, end).then(function (r) { return r.plus.map(copy(1)); }); } } },
        { type: "wig", name: name + " −", color: DN.STRAND_COLORS["-"], graphType: "bar", visibilityWindow: window_,
          reader: { readFeatures: function (chr, start, end) {
            return both(chr, start, end).then(function (r) { return r.minus.map(copy(-1)); }); } } },
      ],
    };
  }

  function copy(sign) {
    return function (p) { return { chr: p.chr, start: p.start, end: p.end, value: sign * p.value }; };
  }

  function intervalTrackConfig(kind) {
    return {
      name: kind === "labels" ? "Concept labels" : "Annotation",
      type: "annotation", displayMode: "EXPANDED", height: kind === "labels" ? 80 : 100,
      visibilityWindow: 400000, searchable: true,
      dnatlas: { kind: kind },
      reader: { readFeatures: function (chr, start, end) { return readIntervals(kind, chr, start, end); } },
    };
  }
  DN.intervalTrackConfig = intervalTrackConfig;
  DN.referenceConfig = referenceConfig;

  /** Create an igv browser in `div` (promise). */
  DN.createIgv = function (div, options) {
    var cfg = Object.assign({
      reference: referenceConfig(),
      loadDefaultGenomes: false,
      search: false,
      showCursorGuide: true,
      showSVGButton: false,
      showTrackLabelButton: true,
      tracks: [],
    }, options || {});
    return igv.createBrowser(div, cfg);
  };

  /** What an igv browser shows, per named track: {name, type, features, painted} (for
   *  the browser tests and for debugging: igv renders into a shadow root's canvases). */
  DN.igvSummary = function (b) {
    b = b || state.browser;
    if (!b) return [];
    return b.trackViews.filter(function (tv) { return tv.track && tv.track.name; }).map(function (tv) {
      var vp = tv.viewports[0], cache = vp.featureCache, n = 0, maxAbs = 0;
      var feats = cache && cache.features;
      var lists = Array.isArray(feats) ? [feats] : (feats && feats.featureArrays) || [];
      lists.forEach(function (a) {
        (a || []).forEach(function (f) {
          n++;
          if (typeof f.value === "number") maxAbs = Math.max(maxAbs, Math.abs(f.value));
        });
      });
      var painted = 0;
      if (vp.canvas && vp.canvas.width && vp.canvas.height) {
        var px = vp.canvas.getContext("2d").getImageData(0, 0, vp.canvas.width, vp.canvas.height).data;
        for (var i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
      }
      var box = vp.viewportElement.getBoundingClientRect();
      return { name: tv.track.name, type: tv.track.type, features: n, maxAbs: maxAbs, painted: painted,
               box: { x: box.left, y: box.top, width: box.width, height: box.height } };
    });
  };

  // ---------------------------------------------------------------- the browse page
  var state = { browser: null, div: null, tracks: [], ready: null, region: null };
  DN.browserState = state;

  function currentRegion() {
    var b = state.browser;
    if (!b) return state.region;
    var f = b.referenceFrameList && b.referenceFrameList[0];
    if (!f) return state.region;
    var start = Math.max(1, Math.floor(f.start) + 1);
    var end = Math.floor(f.end);
    var rec = record(f.chr);
    if (rec) end = Math.min(end, rec.length);
    return { chr: f.chr, start: start, end: Math.max(start, end) };
  }
  DN.currentRegion = currentRegion;

  function ensureBrowser(initial) {
    if (state.ready) return state.ready;
    state.div = h("div.igv-host#igv-host");
    state.ready = DN.createIgv(state.div, {
      locus: DN.regionKey(initial),
      tracks: [intervalTrackConfig("annotation"), intervalTrackConfig("labels")],
    }).then(function (b) {
      state.browser = b;
      b.on("locuschange", function () {
        var r = currentRegion();
        if (!r) return;
        state.region = r;
        var hash = "#/browse/" + DN.regionKey(r) + trackQuery();
        if (location.hash.indexOf("#/browse/") === 0 && location.hash !== hash) {
          DN.replaceHash(hash);
        }
        if (state.onregion) state.onregion(r);
      });
      b.on("trackclick", function (track, popover) {
        var cfg = track && track.config && track.config.dnatlas;
        if (cfg && cfg.dictionary !== undefined) {
          DN.go("#/feature/" + cfg.dictionary + "/" + cfg.feature);
          return false;
        }
        return undefined;
      });
      return b;
    });
    return state.ready;
  }

  function trackQuery() {
    if (!state.tracks.length) return "";
    return "?tracks=" + state.tracks.map(function (t) { return t.dictionary + "/" + t.feature; }).join(",");
  }

  function parseTracks(text) {
    return (text || "").split(",").filter(Boolean).map(function (t) {
      var i = t.lastIndexOf("/");
      return { dictionary: t.slice(0, i), feature: parseInt(t.slice(i + 1), 10) };
    }).filter(function (t) { return t.dictionary && t.feature >= 0; });
  }

  function addTrack(b, dictionary, feature) {
    if (state.tracks.some(function (t) { return t.dictionary === dictionary && t.feature === feature; })) {
      return Promise.resolve();
    }
    state.tracks.push({ dictionary: dictionary, feature: feature });
    return b.loadTrack(activationTrackConfig(dictionary, feature));
  }

  function removeTrack(b, t) {
    state.tracks = state.tracks.filter(function (x) { return x !== t; });
    b.removeTrackByName(DN.featureName(t.dictionary, t.feature) + "  (+ up, − down)");
  }

  /** #/browse/<record>:<start>-<end>?tracks=dict/f,... */
  DN.pages.browse = function (root, arg, params) {
    var meta = DN.meta;
    var first = meta.records[0];
    var region = DN.parseRegion(arg) || state.region ||
      { chr: first.record, start: 1, end: Math.min(first.length, 5000) };
    var wanted = parseTracks(params.tracks);
    if (!params.tracks && !state.ready) {
      wanted = [];
    }
    var status = h("span.muted.status");
    var trackList = h("div.track-list");
    var dictSel = DN.dictionarySelect(DN.state.dictionary);
    var featInput = h("input", { type: "number", min: 0, value: 0, style: { width: "6em" }, "aria-label": "feature" });
    var addBtn = h("button", { type: "button" }, "Add activation track");
    var locus = h("input.locus", { type: "text", value: DN.regionText(region), "aria-label": "locus",
                                   placeholder: "record:start-end, gene, feature or concept" });
    var goBtn = h("button", { type: "button" }, "Go");
    var panel = h("div.browse-controls",
      h("label", "Go to ", locus), goBtn,
      h("span.sep"),
      dictSel, featInput, addBtn,
      status);
    var gramBox = h("section.card.gram-card#gram");
    root.appendChild(h("section.card",
      h("h2", "Genome browser"),
      h("p.muted", "Coordinates are 1-based and closed. Activation tracks show the + strand upwards (blue) and the − strand downwards (red); click one to open its feature page. " +
        (DN.isStatic() ? "Static export: activation tracks exist around each feature's top examples only, and no bases are drawn." : "")),
      panel, trackList));
    var host = h("div.card.igv-card");
    root.appendChild(host);
    root.appendChild(gramBox);

    function renderTrackList() {
      DN.clear(trackList);
      state.tracks.forEach(function (t) {
        var d = DN.dictionaries()[t.dictionary] || {};
        trackList.appendChild(h("span.chip",
          h("a", { href: "#/feature/" + t.dictionary + "/" + t.feature }, DN.featureName(t.dictionary, t.feature)),
          !DN.isStatic() && !d.live ? h("span.muted", { title: "this dictionary has no live model here" }, " (no live values)") : null,
          h("button.x", { type: "button", title: "remove", "aria-label": "remove track",
                          onclick: function () { ensureBrowser(region).then(function (b) { removeTrack(b, t); renderTrackList(); syncHash(); }); } }, "×")));
      });
    }
    function syncHash() {
      var r = currentRegion();
      if (r) DN.replaceHash("#/browse/" + DN.regionKey(r) + trackQuery());
    }

    function go(text) {
      var r = DN.parseRegion(text);
      if (r) {
        return ensureBrowser(region).then(function (b) { return b.search(DN.regionKey(r)); });
      }
      status.textContent = "searching…";
      return DN.searchHits(text).then(function (hits) {
        status.textContent = "";
        var loc = hits.filter(function (x) { return x.type === "gene" || x.type === "region"; })[0];
        if (loc) {
          // a gene with 10% of its length either side (its neighbours, and room for labels)
          var pad = loc.type === "gene" ? Math.round((loc.end - loc.start + 1) * 0.1) : 0;
          return ensureBrowser(region).then(function (b) {
            return b.search(loc.record + ":" + Math.max(1, loc.start - pad) + "-" + (loc.end + pad));
          });
        }
        var feat = hits.filter(function (x) { return x.type === "feature" && x.dictionary === dictSel.value; })[0] ||
                   hits.filter(function (x) { return x.type === "feature"; })[0];
        if (feat) {
          // a feature: its strongest example, with its track
          return DN.api(["feature", feat.dictionary, feat.feature]).then(function (page) {
            var ex = page.examples.filter(function (e) { return e.kind === "top"; })[0];
            if (!ex) return DN.go("#/feature/" + feat.dictionary + "/" + feat.feature);
            DN.go("#/browse/" + ex.record + ":" + Math.max(1, ex.start - 250) + "-" + (ex.end + 250) +
                  "?tracks=" + state.tracks.map(function (t) { return t.dictionary + "/" + t.feature; })
                    .concat([feat.dictionary + "/" + feat.feature]).join(","));
          });
        }
        var concept = hits.filter(function (x) { return x.type === "concept"; })[0];
        if (concept) return DN.go("#/concept/" + concept.concept);
        status.textContent = "nothing found for “" + text + "”";
      });
    }
    goBtn.addEventListener("click", function () { go(locus.value); });
    locus.addEventListener("keydown", function (e) { if (e.key === "Enter") go(locus.value); });
    addBtn.addEventListener("click", function () {
      var f = parseInt(featInput.value, 10);
      var d = DN.dictionaries()[dictSel.value] || {};
      if (!(f >= 0 && f < (d.n_features || 0))) { status.textContent = "feature out of range (0.." + ((d.n_features || 1) - 1) + ")"; return; }
      ensureBrowser(region).then(function (b) { return addTrack(b, dictSel.value, f); }).then(function () { renderTrackList(); syncHash(); });
    });

    state.onregion = function (r) {
      locus.value = DN.regionText(r);
      DN.gramPanel.update(gramBox, r);
    };
    var fresh = !state.ready;
    var p = ensureBrowser(region).then(function (b) {
      host.appendChild(state.div);
      var work = [];
      if (!fresh) work.push(b.search(DN.regionKey(region)));
      // tracks in the URL replace the loaded ones
      if (params.tracks !== undefined) {
        state.tracks.slice().forEach(function (t) {
          if (!wanted.some(function (w) { return w.dictionary === t.dictionary && w.feature === t.feature; })) removeTrack(b, t);
        });
      }
      wanted.forEach(function (w) { work.push(addTrack(b, w.dictionary, w.feature)); });
      return Promise.all(work).then(function () {
        renderTrackList();
        state.region = currentRegion() || region;
        DN.gramPanel.update(gramBox, state.region);
        if (b.visibilityChange) b.visibilityChange();
      });
    });
    host.appendChild(state.div || h("p.muted", "loading igv…"));
    return p;
  };

  // ---------------------------------------------------------------- Gram map
  var gram = { site: null, phase: "", scale: "linear", lastKey: null };

  /** Draw a Gram response into `box`: canvas, colour bar, annotation on both axes, profile. */
  DN.drawGram = function (box, g, opts) {
    opts = opts || {};
    var m = g.matrix ? g.matrix.length : 0, n = g.n || m, step = g.matrix_step || 1;
    if (!m) { box.appendChild(h("p.muted", "Empty Gram map.")); return; }
    var power = g.scale === "power";
    var size = 460;
    var lo = Infinity;
    g.matrix.forEach(function (row) { row.forEach(function (v) { if (v < lo) lo = v; }); });
    // as dnatlas.analysis.plots.gram_norm: [0, 1], or [-1, 1] when any value is negative;
    // power: v -> sign(v)|v|^0.5
    var signed = lo < 0, lo2 = signed ? -1 : 0, hi2 = 1;
    function t(v) {
      if (power) v = Math.sign(v) * Math.sqrt(Math.abs(v));
      return (v - lo2) / (hi2 - lo2);
    }
    var canvas = h("canvas.gram#gram-canvas", { width: m, height: m, style: { width: size + "px", height: size + "px" } });
    var ctx = canvas.getContext("2d");
    var img = ctx.createImageData(m, m);
    var lut = [];
    for (var i = 0; i <= 255; i++) lut.push(DN.viridis(i / 255).match(/\d+/g).map(Number));
    for (var r = 0; r < m; r++) {
      for (var cc = 0; cc < m; cc++) {
        var k = Math.round(255 * Math.max(0, Math.min(1, t(g.matrix[r][cc]))));
        var o = (r * m + cc) * 4;
        img.data[o] = lut[k][0]; img.data[o + 1] = lut[k][1]; img.data[o + 2] = lut[k][2]; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    function pos(cell) { return g.positions[Math.min(n - 1, cell * step)]; }
    var hover = h("div.muted.gram-hover", "hover the map for positions and similarity");
    canvas.addEventListener("mousemove", function (e) {
      var b = canvas.getBoundingClientRect();
      var col = Math.floor((e.clientX - b.left) / b.width * m), row = Math.floor((e.clientY - b.top) / b.height * m);
      if (row < 0 || col < 0 || row >= m || col >= m) return;
      hover.textContent = "position " + DN.fmtPos(pos(row)) + " × " + DN.fmtPos(pos(col)) +
        (step > 1 ? " (mean of " + step + "×" + step + ")" : "") + ": cosine similarity " + DN.fmt(g.matrix[row][col], 3);
    });
    // annotation strips along both axes
    var topStrip = DN.s("svg", { class: "strip", width: size, height: 14 });
    var leftStrip = DN.s("svg", { class: "strip", width: 14, height: size });
    var first = g.positions[0], last = g.positions[n - 1];
    var span = Math.max(1, last - first + 1);
    (opts.annotation || []).forEach(function (f) {
      var a = Math.max(f.start + 1, first), b2 = Math.min(f.end, last);   // 1-based closed
      if (b2 < a) return;
      var p0 = (a - first) / span * size, p1 = (b2 - first + 1) / span * size;
      var col = f.color || typeColor(f.type);
      var title = f.name + " (" + f.type + ", " + f.strand + ")";
      topStrip.appendChild(DN.s("rect", { x: p0, y: f.strand === "-" ? 8 : 1, width: Math.max(1, p1 - p0), height: 5, fill: col }, DN.s("title", { text: title })));
      leftStrip.appendChild(DN.s("rect", { y: p0, x: f.strand === "-" ? 8 : 1, height: Math.max(1, p1 - p0), width: 5, fill: col }, DN.s("title", { text: title })));
    });
    var types = {};
    (opts.annotation || []).forEach(function (f) {
      if (f.end >= first && f.start + 1 <= last) types[f.type] = f.color || typeColor(f.type);   // in the map only
    });
    var grid = h("div.gram-grid",
      h("div"), h("div.axis-note", (opts.annotation || []).length ? "annotation along both axes (+ strand outer, − strand inner)" : ""),
      h("div"), topStrip,
      leftStrip, canvas);
    var typeLegend = h("div.type-legend", Object.keys(types).map(function (t) {
      return h("span", h("i", { style: { background: types[t] } }), t);
    }));
    // colour bar ticks in similarity units (the power scale's ticks are not evenly spaced)
    var bar = DN.colorBar(function (x) { return DN.viridis(x); }, lo2, hi2,
                          "cosine similarity, " + (power ? "nonlinear scale (colour ∝ √s)" : "linear scale"),
                          { width: size, mid: signed ? 0 : (power ? 0.25 : 0.5) });
    var left = h("div.gram-left", { style: { maxWidth: (size + 40) + "px" } }, grid, typeLegend, h("div.gram-bar", bar), hover,
                 h("p.muted", "Rows and columns: " + DN.fmt(n) + " positions " + DN.fmtPos(first) + "–" + DN.fmtPos(last) +
                   (g.phase !== null && g.phase !== undefined && g.phase !== "" ? " at codon position " + (Number(g.phase) + 1) + " only" : " (every position)") +
                   " of " + g.chr + ", site " + g.site + "."));
    var profile = DN.lineChart([{ x: g.offsets, y: g.offset_profile, color: "#355f8d", label: "mean similarity" }],
                               { width: 380, height: 220, title: "Offset profile", ylabel: "mean cosine similarity",
                                 xlabel: g.phase !== null && g.phase !== undefined && g.phase !== "" ? "offset (codons)" : "offset (nt)" });
    var scores = h("table.kv",
      h("tr", h("th", "3-periodicity"), h("td.num", DN.fmt(g.periodicity3, 3))),
      h("tr", h("th", "Toeplitz score"), h("td.num", DN.fmt(g.toeplitz, 3))),
      h("tr", h("th", "positions"), h("td.num", DN.fmt(n))));
    var right = h("div.gram-right", profile, scores,
                  h("p.muted.small", "3-periodicity: how much more similar positions 3, 6, 9, … apart are than their neighbours (mean of p(k) − (p(k−1) + p(k+1))/2, similarity units). Toeplitz score: share of the off-diagonal similarity variance explained by the offset alone."));
    box.appendChild(h("div.gram-wrap", left, right));
  };

  DN.gramPanel = {
    update: function (box, region) {
      var meta = DN.meta;
      if (!meta.live) {
        DN.clear(box);
        box.appendChild(h("h2", "Gram-matrix map"));
        box.appendChild(h("p.note", "The Gram map needs the model, so it is live only: run `dnatlas explore --atlas ATLAS` to see it."));
        return;
      }
      var key = DN.regionKey(region);
      if (gram.lastKey === key && box.firstChild) return;
      gram.lastKey = key;
      DN.clear(box);
      var sites = [];
      meta.dictionaries.forEach(function (d) { if (!d.control && sites.indexOf(d.site) < 0) sites.push(d.site); });
      if (!gram.site) gram.site = sites[0];
      // any site of the model (e.g. blocks.0.residual, blocks.3.neurons); the atlas's
      // dictionaries' sites are offered
      var siteSel = h("input.site", { type: "text", value: gram.site, list: "gram-sites", "aria-label": "site",
                                      title: "any site of the model, e.g. blocks.1.residual", style: { width: "12em" } });
      var siteList = h("datalist#gram-sites", sites.map(function (st) { return h("option", { value: st }); }));
      var phaseSel = h("select", { "aria-label": "codon phase" },
        [["", "every position"], ["0", "codon position 1"], ["1", "codon position 2"], ["2", "codon position 3"]].map(function (o) {
          return h("option", { value: o[0], selected: o[0] === gram.phase }, o[1]);
        }));
      var scaleSel = h("select", { "aria-label": "colour scale" },
        [["linear", "linear colour scale"], ["power", "nonlinear colour scale (√)"]].map(function (o) {
          return h("option", { value: o[0], selected: o[0] === gram.scale }, o[1]);
        }));
      var width = region.end - region.start + 1;
      var maxnt = meta.limits.gram_max_nt;
      var out = h("div.gram-out");
      var btn = h("button", { type: "button" }, "Draw the Gram map");
      box.appendChild(h("h2", "Gram-matrix map of the region in view"));
      box.appendChild(h("div.controls", h("label", "site ", siteSel, siteList), h("label", "view ", phaseSel), h("label", "", scaleSel), btn,
        h("span.muted", width > maxnt ? "region " + DN.fmtPos(width) + " nt: the first " + DN.fmtPos(maxnt) + " nt are mapped (zoom in for less)" :
                                         DN.fmtPos(width) + " nt in view")));
      box.appendChild(out);
      function draw() {
        gram.site = siteSel.value.trim() || sites[0]; gram.phase = phaseSel.value; gram.scale = scaleSel.value;
        var end = Math.min(region.end, region.start + maxnt - 1);
        DN.clear(out).appendChild(h("p.muted", "computing…"));
        var params = { chr: region.chr, start: region.start, end: end, site: gram.site, phase: gram.phase, scale: gram.scale };
        return Promise.all([DN.api("gram", params), readIntervals("annotation", region.chr, region.start - 1, end)])
          .then(function (res) {
            DN.clear(out);
            DN.drawGram(out, res[0], { annotation: res[1] });
          }).catch(function (e) { DN.clear(out).appendChild(h("p.error", "Gram map failed: " + e.message)); });
      }
      btn.addEventListener("click", draw);
      [siteSel, phaseSel, scaleSel].forEach(function (el) { el.addEventListener("change", draw); });
      box.drawGram = draw;
    },
  };
})();
