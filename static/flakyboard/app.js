// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Selectors apply on change (the Apply button stays for no-JS use).
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form.scope, form[data-autosubmit]");
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });
  // Send Django's CSRF token with htmx requests (triage edits are POSTs).
  document.addEventListener("htmx:configRequest", function (event) {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    if (match) event.detail.headers["X-CSRFToken"] = decodeURIComponent(match[1]);
  });
})();
