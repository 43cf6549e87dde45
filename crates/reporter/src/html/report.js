"use strict";
// The matrix and its filters. Every string comes from the embedded JSON and
// is set as textContent or title, never as markup. The filters live in the
// URL's hash (#result=DRIFTED&ou=…&role=…&q=…), so a link shows a view.
(function () {
  var data = JSON.parse(document.getElementById("data").textContent);
  var LIMIT = 1000;
  var el = function (id) { return document.getElementById(id); };
  var fResult = el("f-result"), fOu = el("f-ou"), fRole = el("f-role"), fSearch = el("f-search");
  var options = function (select, values) {
    values.forEach(function (v) {
      var o = document.createElement("option");
      o.value = v; o.textContent = v;
      select.appendChild(o);
    });
  };
  var uniq = function (list) { return list.filter(function (v, i) { return list.indexOf(v) === i; }).sort(); };
  options(fResult, data.results.map(function (r) { return r[0]; }));
  options(fOu, uniq(data.accounts.map(function (a) { return a[2]; })));
  options(fRole, uniq(data.columns.map(function (c) { return c[0]; })));

  var head = document.querySelector("#grid thead"), body = document.querySelector("#grid tbody");
  function render() {
    var started = performance.now();
    var result = fResult.value, ou = fOu.value, role = fRole.value, q = fSearch.value.trim().toLowerCase();
    var cols = [];
    data.columns.forEach(function (c, i) { if (!role || c[0] === role) cols.push(i); });
    var tr = document.createElement("tr");
    ["Account", "Name", "OU"].concat(cols.map(function (i) {
      var c = data.columns[i];
      return c[0] === "-" ? "account" : c[0] + " / " + c[1];
    })).forEach(function (t) {
      var th = document.createElement("th"); th.textContent = t; tr.appendChild(th);
    });
    head.replaceChildren(tr);
    var matches = data.accounts.filter(function (a) {
      if (ou && a[2] !== ou) return false;
      var cells = a[3].filter(function (c) { return cols.indexOf(c[0]) >= 0; });
      if (!cells.length) return false;
      if (result && !cells.some(function (c) { return data.results[c[1]][0] === result; })) return false;
      if (q && a[0].indexOf(q) < 0 && a[1].toLowerCase().indexOf(q) < 0
          && !cells.some(function (c) { return c[2].toLowerCase().indexOf(q) >= 0; })) return false;
      return true;
    });
    var rows = document.createDocumentFragment();
    matches.slice(0, LIMIT).forEach(function (a) {
      var row = document.createElement("tr");
      row.setAttribute("data-account", a[0]);
      [a[0], a[1], a[2]].forEach(function (t, i) {
        var td = document.createElement("td"); td.textContent = t;
        if (i === 0) td.className = "acct";
        row.appendChild(td);
      });
      var byCol = {};
      a[3].forEach(function (c) { byCol[c[0]] = c; });
      cols.forEach(function (i) {
        var td = document.createElement("td"), c = byCol[i];
        if (c) {
          var r = data.results[c[1]];
          td.className = "cell " + r[1];
          td.textContent = r[0];
          td.title = c[2];
          td.setAttribute("data-result", r[0]);
        } else {
          td.className = "cell empty";
        }
        row.appendChild(td);
      });
      rows.appendChild(row);
    });
    body.replaceChildren(rows);
    el("shown").textContent = matches.length + " of " + data.accounts.length + " accounts";
    el("more").textContent = matches.length > LIMIT
      ? "The first " + LIMIT + " are shown: narrow the filters or search to see the others." : "";
    document.body.setAttribute("data-render-ms", Math.round(performance.now() - started));
    var hash = [["result", result], ["ou", ou], ["role", role], ["q", q]]
      .filter(function (p) { return p[1]; })
      .map(function (p) { return p[0] + "=" + encodeURIComponent(p[1]); }).join("&");
    if (("#" + hash) !== location.hash && (hash || location.hash)) history.replaceState(null, "", hash ? "#" + hash : location.pathname);
  }
  var set = function (select, value) {
    if (Array.prototype.some.call(select.options, function (o) { return o.value === value; })) select.value = value;
  };
  location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
    var kv = pair.split("="), v = decodeURIComponent(kv[1] || "");
    if (kv[0] === "result") set(fResult, v);
    if (kv[0] === "ou") set(fOu, v);
    if (kv[0] === "role") set(fRole, v);
    if (kv[0] === "q") fSearch.value = v;
  });
  [fResult, fOu, fRole].forEach(function (s) { s.addEventListener("change", render); });
  fSearch.addEventListener("input", render);
  render();
})();
