// The sync dashboard refreshes its content in place every N seconds (no full reload); the refresh can be paused,
// and the choice is remembered in this browser.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const content = document.getElementById("dashboard-content");
  const toggle = document.getElementById("refresh-toggle");
  const state = document.getElementById("refresh-state");
  const stamp = document.getElementById("refreshed-at");
  const seconds = parseInt(root.dataset.refreshSeconds, 10) || 30;
  const url = root.dataset.partialUrl;
  const KEY = "zoho-sync-dashboard-paused";
  let timer = null;

  function paused() { return window.localStorage.getItem(KEY) === "1"; }

  function show() {
    toggle.textContent = paused() ? "Resume refresh" : "Pause refresh";
    state.textContent = paused() ? "Refresh paused" : "Refreshes every " + seconds + " s";
    root.classList.toggle("paused", paused());
  }

  async function refresh() {
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
      if (response.redirected || !response.ok) {
        stamp.textContent = "Refresh failed (" + response.status + "); reload the page.";
        return;
      }
      content.innerHTML = await response.text();
      stamp.textContent = "Updated " + new Date().toLocaleTimeString();
      root.dataset.refreshes = String((parseInt(root.dataset.refreshes, 10) || 0) + 1);
    } catch (error) {
      stamp.textContent = "Refresh failed: " + error + "; will try again.";
    }
  }

  function schedule() {
    if (timer) window.clearInterval(timer);
    timer = paused() ? null : window.setInterval(refresh, seconds * 1000);
  }

  toggle.addEventListener("click", function () {
    window.localStorage.setItem(KEY, paused() ? "0" : "1");
    show();
    schedule();
  });
  show();
  schedule();
})();
