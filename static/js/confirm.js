/*
 * Confirm irreversible actions in a <dialog> (no inline script: the CSP forbids it).
 *
 * On a <form>, or on one submit <button> of it:
 *   data-confirm="Deny request R-1A2B?"  the dialog's title; its presence turns confirmation on
 *   data-confirm-body="…"                 optional plain text under the title
 *   data-confirm-preview="#id"            optional: the text of that element is shown, quoted, as
 *                                         what will be sent (read when the dialog opens)
 *   data-confirm-button="Deny"            label of the confirming button (default: the clicked
 *                                         button's text)
 *   data-confirm-safe                     the confirming button looks ordinary, not destructive
 * The dialog opens with focus on Cancel; Escape or Cancel leave the form untouched, and focus
 * returns to the button that opened it. Without JavaScript the form simply submits.
 *
 * A live message preview, filled as a person picks a canned reason or types:
 *   <div data-message-preview data-canned-field="canned" data-text-field="text"
 *        data-canned-texts="canned-reasons" data-empty="Pick a reason or write one.">
 * where "canned-reasons" is the id of a json_script {"<option value>": "<text>"}; the preview is
 * the canned text and the typed text, joined by a blank line, exactly as the server joins them.
 */
(function () {
  "use strict";
  let dialog = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
    dialog.innerHTML =
      '<article><h2 id="confirm-dialog-title"></h2><p class="confirm-body"></p>' +
      '<div class="confirm-preview"><p class="muted">What will be sent:</p>' +
      '<blockquote class="message-preview"></blockquote></div>' +
      '<footer><button type="button" class="secondary" value="cancel">Cancel</button>' +
      '<button type="button" class="button-danger" value="ok"></button></footer></article>';
    document.body.appendChild(dialog);
    return dialog;
  }

  function attr(el, form, name) {
    if (el && el.hasAttribute(name)) return el.getAttribute(name);
    return form.hasAttribute(name) ? form.getAttribute(name) : null;
  }

  function ask(form, submitter) {
    const d = dialog || build();
    const title = attr(submitter, form, "data-confirm");
    const body = attr(submitter, form, "data-confirm-body");
    const previewOf = attr(submitter, form, "data-confirm-preview");
    const label = attr(submitter, form, "data-confirm-button");
    const safe = attr(submitter, form, "data-confirm-safe") !== null;
    d.querySelector("h2").textContent = title;
    const bodyEl = d.querySelector(".confirm-body");
    bodyEl.textContent = body || "";
    bodyEl.hidden = !body;
    const source = previewOf ? document.querySelector(previewOf) : null;
    const wrap = d.querySelector(".confirm-preview");
    wrap.hidden = !source;
    d.querySelector(".message-preview").textContent = source ? source.textContent.trim() : "";
    const ok = d.querySelector("button[value=ok]");
    ok.textContent = label || (submitter ? submitter.textContent.trim() : "Confirm");
    ok.className = safe ? "" : "button-danger";
    const cancel = d.querySelector("button[value=cancel]");
    const opener = submitter || document.activeElement;

    function close(confirmed) {
      ok.removeEventListener("click", onOk);
      cancel.removeEventListener("click", onCancel);
      d.removeEventListener("close", onClose);
      if (d.open) d.close();
      if (confirmed) {
        form.dataset.confirmed = "1";
        // requestSubmit keeps the clicked button's name/value and lets htmx handle hx-post forms.
        if (submitter) form.requestSubmit(submitter);
        else form.requestSubmit();
        delete form.dataset.confirmed;
      } else if (opener && opener.focus) {
        opener.focus();
      }
    }
    function onOk() { close(true); }
    function onCancel() { close(false); }
    function onClose() { close(false); }
    ok.addEventListener("click", onOk);
    cancel.addEventListener("click", onCancel);
    d.addEventListener("close", onClose);
    d.showModal();
    cancel.focus();
  }

  // Capture phase on the document: runs before htmx's own submit handler on the form.
  document.addEventListener(
    "submit",
    function (event) {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || form.dataset.confirmed) return;
      const submitter = event.submitter;
      const wanted =
        (submitter && submitter.hasAttribute("data-confirm")) ||
        (form.hasAttribute("data-confirm") && !(submitter && submitter.hasAttribute("data-no-confirm")));
      if (!wanted) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      ask(form, submitter);
    },
    true
  );

  function cannedTexts(id) {
    const script = id && document.getElementById(id);
    try {
      return script ? JSON.parse(script.textContent) : {};
    } catch (e) {
      return {};
    }
  }

  function renderPreview(preview) {
    const form = preview.closest("form");
    if (!form) return;
    const canned = form.elements.namedItem(preview.dataset.cannedField || "canned");
    const text = form.elements.namedItem(preview.dataset.textField || "text");
    const texts = cannedTexts(preview.dataset.cannedTexts);
    const parts = [];
    if (canned && canned.value && texts[canned.value]) parts.push(texts[canned.value]);
    if (text && text.value.trim()) parts.push(text.value.trim());
    preview.textContent = parts.length ? parts.join("\n\n") : preview.dataset.empty || "";
    preview.classList.toggle("muted", !parts.length);
  }

  function refreshPreviews(root) {
    root.querySelectorAll("[data-message-preview]").forEach(renderPreview);
  }

  document.addEventListener("input", function (event) {
    const form = event.target.form;
    if (form) refreshPreviews(form);
  });
  document.addEventListener("change", function (event) {
    const form = event.target.form;
    if (form) refreshPreviews(form);
  });
  document.addEventListener("DOMContentLoaded", function () { refreshPreviews(document); });
  document.addEventListener("htmx:afterSettle", function (event) { refreshPreviews(event.target); });
})();
