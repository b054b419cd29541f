/* dnatlas explorer: the one way to the data.
 *
 * Live (served by `dnatlas explore`): DN.api(path, params) -> fetch("/api/" + path).
 * Static (window.DNATLAS_STATIC, set by the export's data/index.js): the same call injects
 * <script src="data/<key>.js">, whose content calls dnatlasData(key, json); classic
 * scripts load from file:// too, where fetch is blocked. key = DN.shardKey(path, params),
 * the rule of dnatlas.explorer.shards.shard_key.
 */
(function () {
  "use strict";
  var DN = (window.DN = window.DN || {});

  // ---------------------------------------------------------------- the shard key
  function fnv1a32(text) {
    var bytes = new TextEncoder().encode(text);
    var h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) {
      h ^= bytes[i];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, "0");
  }

  function valueText(v) {
    if (v === true) return "true";
    if (v === false) return "false";
    return String(v);
  }

  function canonical(path, params) {
    if (path.indexOf("/api/") === 0) path = path.slice(5);
    else if (path.charAt(0) === "/") path = path.slice(1);
    var items = [];
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v === null || v === undefined) return;
      var s = valueText(v);
      if (s === "") return;
      items.push([k, s]);
    });
    // code-point order on (name, value), as Python's sorted() on tuples
    items.sort(function (a, b) {
      if (a[0] !== b[0]) return cmp(a[0], b[0]);
      return cmp(a[1], b[1]);
    });
    if (!items.length) return path;
    return path + "?" + items.map(function (kv) { return kv[0] + "=" + kv[1]; }).join("&");
  }

  function cmp(a, b) {
    // code-point (not UTF-16 unit) comparison
    var A = Array.from(a), B = Array.from(b);
    for (var i = 0; i < Math.min(A.length, B.length); i++) {
      var x = A[i].codePointAt(0), y = B[i].codePointAt(0);
      if (x !== y) return x < y ? -1 : 1;
    }
    return A.length === B.length ? 0 : (A.length < B.length ? -1 : 1);
  }

  function shardKey(path, params) {
    var text = canonical(path, params);
    var safe = Array.from(text).map(function (c) {
      return /^[A-Za-z0-9._-]$/.test(c) ? c : "_";
    }).join("").slice(0, 80);
    return safe + "-" + fnv1a32(text);
  }

  DN.fnv1a32 = fnv1a32;
  DN.canonical = canonical;
  DN.shardKey = shardKey;

  // ---------------------------------------------------------------- static shards
  var shards = {};   // key -> {promise, resolve, reject, data}

  function slot(key) {
    var s = shards[key];
    if (!s) {
      s = shards[key] = {};
      s.promise = new Promise(function (resolve, reject) {
        s.resolve = resolve;
        s.reject = reject;
      });
    }
    return s;
  }

  // called by every data/<key>.js
  window.dnatlasData = function (key, data) {
    var s = slot(key);
    s.data = data;
    s.resolve(data);
  };

  DN.isStatic = function () { return !!window.DNATLAS_STATIC; };

  function loadShard(key) {
    var s = slot(key);
    if (s.data !== undefined || s.script) return s.promise;
    var el = document.createElement("script");
    el.src = "data/" + key + ".js";
    el.async = true;
    el.onerror = function () {
      s.script = null;
      s.reject(new DN.ApiError(404, "not in this static export (" + key + ")"));
    };
    s.script = el;
    document.head.appendChild(el);
    return s.promise;
  }

  // ---------------------------------------------------------------- the API
  DN.ApiError = function (status, message) {
    this.status = status;
    this.message = message;
  };
  DN.ApiError.prototype = Object.create(Error.prototype);
  DN.ApiError.prototype.name = "ApiError";

  var cache = new Map();

  function query(params) {
    var parts = [];
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v === null || v === undefined || valueText(v) === "") return;
      parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(valueText(v)));
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  /** GET api/<path>?params: a promise of the JSON (cached per request). ``path`` is a
   *  string ("feature/sae:x/3") or its segments (["concept", "a/b"]: a name holding "/"
   *  stays one URL segment). */
  DN.api = function (path, params) {
    var segments = Array.isArray(path) ? path.map(String) : null;
    if (segments) path = segments.join("/");
    var key = shardKey(path, params);
    if (cache.has(key)) return cache.get(key);
    var p;
    if (DN.isStatic()) {
      p = loadShard(key);
    } else {
      var url = segments ? segments.map(encodeURIComponent).join("/") : encodePath(path);
      p = fetch("api/" + url + query(params)).then(readJson);
    }
    p = p.catch(function (err) { cache.delete(key); throw err; });
    cache.set(key, p);
    return p;
  };

  /** POST api/<path> with a JSON body (live only). */
  DN.post = function (path, body) {
    if (DN.isStatic()) {
      return Promise.reject(new DN.ApiError(400, "live only: not in a static export"));
    }
    return fetch("api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(readJson);
  };

  function readJson(resp) {
    return resp.json().catch(function () { return {}; }).then(function (data) {
      if (!resp.ok) {
        var msg = data && (data.error || data.detail);
        if (typeof msg !== "string") msg = JSON.stringify(msg || resp.statusText);
        throw new DN.ApiError(resp.status, msg);
      }
      return data;
    });
  }
})();
