/*
 * GOV.UK-style error summary (no inline script: the CSP forbids it).
 *
 * <div data-error-summary tabindex="-1"> takes the focus when the page loads, so a screen reader
 * reads every problem at once and a keyboard user starts there. Its links (href="#<input id>")
 * move the focus into the field and scroll its label into view, not only the input.
 */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    const summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  });

  document.addEventListener("click", function (event) {
    const link = event.target.closest("[data-error-summary] a[href^='#']");
    if (!link) return;
    const input = document.getElementById(link.getAttribute("href").slice(1));
    if (!input) return;
    event.preventDefault();
    const around = input.closest("fieldset, .field") || input;
    around.scrollIntoView();
    input.focus({ preventScroll: true });
  });
})();
