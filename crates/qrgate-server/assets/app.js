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
