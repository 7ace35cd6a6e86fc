// The letter's print button: shown only when scripts run (Ctrl+P works without it).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-letter");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
