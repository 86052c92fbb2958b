/* Copy buttons for install commands, configuration snippets and file hashes.
 * Served from static/ (the Content-Security-Policy allows only same-origin script, no inline
 * script). Without it the text stays on the page, selectable: the button is an extra. */
(function () {
  "use strict";

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  function addButton(box) {
    var source = box.querySelector("code") || box.querySelector("pre");
    if (!source || box.querySelector("button.copy")) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (box.getAttribute("data-copy-label") || "text"));
    var status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    button.addEventListener("click", function () {
      copy(source.textContent.replace(/\n$/, "")).then(function () {
        button.textContent = "Copied";
        status.textContent = "Copied to the clipboard";
      }, function () {
        button.textContent = "Select and copy";
        status.textContent = "Copying is not allowed here: select the text and copy it";
      });
      window.setTimeout(function () { button.textContent = "Copy"; status.textContent = ""; }, 2000);
    });
    box.appendChild(button);
    box.appendChild(status);
  }

  function init() {
    var boxes = document.querySelectorAll(".copyable");
    for (var i = 0; i < boxes.length; i++) { addButton(boxes[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
