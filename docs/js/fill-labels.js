// Runbook pages carry $MODEL (one $LABEL per grouping label of the SLO) where
// the alert's label goes, in queries and dashboard links. This fills them in
// from the page address (runbooks/<Alert>/?model=gpt-4o) or from the boxes the
// page shows, so a query is ready to paste and a link opens the right model.
// Without JavaScript the placeholders stay and people replace them by hand.
(function () {
  "use strict";
  const box = document.querySelector(".modelmon-labels");
  if (!box) return;
  const labels = box.dataset.labels.split(",").filter(Boolean);
  const params = new URLSearchParams(window.location.search);
  const inputs = {};

  function replaceAll(text, encode) {
    for (const label of labels) {
      const value = inputs[label].value.trim();
      if (!value) continue;
      const token = "$" + label.toUpperCase();
      text = text.split(token).join(encode ? encodeURIComponent(value) : value);
      text = text.split(encodeURIComponent(token)).join(encode ? encodeURIComponent(value) : value);
    }
    return text;
  }

  function fill() {
    for (const code of document.querySelectorAll("pre code")) {
      if (code.dataset.template === undefined) {
        if (!labels.some((l) => code.textContent.includes("$" + l.toUpperCase()))) continue;
        code.dataset.template = code.textContent;
      }
      code.textContent = replaceAll(code.dataset.template, false);
    }
    for (const link of document.querySelectorAll("a[href]")) {
      if (link.dataset.template === undefined) {
        const href = link.getAttribute("href");
        if (!labels.some((l) => href.includes("$" + l.toUpperCase()) || href.includes("%24" + l.toUpperCase()))) {
          continue;
        }
        link.dataset.template = href;
      }
      link.setAttribute("href", replaceAll(link.dataset.template, true));
    }
  }

  for (const label of labels) {
    const field = document.createElement("label");
    field.textContent = "Alert's " + label + " label: ";
    const input = document.createElement("input");
    input.type = "text";
    input.placeholder = "$" + label.toUpperCase();
    input.value = params.get(label) || "";
    input.addEventListener("input", fill);
    inputs[label] = input;
    field.appendChild(input);
    box.appendChild(field);
  }
  box.style.margin = "1em 0";
  fill();
})();
