// login.js drives the login page (login.html): it starts a login with
// POST <prefix>/sessions, shows the QR code, the link and the control code,
// counts down to the login's expiry and long-polls the login's state until
// the person has acted on their phone. The elements it needs are listed in
// the templates package documentation (doc.go). Every text it shows comes
// from the page's JSON block #idv-text (the page's language), and the texts
// about a provider from its choice button's data-* attributes.
(function () {
  "use strict";

  // Schemes a provider's deep link may never have: they would run code or
  // show content of our choosing under this page's address.
  var BLOCKED_SCHEMES = ["javascript:", "data:", "vbscript:", "blob:", "file:", "about:"];

  // Long polls ask the server to hold the answer this many seconds.
  var WAIT_SECONDS = 25;

  // isLocalPath reports whether p is a path on this site (origin). It must
  // start with exactly one "/" ("//host" and "/\host" name another host) and
  // hold no control characters or spaces, which URL parsers drop ("/\t/host"
  // becomes "//host"); what is left must resolve to origin, to a path that
  // does not itself start with "//" once dot segments are removed
  // ("/a/..//host" resolves to the path "//host").
  function isLocalPath(p, origin) {
    if (typeof p !== "string" || p.charAt(0) !== "/") {
      return false;
    }
    if (p.charAt(1) === "/" || p.charAt(1) === "\\") {
      return false;
    }
    if (/[\u0000-\u0020\u007f-\u009f]/.test(p)) {
      return false;
    }
    try {
      var u = new URL(p, origin);
      return u.origin === origin && u.pathname.slice(0, 2) !== "//";
    } catch (e) {
      return false;
    }
  }

  // safeRedirect is where to go after a completed login: exactly the
  // server's redirect (the server has canonicalised it) when it is local,
  // else "/". It is never rebuilt from parts: a rebuilt path can read as
  // another host.
  function safeRedirect(p, origin) {
    return isLocalPath(p, origin) ? p : "/";
  }

  // safeLink returns href when it may be offered as "Open on this device"
  // (any app scheme, but none of BLOCKED_SCHEMES), else "".
  function safeLink(href, origin) {
    if (typeof href !== "string" || href === "" || /[\u0000-\u001f\u007f]/.test(href)) {
      return "";
    }
    var u;
    try {
      u = new URL(href, origin);
    } catch (e) {
      return "";
    }
    if (BLOCKED_SCHEMES.indexOf(u.protocol.toLowerCase()) >= 0) {
      return "";
    }
    return u.href;
  }

  function mmss(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var m = Math.floor(s / 60);
    var r = s % 60;
    return (m < 10 ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r;
  }

  // retryAfterSeconds reads a Retry-After header: delay seconds or an HTTP
  // date. It is 0 when the header is missing or unreadable.
  function retryAfterSeconds(value, now) {
    if (!value) {
      return 0;
    }
    value = String(value).trim();
    if (/^[0-9]+$/.test(value)) {
      return parseInt(value, 10);
    }
    var t = Date.parse(value);
    if (isNaN(t)) {
      return 0;
    }
    return Math.max(0, Math.ceil((t - now) / 1000));
  }

  // backoffSeconds is the wait after the n-th failure in a row (from 0):
  // 1, 2, 4, 8, then 10 seconds.
  function backoffSeconds(n) {
    return Math.min(10, Math.pow(2, n));
  }

  // texts is the page's language and texts (#idv-text, rendered by the
  // server from its message catalogue). Outside a page (the package's
  // tests) it is given to the helpers.
  var texts = { lang: "en", text: {}, server: {}, generic: false };

  // format fills a message's {{.Name}} arguments.
  function format(s, args) {
    return String(s).replace(/\{\{\s*\.([A-Za-z]+)\s*\}\}/g, function (m, k) {
      return args && args[k] !== undefined ? String(args[k]) : "";
    });
  }

  // pluralForm is the CLDR plural category of n in lang ("one", "few", ...),
  // from the browser's own rules.
  function pluralForm(lang, n) {
    try {
      return new Intl.PluralRules(lang).select(n);
    } catch (e) {
      return n === 1 ? "one" : "other";
    }
  }

  // tr is the text key with its arguments; a plural text takes the form
  // for args.Count.
  function tr(key, args) {
    var m = texts.text[key];
    if (m === undefined) {
      return key;
    }
    if (typeof m === "object") {
      var n = args && typeof args.Count === "number" ? args.Count : 0;
      m = m[pluralForm(texts.lang, n)] || m.other || "";
    }
    return format(m, args);
  }

  // serverText shows a message of the server's JSON (a provider's outcome, a
  // field error), which is English: its translation when the catalogue has
  // one; else, on a page in another language, the text fallback, so that
  // no English reaches the page; else the message itself.
  function serverText(msg, fallback, args) {
    if (typeof msg !== "string" || msg === "") {
      return tr(fallback, args);
    }
    if (Object.prototype.hasOwnProperty.call(texts.server, msg)) {
      return texts.server[msg];
    }
    return texts.generic ? tr(fallback, args) : msg;
  }

  // remainingText is what a screen reader hears about the time left. It is
  // said only when a new stage is reached (every minute, then 30 and 10
  // seconds), not every second.
  function remainingText(s) {
    if (s > 60) {
      return tr("about_minutes_left", { Count: Math.ceil(s / 60) });
    }
    if (s === 60) {
      return tr("minutes_left", { Count: 1 });
    }
    return tr("seconds_left", { Count: s });
  }

  function stage(s) {
    if (s > 60) {
      return "m" + Math.ceil(s / 60);
    }
    if (s > 30) {
      return "60";
    }
    if (s > 10) {
      return "30";
    }
    return "10";
  }

  // resumeID is the login id in a location hash "#idv-resume=<id>", which
  // the demo wallet sends the person back with after answering on this
  // device; "" when there is none.
  function resumeID(hash) {
    var m = /^#idv-resume=([A-Za-z0-9_-]{16,64})$/.exec(typeof hash === "string" ? hash : "");
    return m ? m[1] : "";
  }

  // phoneFirst reports whether this is a small screen or a touch device,
  // where the person most likely holds the phone that must act: the page
  // then leads with opening the provider's app or link here, and keeps the
  // QR code (which this phone cannot scan) behind "Use another device".
  function phoneFirst() {
    return typeof window.matchMedia === "function" &&
      window.matchMedia("(max-width: 40rem), (pointer: coarse)").matches;
  }

  if (typeof document === "undefined") {
    // Loaded outside a browser, by the package's tests: offer the helpers.
    if (typeof module === "object" && module.exports) {
      module.exports = {
        isLocalPath: isLocalPath,
        safeRedirect: safeRedirect,
        safeLink: safeLink,
        mmss: mmss,
        retryAfterSeconds: retryAfterSeconds,
        backoffSeconds: backoffSeconds,
        remainingText: function (s, t) {
          texts = t || texts;
          return remainingText(s);
        },
        tr: function (key, args, t) {
          texts = t || texts;
          return tr(key, args);
        },
        serverText: function (msg, fallback, t) {
          texts = t || texts;
          return serverText(msg, fallback);
        },
        resumeID: resumeID,
        stage: stage
      };
    }
    return;
  }

  var root = document.getElementById("idv-login");
  if (!root) {
    return;
  }

  var textBlock = document.getElementById("idv-text");
  if (textBlock) {
    try {
      var parsed = JSON.parse(textBlock.textContent);
      if (parsed && typeof parsed === "object") {
        texts = parsed;
        texts.text = texts.text || {};
        texts.server = texts.server || {};
      }
    } catch (e) {
      // Keep the empty texts: keys show instead of words, the login works.
    }
  }

  var origin = window.location.origin;
  var prefix = root.getAttribute("data-prefix") || "";
  var rd = root.getAttribute("data-rd") || "/";
  var byId = function (id) {
    return document.getElementById(id);
  };
  var el = {
    choose: byId("idv-choose"),
    progress: byId("idv-progress"),
    heading: byId("idv-progress-heading"),
    challenge: byId("idv-challenge"),
    qrWrap: byId("idv-qr-wrap"),
    qrCaption: byId("idv-qr-caption"),
    qr: byId("idv-qr"),
    openWrap: byId("idv-open-wrap"),
    open: byId("idv-open"),
    otherWrap: byId("idv-other-wrap"),
    other: byId("idv-other"),
    codeWrap: byId("idv-code-wrap"),
    code: byId("idv-code"),
    timerWrap: byId("idv-timer-wrap"),
    countdown: byId("idv-countdown"),
    announce: byId("idv-time-announce"),
    status: byId("idv-status"),
    retry: byId("idv-retry")
  };
  var views = Array.prototype.slice.call(root.querySelectorAll(".idv-view"));
  // openHere is the link's text when the QR code leads ("Open on this
  // device"), as the page has it.
  var openHere = el.open.textContent;
  var startingHeading = el.heading.textContent;

  // run identifies the current login attempt. Every start, back and final
  // outcome begins a new run; work left over from an older run (a long poll
  // in flight, a countdown tick) sees that and stops.
  var run = 0;
  var aborter = null;
  var ticker = null;
  var retryTimer = null;
  var current = null;
  // interacted is set once the person has done something; only then does a
  // new view take the focus, so that loading the page does not move it.
  var interacted = false;

  var providers = [];
  Array.prototype.forEach.call(root.querySelectorAll(".idv-choice"), function (b) {
    var label = b.querySelector(".choice-label");
    var p = {
      name: b.getAttribute("data-provider"),
      flow: b.getAttribute("data-flow"),
      label: (label || b).textContent,
      // What the person is asked to do, for this provider's kind.
      scan: b.getAttribute("data-scan") || "",
      open: b.getAttribute("data-open") || "",
      button: b.getAttribute("data-button") || "",
      confirm: b.getAttribute("data-confirm") || "",
      // Whether choosing it may wait: a provider that costs something to
      // start (document verification) starts only when the person asks.
      autostart: b.getAttribute("data-autostart") === "true",
      form: null,
      view: null
    };
    providers.push(p);
    b.addEventListener("click", function () {
      interacted = true;
      choose(p);
    });
  });

  Array.prototype.forEach.call(root.querySelectorAll("form.idv-form"), function (f) {
    var name = f.getAttribute("data-provider");
    var p = null;
    providers.forEach(function (q) {
      if (q.name === name) {
        p = q;
      }
    });
    if (!p) {
      return;
    }
    p.form = f;
    p.view = f.closest(".idv-view");
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      interacted = true;
      submitForm(p);
    });
    inputsOf(f).forEach(function (input) {
      input.addEventListener("input", function () {
        if (input.getAttribute("aria-invalid") === "true") {
          clearFieldError(input);
        }
      });
    });
  });

  Array.prototype.forEach.call(root.querySelectorAll(".idv-back"), function (b) {
    b.addEventListener("click", function () {
      interacted = true;
      cancel();
      showView(el.choose, true);
    });
  });

  el.other.addEventListener("click", function () {
    var open = el.other.getAttribute("aria-expanded") !== "true";
    el.other.setAttribute("aria-expanded", open ? "true" : "false");
    el.qrWrap.hidden = !open;
  });

  el.retry.addEventListener("click", function () {
    interacted = true;
    if (!current) {
      // A resumed login that failed: start as the page would have.
      cancel();
      resuming = false;
      begin();
      return;
    }
    if (current.form) {
      cancel();
      showView(current.view, true);
    } else {
      start(current, null);
    }
  });

  function cancel() {
    run++;
    if (aborter) {
      aborter.abort();
      aborter = null;
    }
    if (ticker) {
      clearInterval(ticker);
      ticker = null;
    }
    return run;
  }

  function signal() {
    return aborter ? aborter.signal : undefined;
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function readJSON(res) {
    return res.json().catch(function () {
      return null;
    });
  }

  function showView(view, focus) {
    views.forEach(function (v) {
      v.hidden = v !== view;
    });
    if (focus && view) {
      var h = view.querySelector("h2");
      if (h) {
        h.focus();
      }
    }
  }

  function setStatus(text) {
    if (el.status.textContent !== text) {
      el.status.textContent = text;
    }
  }

  function setBusy(busy) {
    if (busy) {
      el.status.setAttribute("data-busy", "true");
    } else {
      el.status.removeAttribute("data-busy");
    }
  }

  function resetProgress() {
    el.qrWrap.hidden = true;
    el.qr.removeAttribute("src");
    el.qrCaption.hidden = true;
    el.openWrap.hidden = true;
    el.open.removeAttribute("href");
    el.otherWrap.hidden = true;
    el.other.setAttribute("aria-expanded", "false");
    el.codeWrap.hidden = true;
    el.code.textContent = "";
    el.timerWrap.hidden = true;
    el.countdown.textContent = "";
    el.announce.textContent = "";
    el.retry.hidden = true;
    el.retry.disabled = false;
    if (retryTimer) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    setBusy(false);
  }

  function hideChallenge() {
    el.qrWrap.hidden = true;
    el.openWrap.hidden = true;
    el.otherWrap.hidden = true;
    el.codeWrap.hidden = true;
    el.timerWrap.hidden = true;
    el.announce.textContent = "";
    setBusy(false);
  }

  // showRetry offers "Try again", held back for wait seconds after a 429.
  function showRetry(wait) {
    el.retry.hidden = false;
    if (wait > 0) {
      el.retry.disabled = true;
      retryTimer = setTimeout(function () {
        el.retry.disabled = false;
        retryTimer = null;
      }, Math.min(wait, 600) * 1000);
    }
  }

  function problemText(res, data) {
    if (res.status === 429) {
      var n = retryAfterSeconds(res.headers.get("Retry-After"), Date.now());
      if (n > 0) {
        return tr("too_many_in", { Count: n });
      }
      return tr("too_many");
    }
    return serverText(data && data.message, "error_status", { Status: res.status });
  }

  function inputsOf(form) {
    return Array.prototype.slice.call(form.querySelectorAll("input, select, textarea"));
  }

  function fieldErrorElement(input) {
    return input.id ? byId(input.id + "-error") : null;
  }

  function setFieldError(input, text) {
    input.setAttribute("aria-invalid", "true");
    var e = fieldErrorElement(input);
    if (e) {
      e.textContent = text;
      e.hidden = false;
    }
  }

  function clearFieldError(input) {
    input.removeAttribute("aria-invalid");
    var e = fieldErrorElement(input);
    if (e) {
      e.textContent = "";
      e.hidden = true;
    }
  }

  function formError(p, text) {
    var e = p.form.querySelector(".form-error");
    if (!e) {
      return;
    }
    e.textContent = text;
    e.hidden = text === "";
  }

  // validationText explains a field the browser finds invalid, with the
  // field's hint when its format is wrong.
  function validationText(input) {
    if (input.validity.valueMissing) {
      return tr("field_missing");
    }
    var hint = input.id ? byId(input.id + "-hint") : null;
    if (input.validity.patternMismatch && hint && hint.textContent) {
      return tr("field_format", { Hint: hint.textContent });
    }
    // Not the browser's validationMessage: it speaks the browser's
    // language, not the page's.
    return tr("field_check");
  }

  function choose(p) {
    current = p;
    if (p.form) {
      cancel();
      showView(p.view, interacted);
      return;
    }
    start(p, null);
  }

  var submitting = false;

  async function submitForm(p) {
    if (submitting) {
      return;
    }
    var values = {};
    var first = null;
    formError(p, "");
    inputsOf(p.form).forEach(function (input) {
      if (!input.name) {
        return;
      }
      var v = input.value.trim();
      if (v !== input.value) {
        input.value = v;
      }
      clearFieldError(input);
      if (!input.checkValidity()) {
        setFieldError(input, validationText(input));
        first = first || input;
      }
      values[input.name] = v;
    });
    if (first) {
      first.focus();
      return;
    }
    var button = p.form.querySelector("[type=submit]");
    submitting = true;
    if (button) {
      button.setAttribute("aria-disabled", "true");
    }
    try {
      await start(p, values);
    } finally {
      submitting = false;
      if (button) {
        button.removeAttribute("aria-disabled");
      }
    }
  }

  // start begins a login at provider p. A form provider stays on its form
  // until the server has accepted the input, so that errors can be shown
  // next to the fields.
  async function start(p, values) {
    var gen = cancel();
    current = p;
    if (typeof AbortController === "function") {
      aborter = new AbortController();
    }
    var body = {};
    if (values) {
      Object.keys(values).forEach(function (k) {
        body[k] = values[k];
      });
    }
    body.provider = p.name;
    body.rd = rd;

    if (!p.form) {
      resetProgress();
      el.heading.textContent = startingHeading;
      setStatus(tr("starting"));
      setBusy(true);
      showView(el.progress, interacted);
    }

    var res;
    var data;
    try {
      res = await fetch(prefix + "/sessions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
        signal: signal()
      });
      data = await readJSON(res);
    } catch (e) {
      if (gen === run) {
        startFailed(p, tr("unreachable"), 0);
      }
      return;
    }
    if (gen !== run) {
      return;
    }
    if (!res.ok) {
      if (res.status === 400 && data && data.error === "invalid_input" && p.form &&
          fieldFailed(p, data.field, data.message)) {
        return;
      }
      var wait = res.status === 429 ? retryAfterSeconds(res.headers.get("Retry-After"), Date.now()) : 0;
      startFailed(p, problemText(res, data), wait);
      return;
    }
    if (!data || !isLocalPath(data.status_url, origin)) {
      startFailed(p, tr("bad_answer"), 0);
      return;
    }
    showChallenge(gen, p, data, clockOffset(res));
    poll(gen, data.status_url);
  }

  // fieldFailed shows the server's complaint next to the field it names.
  function fieldFailed(p, name, message) {
    var input = null;
    inputsOf(p.form).forEach(function (i) {
      if (i.name === name) {
        input = i;
      }
    });
    if (!input) {
      return false;
    }
    setFieldError(input, serverText(message, "field_check"));
    input.focus();
    return true;
  }

  function startFailed(p, text, wait) {
    if (p.form) {
      formError(p, text);
      return;
    }
    cancel();
    hideChallenge();
    el.heading.textContent = tr("could_not_start");
    setStatus(text);
    showRetry(wait);
    el.heading.focus();
  }

  // clockOffset is how far the server's clock is ahead of this device's, by
  // the response's Date header, so that the countdown ends when the server's
  // login does even on a device whose clock is wrong. Offsets within the
  // header's one-second precision are ignored.
  function clockOffset(res) {
    var d = Date.parse(res.headers.get("Date") || "");
    if (isNaN(d)) {
      return 0;
    }
    var off = d - Date.now();
    return Math.abs(off) > 3000 ? off : 0;
  }

  function showChallenge(gen, p, data, offset) {
    resetProgress();
    var phone = phoneFirst();
    var hasQR = isLocalPath(data.qr_svg_url, origin);
    if (hasQR) {
      el.qr.src = data.qr_svg_url;
    }
    var link = "";
    if (data.deep_link) {
      link = safeLink(data.deep_link, origin);
    } else if (typeof data.qr_text === "string" && /^https?:\/\//i.test(data.qr_text)) {
      link = safeLink(data.qr_text, origin);
    }
    if (link) {
      el.open.href = link;
      if (/^https?:/i.test(link) && new URL(link).origin !== origin) {
        // Another site's page opens beside this one, which keeps polling;
        // this site's own (the demo wallet) opens here and sends the person
        // back; an app link leaves this page where it is anyway.
        el.open.target = "_blank";
        el.open.rel = "noopener";
      } else {
        el.open.removeAttribute("target");
        el.open.removeAttribute("rel");
      }
    }
    var code = data.control_code;
    if (code !== undefined && code !== null && String(code) !== "") {
      el.code.textContent = String(code);
      el.codeWrap.hidden = false;
    }
    if (phone && link) {
      // This device acts: opening the app or link is the primary action,
      // and the QR code waits behind "Use another device".
      el.challenge.insertBefore(el.openWrap, el.challenge.firstChild);
      el.challenge.appendChild(el.qrWrap);
      el.open.className = "button primary";
      el.open.textContent = p.button || openHere;
      el.openWrap.hidden = false;
      if (hasQR) {
        el.qrCaption.textContent = p.scan;
        el.qrCaption.hidden = !p.scan;
        el.otherWrap.hidden = false;
      }
      el.heading.textContent = p.open || tr("open_heading");
    } else {
      // Another device acts: the QR code leads, and the link is there for
      // a person who is on that device after all.
      el.challenge.insertBefore(el.qrWrap, el.challenge.firstChild);
      el.open.className = "button";
      el.open.textContent = openHere;
      el.qrWrap.hidden = !hasQR;
      el.openWrap.hidden = !link;
      if (hasQR) {
        el.heading.textContent = p.scan || tr("continue_heading");
      } else if (!el.codeWrap.hidden) {
        el.heading.textContent = p.confirm || tr("confirm_heading");
      } else if (link) {
        el.heading.textContent = tr("open_heading");
      } else {
        el.heading.textContent = tr("continue_heading");
      }
    }
    if (!link && !el.codeWrap.hidden) {
      el.heading.textContent = p.confirm || tr("confirm_heading");
    }
    setStatus(tr("waiting"));
    setBusy(true);
    showView(el.progress, interacted);
    var expires = Date.parse(data.expires_at || "");
    if (!isNaN(expires)) {
      startCountdown(gen, expires - offset);
    }
  }

  // startCountdown shows the time left until deadline (this device's clock)
  // and ends the login as expired when it runs out.
  function startCountdown(gen, deadline) {
    var last = -1;
    var lastStage = null;
    el.timerWrap.hidden = false;
    function update() {
      if (gen !== run) {
        return;
      }
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      if (left !== last) {
        last = left;
        el.countdown.textContent = mmss(left);
        var st = stage(left);
        if (lastStage !== null && st !== lastStage && left > 0) {
          el.announce.textContent = remainingText(left);
        }
        lastStage = st;
      }
      if (left === 0) {
        finish(gen, "expired", "");
      }
    }
    update();
    if (gen === run) {
      ticker = setInterval(update, 250);
    }
  }

  // poll long-polls the login's state until it is final or the run ends.
  // Network errors and overloaded servers are retried with backoff; any
  // other refusal ends the login.
  async function poll(gen, url) {
    var failures = 0;
    var sep = url.indexOf("?") < 0 ? "?" : "&";
    while (gen === run) {
      var began = Date.now();
      var res;
      var data;
      try {
        res = await fetch(url + sep + "wait=" + WAIT_SECONDS, {
          credentials: "same-origin",
          cache: "no-store",
          headers: { "Accept": "application/json" },
          signal: signal()
        });
        data = await readJSON(res);
      } catch (e) {
        if (gen !== run) {
          return;
        }
        var d = backoffSeconds(failures++);
        setStatus(tr("connection_lost", { Count: d }));
        await sleep(d * 1000);
        continue;
      }
      if (gen !== run) {
        return;
      }
      if (!res.ok) {
        if (res.status === 429 || res.status === 408 || res.status >= 500) {
          var w = retryAfterSeconds(res.headers.get("Retry-After"), Date.now()) || backoffSeconds(failures++);
          w = Math.min(w, 60);
          setStatus(tr("busy", { Count: w }));
          await sleep(w * 1000);
          continue;
        }
        if (resuming && (res.status === 403 || res.status === 404)) {
          // This browser no longer holds the login (another tab finished
          // it): offer a new one.
          resuming = false;
          cancel();
          begin();
          return;
        }
        finish(gen, "failed", problemText(res, data));
        return;
      }
      var state = data && data.state;
      if (state === "pending") {
        failures = 0;
        if (typeof data.notice === "string" && data.notice !== "") {
          // The provider is failing: say so, rather than "waiting for
          // you", while the server keeps trying.
          setStatus(serverText(data.notice, "waiting"));
        } else if (!resuming) {
          setStatus(tr("waiting"));
        }
        if (Date.now() - began < 1000) {
          // The server answered at once: do not spin.
          await sleep(1000);
        }
        continue;
      }
      if (state === "completed") {
        complete(gen, data.redirect);
        return;
      }
      if (state === "expired" || state === "declined" || state === "failed") {
        finish(gen, state, typeof data.error === "string" ? data.error : "");
        return;
      }
      await sleep(backoffSeconds(failures++) * 1000);
    }
  }

  // OUTCOMES are the keys of the heading and the default text of each
  // final state.
  var OUTCOMES = {
    expired: ["expired_heading", "expired"],
    declined: ["declined_heading", "declined"],
    failed: ["failed_heading", "failed"]
  };

  // finish shows a final state with the server's text (translated), or the
  // state's own.
  function finish(gen, state, text) {
    if (gen !== run) {
      return;
    }
    cancel();
    hideChallenge();
    var o = OUTCOMES[state] || OUTCOMES.failed;
    el.heading.textContent = tr(o[0]);
    setStatus(serverText(text, o[1]));
    showRetry(0);
    el.heading.focus();
  }

  function complete(gen, redirect) {
    if (gen !== run) {
      return;
    }
    cancel();
    hideChallenge();
    el.heading.textContent = tr("done_heading");
    setStatus(tr("done"));
    window.location.replace(safeRedirect(redirect, origin));
  }

  // begin shows the first view: the only provider's login or form, or
  // the choice.
  function begin() {
    if (providers.length === 1 && (providers[0].form || providers[0].autostart)) {
      choose(providers[0]);
    } else if (providers.length >= 1) {
      showView(el.choose, false);
    }
  }

  // resumeOrBegin shows the login this browser already started, if one is
  // still in progress (the page was reloaded), instead of starting another
  // at the provider; otherwise the first view.
  async function resumeOrBegin() {
    var gen = cancel();
    var res;
    var data;
    try {
      res = await fetch(prefix + "/sessions", {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Accept": "application/json" }
      });
      data = await readJSON(res);
    } catch (e) {
      res = null;
    }
    if (gen !== run) {
      return;
    }
    var p = null;
    if (res && res.ok && data && isLocalPath(data.status_url, origin)) {
      providers.forEach(function (q) {
        if (q.name === data.provider) {
          p = q;
        }
      });
    }
    if (!p) {
      begin();
      return;
    }
    current = p;
    if (typeof AbortController === "function") {
      aborter = new AbortController();
    }
    resetProgress();
    showChallenge(gen, p, data, clockOffset(res));
    poll(gen, data.status_url);
  }

  // resuming is set while the page finishes a login that the person
  // answered on this device (the demo wallet sent them back here).
  var resuming = false;
  var resume = resumeID(window.location.hash);
  if (resume) {
    if (window.history && typeof window.history.replaceState === "function") {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    resuming = true;
    var gen = cancel();
    if (typeof AbortController === "function") {
      aborter = new AbortController();
    }
    resetProgress();
    el.heading.textContent = tr("resuming");
    setStatus(tr("resuming"));
    setBusy(true);
    showView(el.progress, false);
    poll(gen, prefix + "/sessions/" + resume);
  } else {
    resumeOrBegin();
  }
})();
