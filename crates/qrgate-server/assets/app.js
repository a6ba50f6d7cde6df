// qrgate pages: progressive enhancement only (every page works without it).
// The cashier's order page: a countdown to the code's expiry, and its
// status live over Server-Sent Events (turns to paid without a reload).
"use strict";
(function () {
  function orderPage() {
    var order = document.getElementById("order");
    if (!order) { return; }
    var statusEl = document.getElementById("status");
    var countdown = document.getElementById("countdown");
    var expires = Date.parse(order.getAttribute("data-expires"));
    var unit = countdown ? countdown.getAttribute("data-unit") : "s";
    function show(status) {
      order.setAttribute("data-status", status);
      var text = statusEl.getAttribute("data-" + status);
      if (text) { statusEl.textContent = text; }
    }
    function tick() {
      if (!countdown) { return; }
      var left = Math.max(0, Math.ceil((expires - Date.now()) / 1000));
      countdown.textContent = left + " " + unit;
      if (order.getAttribute("data-status") === "open") { window.setTimeout(tick, 250); }
    }
    tick();
    if (order.getAttribute("data-status") !== "open" || !window.EventSource) { return; }
    var id = order.getAttribute("data-order");
    var events = new EventSource("/web/cashier/orders/" + encodeURIComponent(id) + "/events");
    events.addEventListener("status", function (e) {
      show(e.data);
      if (e.data !== "open") { events.close(); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", orderPage);
  } else {
    orderPage();
  }
})();
// A payment's page: its status live (a payment waiting for the payer's
// confirmation turns to succeeded without a reload).
(function () {
  function paymentPage() {
    var pay = document.getElementById("payment");
    if (!pay || !window.EventSource) { return; }
    var statusEl = document.getElementById("pay-status");
    var code = document.getElementById("status-code");
    if (pay.getAttribute("data-status") !== "requires_action") { return; }
    var id = pay.getAttribute("data-payment");
    var events = new EventSource("/web/payments/" + encodeURIComponent(id) + "/events");
    events.addEventListener("status", function (e) {
      pay.setAttribute("data-status", e.data);
      var text = statusEl.getAttribute("data-" + e.data);
      if (text) { statusEl.textContent = text; }
      if (code) { code.textContent = e.data; }
      if (e.data !== "requires_action") { events.close(); }
    });
  }
  // The console's recent payments, kept current.
  function consoleList() {
    var recent = document.getElementById("recent");
    if (!recent || !window.EventSource) { return; }
    var events = new EventSource(recent.getAttribute("data-live"));
    events.addEventListener("payments", function (e) {
      var rows = JSON.parse(e.data);
      var table = document.getElementById("recent-table");
      if (!table) { return; }
      var body = table.tBodies[0];
      while (body.firstChild) { body.removeChild(body.firstChild); }
      rows.forEach(function (r) {
        var tr = document.createElement("tr");
        var a = document.createElement("a");
        a.href = "/web/payments/" + encodeURIComponent(r.id);
        var c = document.createElement("code");
        c.textContent = r.id;
        a.appendChild(c);
        var cells = [a, r.amount, r.status, r.created_at];
        cells.forEach(function (v, i) {
          var td = document.createElement("td");
          if (typeof v === "string") { td.textContent = v; } else { td.appendChild(v); }
          if (i === 1) { td.className = "num"; }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
    });
  }
  function start() { paymentPage(); consoleList(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
// The wallet: a countdown on the payment code, and a new code (from the
// gateway) a few seconds before it runs out, shown in place. A failed
// fetch is tried again later and later (up to 30 s, or as Retry-After
// says); a code that ran out is greyed and says so; a session that ended
// reloads the page (to the sign-in).
(function () {
  function walletPage() {
    var box = document.getElementById("paycode");
    if (!box || !window.fetch) { return; }
    var left = document.getElementById("paycode-left");
    var stale = document.getElementById("paycode-stale");
    var unit = left.getAttribute("data-unit");
    var expires = Date.parse(box.getAttribute("data-expires"));
    var fetching = false;
    var notBefore = 0;
    var wait = 1000;
    function renew() {
      fetching = true;
      fetch("/web/wallet/code", { cache: "no-store", credentials: "same-origin" })
        .then(function (r) {
          if (r.redirected) { window.location.reload(); return Promise.reject("signed out"); }
          if (!r.ok) {
            var after = Number(r.headers.get("retry-after"));
            wait = after > 0 ? after * 1000 : Math.min(wait * 2, 30000);
            return Promise.reject(r.status);
          }
          return r.json();
        })
        .then(function (c) {
          document.getElementById("paycode-qr").innerHTML = c.svg;
          document.getElementById("paycode-digits").textContent = c.numeric;
          box.setAttribute("data-expires", c.expires_at);
          box.classList.remove("stale");
          stale.hidden = true;
          expires = Date.parse(c.expires_at);
          wait = 1000;
        })
        .catch(function () { notBefore = Date.now() + wait; })
        .then(function () { fetching = false; });
    }
    function tick() {
      var secs = Math.max(0, Math.ceil((expires - Date.now()) / 1000));
      left.textContent = secs + " " + unit;
      if (secs === 0) { box.classList.add("stale"); stale.hidden = false; }
      var margin = Math.min(5, Math.floor(Number(box.getAttribute("data-valid")) / 2));
      if (secs <= margin && !fetching && Date.now() >= notBefore) { renew(); }
      window.setTimeout(tick, 500);
    }
    tick();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", walletPage);
  } else {
    walletPage();
  }
})();
