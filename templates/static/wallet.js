// wallet.js adds comforts to the demo wallet page (wallet.html), which works
// without it: the expiry in the phone's own time zone, one answer only, so
// that a double tap cannot send Approve twice or Approve and then Decline,
// and, after an approval on the device that started the login, the way back
// to the login page without a tap. Its texts come from the page's JSON
// block #idv-text, in the page's language.
(function () {
  "use strict";

  var texts = {};
  var block = document.getElementById("idv-text");
  if (block) {
    try {
      texts = JSON.parse(block.textContent).text || {};
    } catch (e) {
      texts = {};
    }
  }
  var lang = document.documentElement.lang || undefined;

  Array.prototype.forEach.call(document.querySelectorAll("time.idv-local"), function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      t.textContent = d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    }
  });

  // An approval on this device: the login page that started it finishes
  // the login, so go back there at once (the link stays for no script).
  var back = document.getElementById("idv-return");
  if (back && back.getAttribute("data-auto") === "true") {
    window.location.replace(back.href);
    return;
  }

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
        status.textContent = texts.sending || "";
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
