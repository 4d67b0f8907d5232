// Small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";
  // Selectors apply on change (the Apply button stays for no-JS use).
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form.scope, form[data-autosubmit]");
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });
  // The scope form carries the page's other filters as hidden inputs. After htmx swaps
  // have pushed new filters into the URL, take them from the address bar instead. The
  // form's own fields stay: the selectors, and the hidden period of a page without a
  // period selector (/tests/), so the period follows; each key is sent once.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.scope")) return;
    form.querySelectorAll("input[type=hidden]:not([name=period])").forEach(function (input) { input.remove(); });
    var own = Object.create(null);
    own.page = true;
    Array.prototype.forEach.call(form.elements, function (field) { if (field.name) own[field.name] = true; });
    new URLSearchParams(window.location.search).forEach(function (value, key) {
      if (own[key]) return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = key;
      input.value = value;
      form.appendChild(input);
    });
  });
  // The navigation is a <details> menu: unfolded on wide screens, folded on a phone.
  var wide = window.matchMedia("(min-width: 701px)");
  function unfold() {
    document.querySelectorAll("details.menu").forEach(function (menu) { menu.open = wide.matches; });
  }
  unfold();
  if (wide.addEventListener) wide.addEventListener("change", unfold);
  // Send Django's CSRF token with htmx requests (triage edits are POSTs).
  document.addEventListener("htmx:configRequest", function (event) {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    if (match) event.detail.headers["X-CSRFToken"] = decodeURIComponent(match[1]);
  });
})();
