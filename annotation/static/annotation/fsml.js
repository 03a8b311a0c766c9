// fsml: the small script of every server-rendered page (annotation/base.html loads it).
// - <time datetime="ISO"> elements show their moment in the reader's locale and time zone; the server's text
//   ("2026-12-07 14:03 UTC") stays as the title, so the exact moment is one hover away. A relative time
//   (<time data-relative>, "3 hours ago") is left as it is.
// - The top bar's menus (<details class="menu">) close on Escape and on a click outside them.
(function () {
  "use strict";
  const long = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

  function localiseTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      if (el.dataset.localised || el.hasAttribute("data-relative")) continue; // "3 hours ago" stays as it is
      const iso = el.getAttribute("datetime");
      const moment = new Date(iso);
      if (Number.isNaN(moment.getTime())) continue;
      if (!el.title) el.title = el.textContent.trim();
      el.textContent = /^\d{4}-\d{2}-\d{2}$/.test(iso) ? dateOnly.format(moment) : long.format(moment);
      el.dataset.localised = "1";
    }
  }

  function closeMenus(except) {
    for (const menu of document.querySelectorAll("details.menu[open]")) {
      if (menu !== except) menu.removeAttribute("open");
    }
  }

  document.addEventListener("click", (event) => {
    closeMenus(event.target instanceof Element ? event.target.closest("details.menu") : null);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const open = document.querySelector("details.menu[open]");
    if (!open) return;
    open.removeAttribute("open");
    open.querySelector("summary")?.focus();
  });

  function start() {
    localiseTimes(document);
    // Pages that add rows later (job tables that poll) get their times localised too; not the labelling app,
    // which renders its own.
    if (document.getElementById("annotation-app")) return;
    new MutationObserver(() => localiseTimes(document)).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
