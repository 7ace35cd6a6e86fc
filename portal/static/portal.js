// What every page shares when scripts run (every page also works without them).
// 1. The one form pattern (docs/adr/0038): focus moves to the error summary when the page opens.
// 2. WCAG 2.2.1 Timing Adjustable: before the session ends a dialog warns and offers
//    "Verleng sessie" (keyboard: the button has focus; Escape closes the dialog). Extending posts
//    the page's CSRF token to /sessie/verleng, which counts as activity.
// 3. Print buttons (data-print) print the page.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector("[data-focus]");
  if (summary) {
    summary.focus();
    // A link in the summary takes the keyboard to its field (not only the view).
    summary.querySelectorAll("a[href^='#']").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var field = document.getElementById(link.getAttribute("href").slice(1));
        if (!field) return;
        event.preventDefault();
        field.scrollIntoView({ block: "center" });
        field.focus();
      });
    });
  }

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  var dialog = document.getElementById("sessie-waarschuwing");
  if (!dialog || typeof dialog.showModal !== "function") return;
  var left = parseInt(dialog.getAttribute("data-seconds-left"), 10);
  var warn = parseInt(dialog.getAttribute("data-warn-seconds"), 10);
  if (!(left > 0)) return;
  var deadline = Date.now() + left * 1000;
  var timer = null;
  var tick = null;
  var minutes = document.getElementById("sessie-minuten");
  var ended = document.getElementById("sessie-verlopen");
  var extend = document.getElementById("sessie-verleng");

  function show() {
    var remaining = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    if (minutes) minutes.textContent = String(Math.max(1, Math.ceil(remaining / 60)));
    if (!dialog.open) dialog.showModal();
    if (remaining <= 0) {
      dialog.querySelector("[data-live]").hidden = true;
      ended.hidden = false;
      clearInterval(tick);
    }
  }

  function schedule() {
    clearTimeout(timer);
    clearInterval(tick);
    timer = setTimeout(function () {
      show();
      tick = setInterval(show, 15000);
    }, Math.max(0, deadline - Date.now() - warn * 1000));
  }

  extend.addEventListener("click", function () {
    var body = new FormData();
    body.append("csrf", dialog.getAttribute("data-csrf"));
    fetch("/sessie/verleng", { method: "POST", body: body, credentials: "same-origin", redirect: "manual" })
      .then(function (response) {
        if (response.status !== 200) { deadline = Date.now(); show(); return; }
        return response.json().then(function (data) {
          deadline = Date.now() + data.seconds_left * 1000;
          dialog.close();
          schedule();
        });
      })
      .catch(function () { deadline = Date.now(); show(); });
  });
  document.getElementById("sessie-sluit").addEventListener("click", function () { dialog.close(); });
  schedule();
});
