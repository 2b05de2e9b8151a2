// wallet.js adds two comforts to the demo wallet page (wallet.html), which
// works without it: the expiry in the phone's own time zone, and one answer
// only, so that a double tap cannot send Approve twice or Approve and then
// Decline.
(function () {
  "use strict";

  Array.prototype.forEach.call(document.querySelectorAll("time.idv-local"), function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
  });

  var sent = false;
  var status = document.getElementById("idv-wallet-status");
  var forms = Array.prototype.slice.call(document.querySelectorAll("form.idv-answer"));
  forms.forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (sent) {
        ev.preventDefault();
        return;
      }
      sent = true;
      forms.forEach(function (g) {
        Array.prototype.forEach.call(g.querySelectorAll("button"), function (b) {
          b.setAttribute("aria-disabled", "true");
        });
      });
      if (status) {
        status.textContent = "Sending your answer…";
      }
    });
  });

  // Coming back to this page from the history: the answer was sent or
  // abandoned, and the page shows the buttons again.
  window.addEventListener("pageshow", function (ev) {
    if (!ev.persisted) {
      return;
    }
    sent = false;
    forms.forEach(function (g) {
      Array.prototype.forEach.call(g.querySelectorAll("button"), function (b) {
        b.removeAttribute("aria-disabled");
      });
    });
    if (status) {
      status.textContent = "";
    }
  });
})();
