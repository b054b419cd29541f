/* dnatlas explorer: hash routing, the header (model switch, search) and start-up.
 *
 * Routes (shareable URLs):
 *   #/                                  overview
 *   #/features?dictionary=&order=&desc=&explained=&concept=&text=&offset=
 *   #/feature/<dictionary>/<n>
 *   #/concepts, #/concept/<concept>
 *   #/browse/<record>:<start>-<end>?tracks=<dictionary>/<n>,...
 *   #/search?q=
 *   #/sequence, #/steer?region=&feature=     (live only)
 */
(function () {
  "use strict";
  var DN = (window.DN = window.DN || {});
  DN.pages = DN.pages || {};
  var h = DN.h;
  DN.state = { dictionary: null };

  DN.query = function (params) {
    return Object.keys(params).filter(function (k) {
      return params[k] !== null && params[k] !== undefined && params[k] !== "";
    }).map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  };

  DN.go = function (hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  };
  var replacing = false;
  DN.replaceHash = function (hash) {
    // change the URL without re-rendering (the browser's own navigation)
    replacing = true;
    var ready = document.body.getAttribute("data-hash") === location.hash;
    history.replaceState(null, "", hash);
    if (ready) document.body.setAttribute("data-hash", location.hash);
    replacing = false;
  };

  var dictIndex = null;
  DN.dictionaries = function () {
    if (!dictIndex) {
      dictIndex = {};
      DN.meta.dictionaries.forEach(function (d) { dictIndex[d.dictionary] = d; });
    }
    return dictIndex;
  };

  /** A <select> of every dictionary, grouped by model (controls last). */
  DN.dictionarySelect = function (value, attrs) {
    var groups = {};
    DN.meta.dictionaries.forEach(function (d) {
      var g = (d.model || "model") + (d.control ? " (random-init control)" : "");
      (groups[g] = groups[g] || []).push(d);
    });
    return h("select", Object.assign({ "aria-label": "dictionary" }, attrs || {}), Object.keys(groups).map(function (g) {
      return h("optgroup", { label: g }, groups[g].map(function (d) {
        return h("option", { value: d.dictionary, selected: d.dictionary === value },
          d.dictionary + " (" + (d.kind === "sae" ? "SAE" : "neurons") + ", " + d.n_features + ")");
      }));
    }));
  };

  DN.setDictionary = function (dictionary, quiet) {
    DN.state.dictionary = dictionary;
    var sel = document.getElementById("model-switch");
    if (sel && sel.value !== dictionary) sel.value = dictionary;
    try { localStorage.setItem("dnatlas.dictionary", dictionary); } catch (e) { /* file:// may refuse */ }
    if (!quiet) {
      var r = parseHash();
      if (r.page === "features") DN.go("#/features?" + DN.query(Object.assign({}, r.params, { dictionary: dictionary, offset: "" })));
    }
  };

  function parseHash() {
    var raw = location.hash.replace(/^#\/?/, "");
    var qi = raw.indexOf("?");
    var path = qi >= 0 ? raw.slice(0, qi) : raw, qs = qi >= 0 ? raw.slice(qi + 1) : "";
    var params = {};
    qs.split("&").filter(Boolean).forEach(function (kv) {
      var i = kv.indexOf("=");
      var k = decodeURIComponent(i >= 0 ? kv.slice(0, i) : kv), v = i >= 0 ? decodeURIComponent(kv.slice(i + 1).replace(/\+/g, " ")) : "";
      params[k] = v;
    });
    var slash = path.indexOf("/");
    var page = slash >= 0 ? path.slice(0, slash) : path;
    var arg = slash >= 0 ? decodeURIComponent(path.slice(slash + 1)) : "";
    return { page: page || "home", arg: arg, params: params };
  }

  // ---------------------------------------------------------------- overview
  DN.pages.home = function (root) {
    var meta = DN.meta;
    var total = (meta.records || []).reduce(function (a, r) { return a + r.length; }, 0);
    root.appendChild(h("section.card",
      h("h1", meta.title || "dnatlas explorer"),
      h("p", "Model ", h("b", meta.model || "–"), " on ", h("b", meta.genome || "the genome"), ": ",
        DN.fmtPos((meta.records || []).length), " record(s), ", DN.fmtPos(total), " nt. ",
        meta.live ? "Live server: tracks, Gram maps, pasted sequences and steering run the model." :
                    "Static export: every page is precomputed; the Gram map, pasted sequences and steering need the live server."),
      h("table.list#dictionaries",
        h("thead", h("tr", ["dictionary", "kind", "site", "features", "model", ""].map(function (t) { return h("th", t); }))),
        h("tbody", meta.dictionaries.map(function (d) {
          return h("tr", h("td", h("a", { href: "#/features?dictionary=" + encodeURIComponent(d.dictionary) }, d.dictionary)),
            h("td", d.kind === "sae" ? "SAE" : "neurons"), h("td", d.site), h("td.num", DN.fmt(d.n_features)),
            h("td", (d.model || "–") + (d.control ? " (random-init control)" : "")),
            h("td", h("a", { href: "#/features?" + DN.query({ dictionary: d.dictionary, order: "score_unexplained", desc: true, explained: "false" }) }, "strong but unexplained")));
        }))),
      h("ul.start",
        h("li", h("a", { href: "#/browse/" + meta.records[0].record + ":1-" + Math.min(5000, meta.records[0].length) }, "Browse the genome"), " with annotation, concept labels and any feature's activations (both strands)."),
        h("li", h("a", { href: "#/concepts" }, "Concepts"), ": which features match which biology, against shuffled-label and random-init controls."),
        meta.live ? h("li", h("a", { href: "#/sequence" }, "Paste a sequence"), " or ", h("a", { href: "#/steer" }, "steer features"), ".") : null)));
  };

  // ---------------------------------------------------------------- routing
  var main;
  var seq = 0;

  function route() {
    if (replacing) return;
    var r = parseHash();
    var render = DN.pages[r.page];
    var mine = ++seq;
    // the browse page keeps its igv across visits (it is re-attached); other igv browsers go
    DN.liveBrowsers.splice(0).forEach(function (b) { try { igv.removeBrowser(b); } catch (e) { /* gone */ } });
    DN.clear(main);
    document.querySelectorAll("nav a[data-page]").forEach(function (a) {
      a.classList.toggle("on", a.getAttribute("data-page") === r.page || (r.page === "feature" && a.getAttribute("data-page") === "features"));
    });
    if (!render) {
      main.appendChild(h("section.card", h("h2", "Not found"), h("p", "No page “" + r.page + "”. ", h("a", { href: "#/" }, "Overview"))));
      return Promise.resolve();
    }
    var page = h("div.page.page-" + r.page);
    main.appendChild(page);
    document.body.setAttribute("data-page", r.page);
    document.body.removeAttribute("data-ready");
    return Promise.resolve().then(function () { return render(page, r.arg, r.params); }).catch(function (e) {
      page.appendChild(h("section.card.error-card", h("h2", "Could not load this page"), h("p.error", (e && e.message) || String(e))));
    }).then(function () {
      if (mine === seq) {
        // what the tests wait for: this page, rendered for this very URL
        document.body.setAttribute("data-hash", location.hash);
        document.body.setAttribute("data-ready", r.page);
      }
    });
  }
  DN.route = route;

  function header() {
    var meta = DN.meta;
    var sw = DN.dictionarySelect(DN.state.dictionary, { id: "model-switch", title: "model / dictionary" });
    sw.addEventListener("change", function () { DN.setDictionary(sw.value); });
    var search = h("input#search-box", { type: "search", placeholder: "feature id, gene, concept, region, k-mer", "aria-label": "search" });
    var form = h("form.search", { onsubmit: function (e) {
      e.preventDefault();
      var q = search.value.trim();
      if (!q) return;
      var region = DN.parseRegion(q);
      if (region) return DN.go("#/browse/" + DN.regionKey(region));
      DN.go("#/search?" + DN.query({ q: q }));
    } }, search);
    var links = [["home", "#/", "Overview"], ["features", "#/features", "Features"], ["concepts", "#/concepts", "Concepts"],
                 ["browse", "#/browse/", "Browser"], ["sequence", "#/sequence", "Sequence"], ["steer", "#/steer", "Steering"]];
    var nav = h("nav", links.map(function (l) {
      var a = h("a", { href: l[1], "data-page": l[0] }, l[2]);
      if (!meta.live && (l[0] === "sequence" || l[0] === "steer")) { a.classList.add("disabled"); a.title = "live only"; }
      return a;
    }));
    nav.querySelector('[data-page="features"]').addEventListener("click", function (e) {
      e.preventDefault();
      DN.go("#/features?dictionary=" + encodeURIComponent(DN.state.dictionary));
    });
    return h("header.top",
      h("a.brand", { href: "#/" }, "dnatlas", h("span", " explorer")),
      nav, h("label.switch", "model ", sw), form,
      h("span.mode" + (meta.live ? ".live" : ".static"), meta.live ? "live" : "static"));
  }

  function start() {
    var body = document.body;
    main = h("main#main");
    var metaPromise = DN.isStatic() ? DN.api("meta") : DN.api("meta");
    metaPromise.then(function (meta) {
      DN.meta = meta;
      var saved = null;
      try { saved = localStorage.getItem("dnatlas.dictionary"); } catch (e) { /* file:// */ }
      var dicts = DN.dictionaries();
      DN.state.dictionary = dicts[saved] ? saved : meta.dictionaries[0].dictionary;
      document.title = (meta.title || "dnatlas explorer");
      body.appendChild(header());
      body.appendChild(main);
      body.appendChild(h("footer", "dnatlas " + meta.version + " · atlas schema " + meta.schema_version +
        " · coordinates 1-based, closed · genome browser: igv.js " + (window.igv && igv.version ? igv.version() : "")));
      window.addEventListener("hashchange", route);
      return route();
    }).catch(function (e) {
      body.appendChild(h("section.card.error-card", h("h2", "The explorer could not start"), h("p.error", (e && e.message) || String(e))));
      body.setAttribute("data-ready", "error");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
