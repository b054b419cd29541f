/* dnatlas explorer: feature lists, feature pages, concepts, search, paste-a-sequence, steering. */
(function () {
  "use strict";
  var DN = (window.DN = window.DN || {});
  DN.pages = DN.pages || {};
  var h = DN.h, fmt = DN.fmt;

  function featureLink(dictionary, feature, label) {
    return h("a.feature-link", { href: "#/feature/" + dictionary + "/" + feature }, label || DN.featureName(dictionary, feature));
  }
  DN.featureLink = featureLink;

  function card(title) {
    var c = h("section.card");
    if (title) c.appendChild(h("h2", title));
    Array.prototype.slice.call(arguments, 1).forEach(function (x) { if (x) c.appendChild(x); });
    return c;
  }

  /** A control's F1; red when it reaches the feature's own F1 (the match is no better). */
  function f1Cell(control, f1) {
    var td = h("td.num", fmt(control, 3));
    if (f1 !== null && f1 !== undefined && control !== null && control !== undefined && control >= f1 && f1 > 0) {
      td.classList.add("fails");
      td.title = "as good as or better than the feature";
    }
    return td;
  }

  // ---------------------------------------------------------------- feature lists
  var PRESETS = [
    { label: "Strong but unexplained", order: "score_unexplained", desc: true, explained: "false" },
    { label: "Best concept matches", order: "score_concept", desc: true, explained: "" },
    { label: "Sparsest", order: "score_sparsity", desc: true, explained: "" },
    { label: "Most 3-periodic", order: "periodicity3", desc: true, explained: "" },
    { label: "Strongest", order: "max", desc: true, explained: "" },
  ];
  var COLUMNS = [
    ["feature", "feature"], ["max", "max"], ["frac_active", "firing"], ["best_concept", "best concept"],
    ["best_f1", "F1 (shuffled)"], ["top_motif", "motif"], ["best_landmark", "landmark"],
    ["periodicity3", "3-periodic"], ["score_unexplained", "unexplained"], ["description", "description"],
  ];
  var PAGE = 50;

  /** All rows of a dictionary in a static export (the list shards), for client-side paging. */
  function staticRows(dictionary) {
    var d = DN.dictionaries()[dictionary];
    var L = DN.meta.limits.list_max, calls = [];
    for (var off = 0; off < d.n_features; off += L) {
      calls.push(DN.api("features", { dictionary: dictionary, order: "feature", desc: false, limit: L, offset: off }));
    }
    return Promise.all(calls).then(function (parts) {
      var rows = [];
      parts.forEach(function (p) { rows.push.apply(rows, p.rows); });
      return rows;
    });
  }

  function listPage(q) {
    if (!DN.isStatic()) {
      return DN.api("features", { dictionary: q.dictionary, order: q.order, desc: q.desc, limit: PAGE, offset: q.offset,
                                  explained: q.explained === "" ? null : q.explained, concept: q.concept || null, text: q.text || null });
    }
    return staticRows(q.dictionary).then(function (rows) {
      var text = (q.text || "").toLowerCase();
      rows = rows.filter(function (r) {
        if (q.explained !== "" && String(!!r.explained) !== q.explained) return false;
        if (q.concept && r.best_concept !== q.concept) return false;
        if (text && (r.description || "").toLowerCase().indexOf(text) < 0) return false;
        return true;
      });
      var sign = q.desc ? -1 : 1;
      rows.sort(function (a, b) {
        var x = a[q.order], y = b[q.order];
        var nx = x === null || x === undefined, ny = y === null || y === undefined;
        if (nx || ny) return nx === ny ? a.feature - b.feature : (nx ? 1 : -1);   // NULLS LAST
        return x === y ? a.feature - b.feature : (x < y ? -sign : sign);
      });
      return { total: rows.length, rows: rows.slice(q.offset, q.offset + PAGE) };
    });
  }

  DN.pages.features = function (root, arg, params) {
    var meta = DN.meta;
    var q = {
      dictionary: params.dictionary || DN.state.dictionary,
      order: meta.orderable.indexOf(params.order) >= 0 ? params.order : "score_unexplained",
      desc: params.desc !== "false",
      explained: params.explained === "true" || params.explained === "false" ? params.explained : "",
      concept: params.concept || "",
      text: params.text || "",
      offset: Math.max(0, parseInt(params.offset || "0", 10) || 0),
    };
    if (!DN.dictionaries()[q.dictionary]) q.dictionary = DN.state.dictionary;
    DN.setDictionary(q.dictionary, true);
    function href(change) {
      var x = Object.assign({}, q, change);
      return "#/features?" + DN.query({ dictionary: x.dictionary, order: x.order, desc: x.desc, explained: x.explained,
                                        concept: x.concept, text: x.text, offset: x.offset || "" });
    }
    var orderSel = h("select", { "aria-label": "order by", onchange: function () { DN.go(href({ order: orderSel.value, offset: 0 })); } },
      meta.orderable.map(function (o) { return h("option", { value: o, selected: o === q.order }, o); }));
    var dirSel = h("select", { "aria-label": "direction", onchange: function () { DN.go(href({ desc: dirSel.value === "desc", offset: 0 })); } },
      h("option", { value: "desc", selected: q.desc }, "descending"), h("option", { value: "asc", selected: !q.desc }, "ascending"));
    var explSel = h("select", { "aria-label": "explained", onchange: function () { DN.go(href({ explained: explSel.value, offset: 0 })); } },
      [["", "all features"], ["true", "explained"], ["false", "unexplained"]].map(function (o) {
        return h("option", { value: o[0], selected: o[0] === q.explained }, o[1]);
      }));
    var textIn = h("input", { type: "search", placeholder: "description contains…", value: q.text, "aria-label": "description filter" });
    var conceptIn = h("input", { type: "search", placeholder: "best concept is…", value: q.concept, "aria-label": "concept filter" });
    var apply = function () { DN.go(href({ text: textIn.value.trim(), concept: conceptIn.value.trim(), offset: 0 })); };
    [textIn, conceptIn].forEach(function (el) { el.addEventListener("keydown", function (e) { if (e.key === "Enter") apply(); }); });
    var d = DN.dictionaries()[q.dictionary];
    root.appendChild(card("Features of " + q.dictionary,
      h("p.muted", d.kind === "sae" ? "SAE latents" : "neurons", " of ", d.site, " (", fmt(d.n_features), " features, model ", d.model || "–",
        d.control ? ", random-init control" : "", "). Click a column name to sort by it."),
      h("div.presets", PRESETS.map(function (p) {
        var active = q.order === p.order && q.desc === p.desc && q.explained === p.explained;
        return h("a.preset" + (active ? ".active" : ""), { href: href({ order: p.order, desc: p.desc, explained: p.explained, offset: 0 }) }, p.label);
      })),
      h("div.controls", h("label", "order ", orderSel), dirSel, explSel, conceptIn, textIn,
        h("button", { type: "button", onclick: apply }, "Filter"))));
    var tableCard = card(null, h("p.muted", "loading…"));
    root.appendChild(tableCard);
    return listPage(q).then(function (res) {
      DN.clear(tableCard);
      var head = h("tr", COLUMNS.map(function (c) {
        var orderable = meta.orderable.indexOf(c[0]) >= 0;
        var th = h("th" + (c[0] === "description" ? ".wide" : ""));
        if (orderable) {
          var on = q.order === c[0];
          th.appendChild(h("a.sort" + (on ? ".on" : ""), { href: href({ order: c[0], desc: on ? !q.desc : true, offset: 0 }) },
                           c[1] + (on ? (q.desc ? " ▼" : " ▲") : "")));
        } else {
          th.textContent = c[1];
        }
        return th;
      }));
      var body = h("tbody", res.rows.map(function (r) {
        return h("tr",
          h("td", featureLink(r.dictionary, r.feature, "#" + r.feature)),
          h("td.num", fmt(r.max)),
          h("td.num", DN.fmtPct(r.frac_active)),
          h("td", r.best_concept ? h("a", { href: "#/concept/" + encodeURIComponent(r.best_concept) }, r.best_concept) : "–"),
          h("td.num", r.best_f1 === null || r.best_f1 === undefined ? "–" : fmt(r.best_f1, 2) + " (" + fmt(r.best_f1_shuffled, 2) + ")"),
          h("td.mono", r.top_motif || "–"),
          h("td", r.best_landmark || "–"),
          h("td.num", fmt(r.periodicity3, 2)),
          h("td.num", fmt(r.score_unexplained, 2)),
          h("td.desc", (r.explained ? "" : "◇ "), r.description || ""));
      }));
      var table = h("table.list#feature-table", h("thead", head), body);
      var pager = h("div.pager",
        q.offset > 0 ? h("a", { href: href({ offset: Math.max(0, q.offset - PAGE) }) }, "← previous") : h("span"),
        h("span.muted", res.total ? (q.offset + 1) + "–" + Math.min(res.total, q.offset + PAGE) + " of " + fmt(res.total) : "no features match"),
        q.offset + PAGE < res.total ? h("a", { href: href({ offset: q.offset + PAGE }) }, "next →") : h("span"));
      tableCard.appendChild(table);
      tableCard.appendChild(pager);
      tableCard.appendChild(h("p.muted.small", "◇ marks a feature that neither a concept (beyond its shuffled control), a landmark nor a motif explains. F1 in brackets: the shuffled-labels control."));
    });
  };

  // ---------------------------------------------------------------- feature page
  DN.pages.feature = function (root, arg) {
    var i = arg.lastIndexOf("/");
    var dictionary = arg.slice(0, i), feature = parseInt(arg.slice(i + 1), 10);
    if (DN.dictionaries()[dictionary]) DN.setDictionary(dictionary, true);
    return DN.api(["feature", dictionary, feature]).then(function (page) {
      renderFeature(root, page);
    });
  };

  function renderFeature(root, page) {
    var row = page.feature, d = page.dictionary;
    var dictionary = d.dictionary, feature = row.feature;
    var n = d.n_features;
    var title = h("div.feature-head",
      h("h1", DN.featureName(dictionary, feature)),
      h("div.nav-prev-next",
        feature > 0 ? h("a", { href: "#/feature/" + dictionary + "/" + (feature - 1) }, "← #" + (feature - 1)) : null,
        feature < n - 1 ? h("a", { href: "#/feature/" + dictionary + "/" + (feature + 1) }, "#" + (feature + 1) + " →") : null));
    var stats = h("table.kv",
      [["kind", d.kind === "sae" ? "SAE latent" : "neuron"], ["site", d.site], ["model", d.model + (d.control ? " (random-init control)" : "")],
       ["max (+ / −)", fmt(row.max) + "  (" + fmt(row.max_plus) + " / " + fmt(row.max_minus) + ")"],
       ["mean", fmt(row.mean)], ["firing (+ / −)", DN.fmtPct(row.frac_active) + " of positions  (" + DN.fmtPct(row.frac_plus) + " / " + DN.fmtPct(row.frac_minus) + ")"],
       ["q50 / q90 / q99", [row.q50, row.q90, row.q99].map(function (x) { return fmt(x); }).join(" / ")],
       ["codon phase 1/2/3", (row.phase || []).map(function (x) { return fmt(x, 2); }).join(" / ") || "–"],
       ["coding-strand share", fmt(row.coding_strand, 2)], ["3-periodicity", fmt(row.periodicity3, 3)],
       ["GC of top windows", fmt(row.gc_top, 3)],
      ].map(function (kv) { return h("tr", h("th", kv[0]), h("td", kv[1])); }));
    var browseTop = page.examples.filter(function (e) { return e.kind === "top"; })[0];
    root.appendChild(h("section.card.feature-summary",
      title,
      h("p.description#description", row.description || "No description."),
      h("p", h("span.badge" + (row.explained ? ".ok" : ".warn"), row.explained ? "explained" : "unexplained"),
        row.best_concept ? [" best concept ", h("a", { href: "#/concept/" + encodeURIComponent(row.best_concept) }, row.best_concept),
                            " (F1 " + fmt(row.best_f1, 3) + ", shuffled " + fmt(row.best_f1_shuffled, 3) + ")"] : null,
        browseTop ? [" · ", h("a#open-in-browser", { href: browseHref(browseTop, dictionary, feature) }, "open its top example in the browser")] : null),
      stats));

    // examples
    var vmax = Math.max.apply(null, page.examples.map(function (e) { return e.activation; }).concat([row.max || 0, 1e-9]));
    var top = page.examples.filter(function (e) { return e.kind === "top"; });
    var quant = page.examples.filter(function (e) { return e.kind !== "top"; });
    var exCard = card("Examples at base resolution",
      h("p.muted", "Each window as the model read it (5′→3′ on its strand); background = activation / the feature's max (",
        DN.colorBar(DN.heat, 0, vmax, "activation", { width: 200 }), "); the peak is outlined. ×n: identical windows collapsed."));
    exCard.appendChild(h("h3", "Top examples"));
    exCard.appendChild(exampleTable(top, vmax, dictionary, feature));
    if (quant.length) {
      exCard.appendChild(h("h3", "Quantile examples (group 0 = strongest)"));
      exCard.appendChild(exampleTable(quant, vmax, dictionary, feature));
    }
    root.appendChild(exCard);

    // histogram + manhattan
    var edges = page.hist_edges.map(function (e) { return e === null ? Infinity : e; });
    root.appendChild(h("div.row",
      card(null, DN.histogramChart(row.hist || [], edges, {})),
      card(null, DN.manhattanChart(row.manhattan || [], page.bin_size, page.records, function (rec, s, e) {
        DN.go("#/browse/" + rec + ":" + s + "-" + e + "?tracks=" + dictionary + "/" + feature);
      }, { width: 620 }))));

    // motif + landmarks
    var motifBox = card("Motif");
    if (page.motif && page.motif.pwm && page.motif.width) {
      motifBox.appendChild(DN.logoChart(page.motif.pwm, page.motif.width, { title: "Consensus " + (page.motif.consensus || "") }));
      motifBox.appendChild(h("p.muted", "Seed ", h("span.mono", page.motif.kmer), ", ", fmt(page.motif.enrichment, 2),
        "× enriched in the top windows over the genome; ", fmt(page.motif.n_sites), " windows aligned."));
    } else {
      motifBox.appendChild(h("p.muted", "No motif found in the top windows."));
    }
    var lmBox = card("Landmark profiles");
    if (page.landmarks.length) {
      var palette = ["#1f6fb4", "#c4342d", "#2a9d8f", "#8d6cab", "#d08a00"];
      var names = [];
      page.landmarks.forEach(function (l) { if (names.indexOf(l.landmark) < 0) names.push(l.landmark); });
      var series = page.landmarks.map(function (l) {
        return { x: l.profile.map(function (_, k) { return l.offset_min + k; }), y: l.profile,
                 color: palette[names.indexOf(l.landmark) % palette.length], dash: l.orientation === "antisense" ? "4 3" : null,
                 label: l.landmark + " " + l.orientation + " (n " + fmt(l.n) + ")" };
      });
      lmBox.appendChild(DN.lineChart(series, { width: 600, height: 220, legend: true, vline: 0,
        title: "Mean activation around landmarks (solid: sense, dashed: antisense)", xlabel: "offset from the landmark (nt, 5′→3′ of its strand)", ylabel: "mean activation" }));
    } else {
      lmBox.appendChild(h("p.muted", "No landmark profiles in this atlas."));
    }
    root.appendChild(h("div.row", motifBox, lmBox));

    // concepts
    var cc = card("Concepts, with their controls");
    if (page.concepts.length) {
      cc.appendChild(h("table.list#concept-table",
        h("thead", h("tr", ["concept", "F1 (test)", "shuffled labels", "random-init model", "best neuron", "precision", "recall", "threshold"].map(function (t) { return h("th", t); }))),
        h("tbody", page.concepts.map(function (c) {
          return h("tr",
            h("td", h("a", { href: "#/concept/" + encodeURIComponent(c.concept) }, c.concept)),
            h("td.num", h("b", fmt(c.f1, 3)), " ", f1Bar(c)),
            f1Cell(c.f1_shuffled, c.f1), f1Cell(c.f1_random_init, c.f1), f1Cell(c.f1_neurons, c.f1),
            h("td.num", fmt(c.precision, 3)), h("td.num", fmt(c.recall, 3)), h("td.num", fmt(c.threshold, 3)));
        }))));
      cc.appendChild(h("p.muted.small", "Bars: F1 of this feature (dark) against the shuffled-labels control (light); a concept counts only beyond its control. A control in red matches or beats the feature."));
    } else {
      cc.appendChild(h("p.muted", "No concept scores for this feature."));
    }
    root.appendChild(cc);

    // relations + audit
    var rel = card("Related features");
    var labels = { rc_partner: "reverse-complement partner", decoder_neighbour: "decoder neighbours (cosine)", meta_parent: "meta-SAE parent",
                   meta_sibling: "meta-SAE siblings", neuron_to_sae: "SAE features reading this neuron", sae_to_neuron: "neurons this SAE feature reads" };
    var groups = {};
    page.relations.forEach(function (r) { (groups[r.relation] = groups[r.relation] || []).push(r); });
    var kinds = Object.keys(groups);
    if (kinds.length) {
      rel.appendChild(h("dl.relations", kinds.map(function (k) {
        return [h("dt", labels[k] || k), h("dd", groups[k].map(function (r) {
          return h("span.chip", featureLink(r.other_dictionary, r.other_feature), r.score !== null && r.score !== undefined ? h("span.muted", " " + fmt(r.score, 2)) : null);
        }))];
      })));
    } else {
      rel.appendChild(h("p.muted", "No relations recorded."));
    }
    var auditKeys = Object.keys(row).filter(function (k) { return k.indexOf("audit") === 0 && row[k] !== null; });
    rel.appendChild(h("h3", "Training-data audit"));
    rel.appendChild(auditKeys.length ? h("table.kv", auditKeys.map(function (k) { return h("tr", h("th", k), h("td", typeof row[k] === "object" ? JSON.stringify(row[k]) : fmt(row[k]))); }))
                                     : h("p.muted", "No audit result for this feature in this atlas (`dnatlas audit search` traces top windows to the training genomes)."));
    root.appendChild(rel);
  }

  function f1Bar(c) {
    var svg = DN.s("svg", { width: 60, height: 10, class: "f1bar" });
    svg.appendChild(DN.s("rect", { x: 0, y: 0, width: 60, height: 10, fill: "#eee" }));
    if (c.f1_shuffled !== null && c.f1_shuffled !== undefined) svg.appendChild(DN.s("rect", { x: 0, y: 5, width: 60 * c.f1_shuffled, height: 5, fill: "#f4a261" }));
    svg.appendChild(DN.s("rect", { x: 0, y: 0, width: 60 * (c.f1 || 0), height: 5, fill: "#264653" }));
    return svg;
  }

  function browseHref(ex, dictionary, feature) {
    // the static export's tracks cover 500 nt either side of an example
    var pad = Math.max(250, Math.round((ex.end - ex.start + 1) * 2));
    return "#/browse/" + ex.record + ":" + Math.max(1, ex.start - pad) + "-" + (ex.end + pad) + "?tracks=" + dictionary + "/" + feature;
  }

  function exampleTable(examples, vmax, dictionary, feature) {
    if (!examples.length) return h("p.muted", "none");
    return h("table.examples", h("tbody", examples.map(function (e) {
      return h("tr",
        h("td.ex-meta",
          h("a", { href: browseHref(e, dictionary, feature), title: "open in the genome browser" }, e.record + ":" + DN.fmtPos(e.start) + "-" + DN.fmtPos(e.end)),
          h("br"), h("span.strand" + (e.strand === "-" ? ".minus" : ".plus"), e.strand === "-" ? "− strand" : "+ strand"),
          " ", h("span.muted", "peak " + fmt(e.activation)),
          e.copies > 1 ? h("span.copies", { title: "identical windows collapsed" }, " ×" + e.copies) : null,
          e.kind !== "top" ? h("span.muted", " q" + e.bin) : null),
        h("td", DN.sequenceView(e, vmax)));
    })));
  }

  // ---------------------------------------------------------------- concepts
  DN.pages.concepts = function (root) {
    return DN.api("concepts").then(function (res) {
      var by = {};
      res.concepts.forEach(function (c) { (by[c.concept] = by[c.concept] || []).push(c); });
      var dicts = DN.meta.dictionaries.map(function (d) { return d.dictionary; }).filter(function (d) {
        return res.concepts.some(function (c) { return c.dictionary === d; });
      });
      root.appendChild(card("Concepts → best features",
        h("p.muted", "For each concept, the feature of each dictionary whose test F1 beats its shuffled-labels control by the most (F1, with the control in brackets)."),
        h("table.list#concepts-table",
          h("thead", h("tr", h("th", "concept"), dicts.map(function (d) { return h("th", d); }))),
          h("tbody", Object.keys(by).sort().map(function (concept) {
            return h("tr", h("td", h("a", { href: "#/concept/" + encodeURIComponent(concept) }, concept)),
              dicts.map(function (d) {
                var c = by[concept].filter(function (x) { return x.dictionary === d; })[0];
                return c ? h("td", featureLink(d, c.feature, "#" + c.feature), " ", h("span.num", fmt(c.f1, 2)), h("span.muted", " (" + fmt(c.f1_shuffled, 2) + ")"))
                         : h("td.muted", "–");
              }));
          })))));
    });
  };

  DN.pages.concept = function (root, arg) {
    var concept = decodeURIComponent(arg);
    return DN.api(["concept", concept]).then(function (res) {
      root.appendChild(card("Concept: " + res.concept,
        h("p.muted", "Features ranked by test F1 beyond the shuffled-labels control, with the random-init model and the best neuron of the same site beside them."),
        h("table.list#concept-features",
          h("thead", h("tr", ["feature", "F1", "shuffled", "random-init", "best neuron", "precision", "recall", "description"].map(function (t) { return h("th", t); }))),
          h("tbody", res.features.map(function (f) {
            return h("tr", h("td", featureLink(f.dictionary, f.feature)),
              h("td.num", h("b", fmt(f.f1, 3))), f1Cell(f.f1_shuffled, f.f1), f1Cell(f.f1_random_init, f.f1), f1Cell(f.f1_neurons, f.f1),
              h("td.num", fmt(f.precision, 3)), h("td.num", fmt(f.recall, 3)), h("td.desc", f.description || ""));
          }))),
        h("p", h("a", { href: "#/features?" + DN.query({ dictionary: DN.state.dictionary, order: "best_f1", desc: true, concept: res.concept }) },
          "List the features of " + DN.state.dictionary + " whose best concept this is"))));
    });
  };

  // ---------------------------------------------------------------- search
  var KMER = /^[ACGTacgt]{3,16}$/;
  var FEATURE = /^(?:(\S+)[#/])?(\d+)$/;

  /** Search hits (live: /api/search; static: over the list rows and concepts). */
  DN.searchHits = function (q) {
    q = (q || "").trim();
    if (!q) return Promise.resolve([]);
    if (!DN.isStatic()) return DN.api("search", { q: q }).then(function (r) { return r.hits; });
    var hits = [];
    var m = FEATURE.exec(q);
    if (m) {
      var num = parseInt(m[2], 10);
      DN.meta.dictionaries.forEach(function (d) {
        if ((!m[1] || m[1] === d.dictionary) && num < d.n_features) hits.push({ type: "feature", dictionary: d.dictionary, feature: num });
      });
    }
    var r = DN.parseRegion(q);
    if (r) hits.push({ type: "region", record: r.chr, start: r.start, end: r.end });
    return Promise.all([DN.api("concepts"), KMER.test(q) ? staticRows(DN.state.dictionary) : Promise.resolve([])]).then(function (res) {
      if (KMER.test(q)) {
        var k = q.toUpperCase(), rc = k.split("").reverse().map(function (c) { return { A: "T", C: "G", G: "C", T: "A" }[c]; }).join("");
        res[1].forEach(function (row) {
          if (row.top_motif && (row.top_motif.indexOf(k) >= 0 || row.top_motif.indexOf(rc) >= 0)) {
            hits.push({ type: "feature", dictionary: row.dictionary, feature: row.feature, motif: row.top_motif });
          }
        });
      }
      var seen = {};
      return staticGenes(q).then(function (genes) {
        hits.push.apply(hits, genes);
        res[0].concepts.forEach(function (c) {
          if (!seen[c.concept] && c.concept.toLowerCase().indexOf(q.toLowerCase()) >= 0) {
            seen[c.concept] = 1;
            hits.push({ type: "concept", concept: c.concept });
          }
        });
        return hits;
      });
    });
  };

  /** Genes by name in a static export: the annotation shards of every record, scanned once. */
  var geneIndex = null;
  function staticGenes(q) {
    if (!/^[A-Za-z][\w.\-]{1,30}$/.test(q) || KMER.test(q)) return Promise.resolve([]);
    if (!geneIndex) {
      var B = DN.meta.static.annotation_bin, calls = [];
      DN.meta.records.forEach(function (r) {
        for (var k = 0; k * B < r.length && calls.length < 400; k++) {
          calls.push(DN.api("annotation", { chr: r.record, start: k * B + 1, end: (k + 1) * B }));
        }
      });
      geneIndex = Promise.all(calls).then(function (parts) {
        var byName = {};
        parts.forEach(function (p) {
          p.features.forEach(function (f) {
            var key = (f.name || "").toLowerCase();
            if (!key) return;
            var old = byName[key];
            // one hit per name: a gene row wins over its CDS
            if (!old || (old.type !== "gene" && f.type === "gene")) byName[key] = f;
          });
        });
        return byName;
      });
    }
    return geneIndex.then(function (byName) {
      var f = byName[q.toLowerCase()];
      return f ? [{ type: "gene", name: f.name, record: f.chr, start: f.start + 1, end: f.end, strand: f.strand }] : [];
    });
  }

  function hitLink(x) {
    if (x.type === "feature") return h("a", { href: "#/feature/" + x.dictionary + "/" + x.feature }, DN.featureName(x.dictionary, x.feature) + (x.motif ? " (motif " + x.motif + ")" : ""));
    if (x.type === "concept") return h("a", { href: "#/concept/" + encodeURIComponent(x.concept) }, "concept " + x.concept);
    var label = (x.type === "gene" ? "gene " + x.name + " " : "") + x.record + ":" + DN.fmtPos(x.start) + "-" + DN.fmtPos(x.end) + (x.strand ? " (" + x.strand + ")" : "");
    return h("a", { href: "#/browse/" + x.record + ":" + x.start + "-" + x.end }, label);
  }

  DN.pages.search = function (root, arg, params) {
    var q = params.q || "";
    return DN.searchHits(q).then(function (hits) {
      root.appendChild(card("Search: “" + q + "”",
        h("p.muted", "Feature ids (317, sae:topk16#317), concepts, genes, 1-based regions (record:start-end) and k-mers (3–16 nt, either strand)." +
          (DN.isStatic() ? " Static export: genes by exact name." : "")),
        hits.length ? h("ul.hits#search-hits", hits.map(function (x) { return h("li", h("span.badge", x.type), " ", hitLink(x)); }))
                    : h("p#search-hits", "Nothing found.")));
    });
  };

  // ---------------------------------------------------------------- live: paste a sequence
  function liveOnly(root, what) {
    root.appendChild(card(what, h("p.note#live-only-note", "This needs the model, so it is live only and hidden in this static export: run `dnatlas explore --atlas ATLAS` to use it.")));
  }

  function sequenceIgv(div, seq, tracks, extra) {
    var fasta = ">query\n" + seq.replace(/(.{80})/g, "$1\n") + "\n";
    var cfgTracks = tracks.map(function (t) {
      var name = DN.featureName(t.dictionary, t.feature);
      return { type: "merged", name: name + "  (+ up, − down)", height: 60, autoscale: true, dnatlas: { dictionary: t.dictionary, feature: t.feature },
               tracks: [{ type: "wig", name: name + " +", color: DN.STRAND_COLORS["+"], features: t.plus },
                        { type: "wig", name: name + " −", color: DN.STRAND_COLORS["-"], features: t.minus.map(function (p) { return Object.assign({}, p, { value: -p.value }); }) }] };
    }).concat(extra || []);
    return igv.createBrowser(div, {
      reference: { id: "query", name: "pasted sequence", fastaURL: "data:text/plain;base64," + btoa(fasta), wholeGenomeView: false },
      locus: "query:1-" + Math.min(seq.length, 2000), loadDefaultGenomes: false, search: false, tracks: cfgTracks,
    }).then(function (b) {
      b.on("trackclick", function (track) {
        var c = track && track.config && track.config.dnatlas;
        if (c && c.dictionary !== undefined) { DN.go("#/feature/" + c.dictionary + "/" + c.feature); return false; }
        return undefined;
      });
      DN.liveBrowsers.push(b);
      return b;
    });
  }
  DN.liveBrowsers = [];

  function cleanSequence(text) {
    return text.split(/\r?\n/).filter(function (l) { return l.charAt(0) !== ">"; }).join("").replace(/\s+/g, "").toUpperCase();
  }

  function liveSaes() {
    return DN.meta.dictionaries.filter(function (d) { return d.live; });
  }

  DN.pages.sequence = function (root) {
    if (!DN.meta.live) return liveOnly(root, "Paste a sequence");
    var saes = liveSaes();
    var max = DN.meta.limits.sequence_max_nt;
    var area = h("textarea#sequence-input", { rows: 6, placeholder: "paste DNA (FASTA or plain, up to " + DN.fmtPos(max) + " nt)", "aria-label": "sequence" });
    var dictSel = h("select", { "aria-label": "dictionary" }, saes.map(function (d) { return h("option", { value: d.dictionary, selected: d.dictionary === DN.state.dictionary }, d.dictionary); }));
    var gramChk = h("input", { type: "checkbox", checked: true });
    var featIn = h("input#sequence-tracks", { type: "text", placeholder: "e.g. 3, 17 (default: the 5 most active)", "aria-label": "features to draw", style: { width: "18em" } });
    var runBtn = h("button#run-sequence", { type: "button" }, "Run the model");
    var counter = h("span.muted", "0 nt");
    var out = h("div#sequence-out");
    area.addEventListener("input", function () { counter.textContent = DN.fmtPos(cleanSequence(area.value).length) + " nt"; });
    root.appendChild(card("Paste a sequence",
      h("p.muted", "Up to " + DN.fmtPos(max) + " nt (IUPAC codes read as N). The model reads both strands; you get each feature's track, the most active features and a Gram map of the first " + DN.fmtPos(DN.meta.limits.gram_max_nt) + " nt."),
      area, h("div.controls", h("label", "dictionary ", dictSel), h("label", "tracks of features ", featIn),
        h("label", gramChk, " Gram map"), runBtn, counter)));
    root.appendChild(out);
    if (!saes.length) { out.appendChild(h("p.note", "No dictionary of this atlas can be run live here.")); return; }
    runBtn.addEventListener("click", function () {
      var seq = cleanSequence(area.value);
      DN.clear(out);
      if (!seq.length) { out.appendChild(h("p.error", "Paste a sequence first.")); return; }
      if (seq.length > max) { out.appendChild(h("p.error", "Too long: " + DN.fmtPos(seq.length) + " nt (at most " + DN.fmtPos(max) + ").")); return; }
      var feats = featIn.value.split(/[\s,]+/).filter(Boolean).map(Number);
      var n = (DN.dictionaries()[dictSel.value] || {}).n_features || 0;
      if (feats.some(function (f) { return !(Number.isInteger(f) && f >= 0 && f < n); }) || feats.length > 20) {
        out.appendChild(h("p.error", "Features: up to 20 numbers in 0.." + (n - 1) + "."));
        return;
      }
      out.appendChild(h("p.muted", "running…"));
      return DN.post("sequence", { sequence: seq, dictionary: dictSel.value, gram: gramChk.checked, top: 20, features: feats }).then(function (res) {
        DN.clear(out);
        var igvDiv = h("div.igv-host#sequence-igv");
        out.appendChild(card((feats.length ? "Tracks of features " + feats.join(", ") : "Tracks of the 5 most active features") +
                             " (" + DN.fmtPos(res.length) + " nt)", igvDiv));
        out.appendChild(card("Most active features",
          h("table.list#sequence-features",
            h("thead", h("tr", ["feature", "max", "max +", "max −", "mean", "firing", "description"].map(function (t) { return h("th", t); }))),
            h("tbody", res.features.map(function (f) {
              return h("tr", h("td", featureLink(res.dictionary, f.feature, "#" + f.feature)), h("td.num", fmt(f.max)), h("td.num", fmt(f.max_plus)), h("td.num", fmt(f.max_minus)),
                h("td.num", fmt(f.mean)), h("td.num", DN.fmtPct(f.frac_active)), h("td.desc", f.description || ""));
            })))));
        if (res.gram) {
          var gbox = card("Gram-matrix map of the pasted sequence");
          DN.drawGram(gbox, res.gram, {});
          out.appendChild(gbox);
        }
        return sequenceIgv(igvDiv, seq, res.tracks);
      }).catch(function (e) { DN.clear(out).appendChild(h("p.error", "Failed: " + e.message)); });
    });
  };

  // ---------------------------------------------------------------- live: steering
  DN.pages.steer = function (root, arg, params) {
    if (!DN.meta.live) return liveOnly(root, "Steering");
    var saes = liveSaes();
    var meta = DN.meta;
    var region = DN.parseRegion(params.region || "") || DN.currentRegion() ||
      { chr: meta.records[0].record, start: 1, end: Math.min(meta.records[0].length, 300) };
    if (region.end - region.start + 1 > meta.limits.steer_max_nt) region.end = region.start + meta.limits.steer_max_nt - 1;
    var dictSel = h("select", { "aria-label": "dictionary" }, saes.map(function (d) { return h("option", { value: d.dictionary, selected: d.dictionary === DN.state.dictionary }, d.dictionary); }));
    var regionIn = h("input.locus#steer-region", { type: "text", value: DN.regionText(region), "aria-label": "region" });
    var edits = h("div.edits");
    function editRow(e) {
      var f = h("input.edit-feature", { type: "number", min: 0, value: e.feature, style: { width: "6em" }, "aria-label": "feature" });
      var op = h("select.edit-op", { "aria-label": "operation" }, [["set_max", "set to × its max"], ["set", "set to"], ["add", "add"]].map(function (o) {
        return h("option", { value: o[0], selected: o[0] === e.op }, o[1]);
      }));
      var v = h("input.edit-value", { type: "number", step: "any", value: e.value, style: { width: "6em" }, "aria-label": "value" });
      var row = h("div.edit-row", "feature ", f, " ", op, " ", v, " ",
        h("button.x", { type: "button", "aria-label": "remove edit", onclick: function () { if (edits.children.length > 1) row.remove(); } }, "×"));
      edits.appendChild(row);
    }
    editRow({ feature: parseInt(params.feature || "0", 10) || 0, op: "set_max", value: 2 });
    var codons = h("input#steer-codons", { type: "checkbox" });
    var frameIn = h("input", { type: "number", min: 1, value: region.start, style: { width: "8em" }, "aria-label": "frame start" });
    var frameStrand = h("select", { "aria-label": "frame strand" }, h("option", "+"), h("option", "-"));
    var runBtn = h("button#run-steer", { type: "button" }, "Steer");
    var out = h("div#steer-out");
    root.appendChild(card("Steering",
      h("p.muted", "Edit SAE features over a region (the SAE's reconstruction error is added back) and see how the masked-nucleotide predictions change there. At most " +
        meta.limits.steer_max_edits + " edits over " + DN.fmtPos(meta.limits.steer_max_nt) + " nt."),
      h("div.controls", h("label", "dictionary ", dictSel), h("label", "region ", regionIn)),
      edits,
      h("div.controls", h("button", { type: "button", onclick: function () { if (edits.children.length < meta.limits.steer_max_edits) editRow({ feature: 0, op: "set_max", value: 2 }); } }, "+ edit"),
        h("label", codons, " codon and amino-acid changes, frame from "), frameIn, frameStrand, runBtn)));
    root.appendChild(out);
    if (!saes.length) { out.appendChild(h("p.note", "No SAE of this atlas can be run live here.")); return; }
    runBtn.addEventListener("click", function () {
      var r = DN.parseRegion(regionIn.value);
      DN.clear(out);
      if (!r) { out.appendChild(h("p.error", "Region as record:start-end, 1-based.")); return; }
      var list = Array.prototype.map.call(edits.children, function (row) {
        return { feature: parseInt(row.querySelector(".edit-feature").value, 10), op: row.querySelector(".edit-op").value,
                 value: parseFloat(row.querySelector(".edit-value").value) };
      });
      var body = { dictionary: dictSel.value, chr: r.chr, start: r.start, end: r.end, edits: list, codons: codons.checked };
      if (codons.checked) { body.frame_start = parseInt(frameIn.value, 10); body.frame_strand = frameStrand.value; }
      out.appendChild(h("p.muted", "steering…"));
      return DN.post("steer", body).then(function (res) { renderSteer(out, res); })
        .catch(function (e) { DN.clear(out).appendChild(h("p.error", "Failed: " + e.message)); });
    });
  };

  function renderSteer(out, res) {
    DN.clear(out);
    var igvDiv = h("div.igv-host#steer-igv");
    var tracks = [
      ["delta_nt", "Δ nucleotide distribution (total variation)", "#7b2cbf"],
      ["delta_ref", "Δ log p(reference base), nats", "#c4342d"],
      ["delta_codon", "Δ codon distribution", "#2a9d8f"],
      ["delta_aa", "Δ amino-acid distribution", "#d08a00"],
    ].filter(function (t) { return res[t[0]] && res[t[0]].length; }).map(function (t) {
      return { type: "wig", name: t[1], color: t[2], height: 55, features: res[t[0]], autoscale: true };
    });
    out.appendChild(card("Change in predictions over " + res.chr + ":" + DN.fmtPos(res.start) + "-" + DN.fmtPos(res.end),
      h("p.muted", "Edits: " + res.edits.map(function (e) { return "#" + e.feature + " " + e.op + " " + e.value; }).join(", ") + " on " + res.dictionary + "."),
      igvDiv,
      h("h3", "Most changed positions"),
      h("table.list#steer-top",
        h("thead", h("tr", ["position", "ref", "before A C G T", "after A C G T"].map(function (t) { return h("th", t); }))),
        h("tbody", (res.top || []).map(function (t) {
          var pr = function (p) { return (p || []).map(function (x) { return fmt(x, 2); }).join(" "); };
          return h("tr", h("td.num", DN.fmtPos(t.pos)), h("td.mono", t.ref), h("td.mono", pr(t.before)), h("td.mono", pr(t.after)));
        })))));
    var pad = Math.max(20, Math.round((res.end - res.start) * 0.1));
    igv.createBrowser(igvDiv, {
      reference: DN.referenceConfig(), locus: res.chr + ":" + Math.max(1, res.start - pad) + "-" + (res.end + pad),
      loadDefaultGenomes: false, search: false, tracks: [DN.intervalTrackConfig("annotation")].concat(tracks),
      roi: [{ name: "steered region", color: "rgba(123,44,191,0.08)", features: [{ chr: res.chr, start: res.start - 1, end: res.end }] }],
    }).then(function (b) { DN.liveBrowsers.push(b); });
  }
})();
