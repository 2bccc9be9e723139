// Copy buttons for the gateway's own pages, allowed by its hash in the Content-Security-Policy.
// A button marked data-copy="<field id>" copies that field's text and says so; without this
// script the buttons stay hidden and the field's text is selected and copied by hand.
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-status") || "");
    if (!field) return;
    var say = function (text) { if (status) status.textContent = text; };
    var copied = function () { say("Copied."); };
    var failed = function () { say("Could not copy: select the text and copy it yourself."); };
    button.addEventListener("click", function () {
      field.focus();
      field.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(copied, failed);
      } else {
        try { if (document.execCommand("copy")) copied(); else failed(); } catch (e) { failed(); }
      }
    });
    var wrap = button.closest("[data-copy-only]");
    if (wrap) wrap.hidden = false;
  });
})();
