/*
 * Small behaviours shared by every page (no inline script: the CSP forbids it).
 *
 * Live region: <div id="announcer" aria-live="polite"> in base.html (no role=status: the flash
 *   messages are the page's status). After an htmx swap, the text of
 *   the first [data-announce] element in the new content is announced (only when it changed, so
 *   polling stays quiet); a server can also send the "announce" event (HX-Trigger, {"message":…}).
 * Focus after a swap: an element with [data-swap-focus] in the new content takes the focus, but
 *   only when the swap answered the person (a click or a submit), never a poll.
 * Secrets: <span data-secret="…">••••</span> with buttons [data-reveal="#id"] and
 *   [data-copy="#id"] (the id of the data-secret element) show the secret and copy it.
 */
(function () {
  "use strict";
  let lastAnnounced = "";

  function announce(message) {
    const region = document.getElementById("announcer");
    if (!region || !message) return;
    // Clearing first makes screen readers repeat an identical message the person asked for again.
    region.textContent = "";
    window.setTimeout(function () { region.textContent = message; }, 50);
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    const root = event.detail.elt || event.target;
    const fromPerson = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent &&
      event.detail.requestConfig.triggeringEvent.type !== "every";
    const target = root.isConnected ? root : document;
    const said = target.querySelector ? target.querySelector("[data-announce]") : null;
    if (said) {
      const text = said.getAttribute("data-announce") || said.textContent.trim();
      if (text !== lastAnnounced) {
        lastAnnounced = text;
        announce(text);
      }
    }
    const focus = fromPerson && target.querySelector ? target.querySelector("[data-swap-focus]") : null;
    if (focus) {
      if (!focus.hasAttribute("tabindex")) focus.setAttribute("tabindex", "-1");
      focus.focus();
    }
  });

  document.addEventListener("announce", function (event) {
    announce(event.detail && event.detail.message);
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-reveal], [data-copy]");
    if (!button) return;
    const secret = document.querySelector(button.getAttribute("data-reveal") || button.getAttribute("data-copy"));
    if (!secret) return;
    const value = secret.getAttribute("data-secret");
    if (button.hasAttribute("data-reveal")) {
      const shown = secret.textContent === value;
      secret.textContent = shown ? "•".repeat(24) : value;
      button.textContent = shown ? "Reveal" : "Hide";
      button.setAttribute("aria-pressed", shown ? "false" : "true");
    } else if (navigator.clipboard) {
      navigator.clipboard.writeText(value).then(
        function () { announce("Secret copied to the clipboard."); },
        function () { announce("Could not copy: reveal the secret and copy it by hand."); }
      );
    }
  });
})();
