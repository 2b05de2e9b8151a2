// login_harness.js runs static/login.js against a rendered login page in
// node, with no dependencies: a small DOM built from the page's HTML, a fake
// fetch that plays the module's API, and a virtual clock. It is used by
// templates_test.go as
//
//   node login_harness.js <login.js> <page.html> <scenario>
//
// and prints "ok" or exits non-zero with what went wrong.
"use strict";

const fs = require("fs");
const vm = require("vm");

const ORIGIN = "https://site.example";
const [, , scriptPath, pagePath, scenarioName] = process.argv;

// ---- A small DOM, enough for login.js and well-formed template output ----

const VOID = new Set(["meta", "link", "img", "input", "br", "hr"]);

function decode(s) {
  return s.replace(/&(#[0-9]+|#x[0-9a-f]+|lt|gt|amp|quot|apos);/gi, (m, e) => {
    const named = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
    if (named[e.toLowerCase()]) return named[e.toLowerCase()];
    return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

class Text {
  constructor(text) {
    this.text = text;
  }
}

class Element {
  constructor(doc, tag, attrs) {
    this.ownerDocument = doc;
    this.tagName = tag.toUpperCase();
    this.attrs = new Map(attrs);
    this.children = [];
    this.parentNode = null;
    this.listeners = {};
    this._value = this.attrs.get("value") || "";
  }
  getAttribute(n) {
    return this.attrs.has(n) ? this.attrs.get(n) : null;
  }
  setAttribute(n, v) {
    this.attrs.set(n, String(v));
  }
  removeAttribute(n) {
    this.attrs.delete(n);
  }
  hasAttribute(n) {
    return this.attrs.has(n);
  }
  get id() {
    return this.getAttribute("id") || "";
  }
  get name() {
    return this.getAttribute("name") || "";
  }
  get type() {
    return this.getAttribute("type") || "text";
  }
  get hidden() {
    return this.attrs.has("hidden");
  }
  set hidden(v) {
    v ? this.setAttribute("hidden", "") : this.removeAttribute("hidden");
  }
  get disabled() {
    return this.attrs.has("disabled");
  }
  set disabled(v) {
    v ? this.setAttribute("disabled", "") : this.removeAttribute("disabled");
  }
  get value() {
    return this._value;
  }
  set value(v) {
    this._value = String(v);
  }
  get href() {
    return this.getAttribute("href") || "";
  }
  set href(v) {
    this.setAttribute("href", v);
  }
  get src() {
    return this.getAttribute("src") || "";
  }
  set src(v) {
    this.setAttribute("src", v);
  }
  get target() {
    return this.getAttribute("target") || "";
  }
  set target(v) {
    this.setAttribute("target", v);
  }
  get rel() {
    return this.getAttribute("rel") || "";
  }
  set rel(v) {
    this.setAttribute("rel", v);
  }
  get textContent() {
    return this.children.map((c) => (c instanceof Text ? c.text : c.textContent)).join("");
  }
  set textContent(v) {
    this.children = [new Text(String(v))];
  }
  get validity() {
    const v = this.value;
    const required = this.attrs.has("required");
    const pattern = this.getAttribute("pattern");
    return {
      valueMissing: required && v === "",
      patternMismatch: v !== "" && pattern !== null && !new RegExp("^(?:" + pattern + ")$", "u").test(v)
    };
  }
  get validationMessage() {
    const v = this.validity;
    return v.valueMissing || v.patternMismatch ? "Invalid value." : "";
  }
  checkValidity() {
    const v = this.validity;
    return !v.valueMissing && !v.patternMismatch;
  }
  get className() {
    return this.getAttribute("class") || "";
  }
  set className(v) {
    this.setAttribute("class", v);
  }
  get firstChild() {
    return this.children[0] || null;
  }
  // insertBefore and appendChild move an element, as the DOM does.
  insertBefore(node, ref) {
    if (node.parentNode) {
      node.parentNode.children = node.parentNode.children.filter((c) => c !== node);
    }
    const i = ref ? this.children.indexOf(ref) : -1;
    if (i < 0) {
      this.children.push(node);
    } else {
      this.children.splice(i, 0, node);
    }
    node.parentNode = this;
    return node;
  }
  appendChild(node) {
    return this.insertBefore(node, null);
  }
  focus() {
    this.ownerDocument.activeElement = this;
  }
  addEventListener(type, fn) {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  }
  dispatch(type) {
    const ev = {
      type,
      target: this,
      defaultPrevented: false,
      preventDefault() {
        this.defaultPrevented = true;
      }
    };
    (this.listeners[type] || []).forEach((fn) => fn(ev));
    return ev;
  }
  click() {
    if (this.disabled) return;
    this.dispatch("click");
  }
  *walk() {
    for (const c of this.children) {
      if (c instanceof Element) {
        yield c;
        yield* c.walk();
      }
    }
  }
  matches(selector) {
    return selector.split(",").some((s) => matchCompound(this, s.trim()));
  }
  closest(selector) {
    for (let e = this; e; e = e.parentNode) {
      if (e instanceof Element && e.matches(selector)) return e;
    }
    return null;
  }
  querySelectorAll(selector) {
    return [...this.walk()].filter((e) => e.matches(selector));
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] || null;
  }
  // visible reports whether neither the element nor an ancestor is hidden.
  get visible() {
    for (let e = this; e instanceof Element; e = e.parentNode) {
      if (e.hidden) return false;
    }
    return true;
  }
}

// matchCompound matches one compound selector: an optional tag, then any
// #id, .class and [attr] or [attr=value]. Combinators are not supported.
function matchCompound(el, sel) {
  const tok = /([a-z][a-z0-9]*)|#([\w-]+)|\.([\w-]+)|\[([\w-]+)(?:=["']?([^\]"']*)["']?)?\]/iy;
  let pos = 0;
  while (pos < sel.length) {
    tok.lastIndex = pos;
    const m = tok.exec(sel);
    if (!m || (m[1] && pos !== 0)) throw new Error("selector not supported: " + sel);
    if (m[1] && el.tagName !== m[1].toUpperCase()) return false;
    if (m[2] && el.id !== m[2]) return false;
    if (m[3] && !(el.getAttribute("class") || "").split(/\s+/).includes(m[3])) return false;
    if (m[4] && (!el.hasAttribute(m[4]) || (m[5] !== undefined && el.getAttribute(m[4]) !== m[5]))) return false;
    pos = tok.lastIndex;
  }
  return true;
}

function parse(html) {
  const doc = { activeElement: null };
  const root = new Element(doc, "#root", []);
  const stack = [root];
  const token = /<!--[\s\S]*?-->|<!doctype[^>]*>|<\/([a-z0-9]+)\s*>|<([a-z0-9]+)((?:\s+[^\s=>\/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>|[^<]+|</gi;
  let m;
  while ((m = token.exec(html))) {
    const top = stack[stack.length - 1];
    if (m[1]) {
      const tag = m[1].toUpperCase();
      while (stack.length > 1 && stack.pop().tagName !== tag) {}
    } else if (m[2]) {
      const attrs = [];
      const ar = /([^\s=>\/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
      let a;
      while ((a = ar.exec(m[3] || ""))) {
        attrs.push([a[1].toLowerCase(), decode(a[2] ?? a[3] ?? a[4] ?? "")]);
      }
      const el = new Element(doc, m[2], attrs);
      el.parentNode = top;
      top.children.push(el);
      if (!VOID.has(m[2].toLowerCase())) stack.push(el);
    } else if (!m[0].startsWith("<!")) {
      top.children.push(new Text(decode(m[0])));
    }
  }
  doc.root = root;
  doc.getElementById = (id) => root.querySelectorAll("#" + id)[0] || null;
  doc.querySelectorAll = (s) => root.querySelectorAll(s);
  doc.querySelector = (s) => root.querySelector(s);
  return doc;
}

// ---- Virtual time ----

let now = Date.UTC(2026, 10, 22, 10, 0, 0);
let timers = [];
let timerSeq = 0;

const RealDate = Date;
class FakeDate extends RealDate {
  constructor(...a) {
    a.length === 0 ? super(now) : super(...a);
  }
  static now() {
    return now;
  }
}

function setTimer(fn, ms, interval) {
  const id = ++timerSeq;
  timers.push({ id, at: now + Math.max(0, ms || 0), fn, interval: interval ? Math.max(1, ms) : 0 });
  return id;
}
function clearTimer(id) {
  timers = timers.filter((t) => t.id !== id);
}

async function flush() {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setImmediate(r));
  }
}

async function advance(ms) {
  const end = now + ms;
  for (;;) {
    await flush();
    const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
    if (!due) break;
    now = Math.max(now, due.at);
    if (due.interval) {
      due.at += due.interval;
    } else {
      clearTimer(due.id);
    }
    due.fn();
  }
  now = end;
  await flush();
}

// ---- The module's API, played by the scenario ----

const calls = [];
let handler = () => hang();
// resumable is the login GET <prefix>/sessions answers (a reloaded page
// resumes it); none by default.
let resumable = null;

function response(status, body, headers) {
  const h = Object.assign({ Date: new RealDate(now).toUTCString() }, headers || {});
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: {
      get(n) {
        const k = Object.keys(h).find((x) => x.toLowerCase() === n.toLowerCase());
        return k === undefined ? null : String(h[k]);
      }
    },
    json() {
      return body === undefined ? Promise.reject(new SyntaxError("no JSON")) : Promise.resolve(JSON.parse(JSON.stringify(body)));
    }
  };
}

// hang is an answer that never comes, like a long poll still waiting.
function hang() {
  return "hang";
}

function fakeFetch(url, opts) {
  opts = opts || {};
  const call = { url, method: opts.method || "GET", opts, body: opts.body ? JSON.parse(opts.body) : undefined, at: now, aborted: false };
  calls.push(call);
  return new Promise((resolve, reject) => {
    if (opts.signal) {
      opts.signal.addEventListener("abort", () => {
        call.aborted = true;
        reject(new Error("AbortError"));
      });
    }
    let r;
    if (call.method === "GET" && call.url === "/.idv/sessions") {
      resolve(resumable ? response(200, resumable) : response(204));
      return;
    }
    try {
      r = handler(call);
    } catch (e) {
      reject(e);
      return;
    }
    if (r === "hang") return;
    if (r instanceof Error) {
      reject(r);
      return;
    }
    resolve(r);
  });
}

// ---- Loading the page ----

const doc = parse(fs.readFileSync(pagePath, "utf8"));
const replaced = [];
// phone makes matchMedia answer as a small touch screen would.
let phone = false;
const historyCalls = [];
const window = {
  location: {
    origin: ORIGIN,
    pathname: "/.idv/login",
    search: "",
    hash: "",
    replace(u) {
      replaced.push(u);
    },
    assign(u) {
      replaced.push(u);
    }
  },
  history: {
    replaceState(state, title, url) {
      historyCalls.push(url);
      window.location.hash = "";
    }
  },
  matchMedia(q) {
    return { matches: phone, media: q };
  },
  addEventListener() {}
};

function load() {
  const sandbox = {
    window,
    document: doc,
    fetch: fakeFetch,
    setTimeout: (fn, ms) => setTimer(fn, ms, false),
    clearTimeout: clearTimer,
    setInterval: (fn, ms) => setTimer(fn, ms, true),
    clearInterval: clearTimer,
    Date: FakeDate,
    URL,
    Intl,
    JSON,
    AbortController,
    Promise,
    console
  };
  vm.runInNewContext(fs.readFileSync(scriptPath, "utf8"), sandbox, { filename: "login.js" });
}

const $ = (id) => {
  const e = doc.getElementById(id);
  if (!e) throw new Error("no #" + id);
  return e;
};

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function eq(got, want, what) {
  if (got !== want) throw new Error(what + ": got " + JSON.stringify(got) + ", want " + JSON.stringify(want));
}

const posts = () => calls.filter((c) => c.method === "POST");
const polls = () => calls.filter((c) => c.method === "GET" && c.url !== "/.idv/sessions");
const visibleView = () =>
  doc
    .querySelectorAll(".idv-view")
    .filter((v) => !v.hidden)
    .map((v) => v.id);

function created(extra) {
  return response(
    201,
    Object.assign(
      {
        id: "L1",
        provider: "demo",
        expires_at: new RealDate(now + 120000).toISOString(),
        qr_text: ORIGIN + "/.idv/demo/wallet/L1",
        qr_svg_url: "/.idv/sessions/L1/qr.svg",
        status_url: "/.idv/sessions/L1"
      },
      extra || {}
    )
  );
}

// ---- Scenarios ----

const scenarios = {
  // One QR provider: the login starts on load and completes.
  async "qr completes"() {
    let state = "pending";
    handler = (c) => {
      if (c.method === "POST") return created({ control_code: "4821" });
      return response(200, { state, redirect: state === "completed" ? "/app?x=1#top" : undefined });
    };
    load();
    await advance(0);
    eq(posts().length, 1, "POST /sessions count");
    const p = posts()[0];
    eq(p.url, "/.idv/sessions", "POST URL");
    eq(p.opts.credentials, "same-origin", "credentials");
    eq(p.opts.headers["Content-Type"], "application/json", "Content-Type");
    eq(JSON.stringify(p.body), JSON.stringify({ provider: "demo", rd: "/app" }), "POST body");
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-progress"]), "visible view");
    eq($("idv-qr").src, "/.idv/sessions/L1/qr.svg", "QR src");
    assert($("idv-qr").visible, "QR hidden");
    eq($("idv-open").href, ORIGIN + "/.idv/demo/wallet/L1", "open link");
    eq($("idv-open").target, "", "open link target (this site's wallet opens here and sends the person back)");
    assert($("idv-open").visible, "open link hidden");
    eq($("idv-open").className, "button", "open link is secondary on a desktop");
    assert(!$("idv-other").visible, "\"Use another device\" shown on a desktop");
    const order = $("idv-challenge").children.map((c) => c.id);
    assert(order.indexOf("idv-qr-wrap") < order.indexOf("idv-open-wrap"), "the QR code does not lead on a desktop: " + order);
    eq($("idv-code").textContent, "4821", "control code");
    assert($("idv-code").visible, "control code hidden");
    eq($("idv-countdown").textContent, "02:00", "countdown");
    eq($("idv-progress-heading").textContent, "Scan the QR code to open the demo wallet", "heading");
    assert(doc.activeElement === null, "focus moved on page load");
    assert(polls().length >= 1, "no poll");
    eq(polls()[0].url, "/.idv/sessions/L1?wait=25", "poll URL");
    eq(polls()[0].opts.credentials, "same-origin", "poll credentials");
    await advance(5000);
    eq($("idv-countdown").textContent, "01:55", "countdown after 5 s");
    const before = polls().length;
    assert(before >= 3 && before <= 7, "polls of an immediate pending answer should be about 1 s apart, got " + before);
    state = "completed";
    await advance(1000);
    eq(JSON.stringify(replaced), JSON.stringify(["/app?x=1#top"]), "redirect");
    eq($("idv-status").textContent, "Logged in. Taking you back…", "status");
  },

  // A completed login whose redirect points elsewhere goes to "/".
  async "qr completes with foreign redirect"() {
    handler = (c) => (c.method === "POST" ? created() : response(200, { state: "completed", redirect: "//evil.example/" }));
    load();
    await advance(0);
    eq(JSON.stringify(replaced), JSON.stringify(["/"]), "redirect");
  },

  // A declined login shows the provider's text and Try again starts anew.
  async "qr declined and retried"() {
    handler = (c) => (c.method === "POST" ? created() : response(200, { state: "declined", error: "You declined on the phone." }));
    load();
    await advance(0);
    eq($("idv-progress-heading").textContent, "Login declined", "heading");
    eq($("idv-status").textContent, "You declined on the phone.", "status");
    assert($("idv-retry").visible, "Try again hidden");
    assert(!$("idv-qr").visible, "QR still shown");
    assert(doc.activeElement === $("idv-progress-heading"), "focus not on the heading");
    handler = (c) => (c.method === "POST" ? created() : hang());
    $("idv-retry").click();
    await advance(0);
    eq(posts().length, 2, "POST count after Try again");
    assert($("idv-qr").visible, "QR not shown again");
    assert(!$("idv-retry").visible, "Try again still shown");
  },

  // The countdown ends the login as expired and stops polling.
  async "qr countdown expires"() {
    handler = (c) => (c.method === "POST" ? created({ expires_at: new RealDate(now + 65000).toISOString() }) : hang());
    load();
    await advance(0);
    eq($("idv-countdown").textContent, "01:05", "countdown");
    await advance(5000);
    eq($("idv-time-announce").textContent, "1 minute left.", "announcement at one minute");
    await advance(31000);
    eq($("idv-time-announce").textContent, "30 seconds left.", "announcement at 30 seconds");
    await advance(29000);
    eq($("idv-progress-heading").textContent, "Login expired", "heading");
    assert($("idv-status").textContent.indexOf("expired") >= 0, "status does not say expired");
    assert($("idv-retry").visible, "Try again hidden");
    assert(polls().every((c) => c.aborted), "a poll is still running");
    const n = calls.length;
    await advance(60000);
    eq(calls.length, n, "requests after expiry");
  },

  // A server whose clock differs: the countdown follows the server.
  async "qr clock skew"() {
    handler = (c) => {
      if (c.method !== "POST") return hang();
      const r = created({ expires_at: new RealDate(now + 600000 + 120000).toISOString() });
      const h = r.headers.get;
      r.headers.get = (n) => (n.toLowerCase() === "date" ? new RealDate(now + 600000).toUTCString() : h(n));
      return r;
    };
    load();
    await advance(0);
    eq($("idv-countdown").textContent, "02:00", "countdown");
  },

  // Too many attempts: the message says how long, Try again waits.
  async "qr rate limited"() {
    handler = () => response(429, { error: "rate_limited", message: "Slow down." }, { "Retry-After": "30" });
    load();
    await advance(0);
    eq($("idv-status").textContent, "Too many attempts, try again in 30 seconds.", "status");
    assert($("idv-retry").visible && $("idv-retry").disabled, "Try again should be shown and held back");
    await advance(30000);
    assert(!$("idv-retry").disabled, "Try again still held back");
  },

  // An API error shows the server's message.
  async "qr start error"() {
    handler = () => response(503, { error: "provider_unavailable", message: "The identity provider did not answer." });
    load();
    await advance(0);
    eq($("idv-progress-heading").textContent, "Could not start the login", "heading");
    eq($("idv-status").textContent, "The identity provider did not answer.", "status");
    assert($("idv-retry").visible, "Try again hidden");
  },

  // Network errors while polling back off 1, 2, 4, 8, 10, 10 seconds.
  async "qr poll backoff"() {
    let fail = true;
    handler = (c) => {
      if (c.method === "POST") return created();
      return fail ? new TypeError("Failed to fetch") : hang();
    };
    load();
    await advance(0);
    eq($("idv-status").textContent, "Connection lost. Trying again in 1 second…", "status");
    await advance((1 + 2 + 4 + 8 + 10 + 10) * 1000);
    const times = polls().map((c) => c.at);
    const gaps = times.slice(1, 7).map((t, i) => (t - times[i]) / 1000);
    eq(JSON.stringify(gaps), JSON.stringify([1, 2, 4, 8, 10, 10]), "backoff gaps");
    fail = false;
    await advance(10000);
    const last = polls()[polls().length - 1];
    assert(!last.aborted, "poll after recovery");
  },

  // A refused poll (no pending cookie) ends the login with the message.
  async "qr poll refused"() {
    handler = (c) => (c.method === "POST" ? created() : response(403, { error: "forbidden", message: "This login belongs to another browser." }));
    load();
    await advance(0);
    eq($("idv-progress-heading").textContent, "Login failed", "heading");
    eq($("idv-status").textContent, "This login belongs to another browser.", "status");
  },

  // On a phone the app or link on this device leads; the QR code waits
  // behind "Use another device".
  async "qr on a phone"() {
    phone = true;
    handler = (c) => (c.method === "POST" ? created({ deep_link: "blockid://auth?s=1" }) : hang());
    load();
    await advance(0);
    eq($("idv-progress-heading").textContent, "Approve the login in the demo wallet", "heading");
    eq($("idv-open").className, "button primary", "open link is the primary action");
    eq($("idv-open").textContent, "Open the demo wallet", "open link text");
    eq($("idv-open").href, "blockid://auth?s=1", "open link");
    eq($("idv-open").target, "", "an app link opens here");
    assert($("idv-open").visible, "open link hidden");
    assert(!$("idv-qr").visible, "QR code shown on a phone before asking");
    assert($("idv-other").visible, "no \"Use another device\"");
    eq($("idv-other").getAttribute("aria-expanded"), "false", "aria-expanded");
    const order = $("idv-challenge").children.map((c) => c.id);
    assert(order.indexOf("idv-open-wrap") < order.indexOf("idv-qr-wrap"), "the link does not lead on a phone: " + order);
    $("idv-other").click();
    assert($("idv-qr").visible, "QR code hidden after \"Use another device\"");
    eq($("idv-other").getAttribute("aria-expanded"), "true", "aria-expanded after the click");
    eq($("idv-qr-caption").textContent, "Scan the QR code to open the demo wallet", "QR caption");
    $("idv-other").click();
    assert(!$("idv-qr").visible, "QR code still shown after closing");
  },

  // Back from the demo wallet on this device: the page finishes that login.
  async "resume"() {
    window.location.hash = "#idv-resume=ABCDEFGHIJKLMNOPQRSTUV";
    handler = (c) => response(200, { state: "completed", redirect: "/app?from=wallet" });
    load();
    await advance(0);
    eq(posts().length, 0, "a resumed login starts no new one");
    eq(polls()[0].url, "/.idv/sessions/ABCDEFGHIJKLMNOPQRSTUV?wait=25", "poll URL");
    eq(JSON.stringify(historyCalls), JSON.stringify(["/.idv/login"]), "the hash is dropped");
    eq(JSON.stringify(replaced), JSON.stringify(["/app?from=wallet"]), "redirect");
  },

  // A resumed login this browser no longer holds: a new one starts.
  async "resume refused"() {
    window.location.hash = "#idv-resume=ABCDEFGHIJKLMNOPQRSTUV";
    handler = (c) => {
      if (c.method === "POST") return created();
      if (c.url.indexOf("ABCDEFGH") >= 0) return response(403, { error: "forbidden", message: "This login was not started in this browser." });
      return hang();
    };
    load();
    await advance(0);
    eq(posts().length, 1, "a new login after the refusal");
    assert($("idv-qr").visible, "no QR code for the new login");
  },

  // A page in Estonian: the server's English is shown translated, and an
  // English text the catalogue does not know is replaced by the outcome's
  // own text.
  async "translated"() {
    handler = (c) => (c.method === "POST" ? created() : response(200, { state: "declined", error: "The login was declined in the wallet." }));
    load();
    await advance(0);
    eq($("idv-progress-heading").textContent, "Sisselogimisest keelduti", "heading");
    eq($("idv-status").textContent, "Sisselogimisest keelduti rahakotis.", "status");
    handler = (c) => (c.method === "POST" ? created() : response(200, { state: "failed", error: "Some new English text." }));
    $("idv-retry").click();
    await advance(0);
    eq($("idv-status").textContent, "Sisselogimine ei õnnestunud.", "status for an unknown text");
    handler = () => response(429, { error: "rate_limited", message: "Too many." }, { "Retry-After": "2" });
    $("idv-retry").click();
    await advance(0);
    eq($("idv-status").textContent, "Liiga palju katseid, proovi uuesti 2 sekundi pärast.", "rate limit status");
  },

  // Several providers: a choice, a form with field errors, then the login,
  // and back to the choice.
  async "choice and form"() {
    handler = () => hang();
    load();
    await advance(0);
    eq(posts().length, 0, "POST before a choice");
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-choose"]), "visible view");
    const mobile = doc.querySelectorAll(".idv-choice").find((b) => b.getAttribute("data-provider") === "mobileid");
    mobile.click();
    await advance(0);
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-p1"]), "visible view after choosing");
    assert(doc.activeElement === $("idv-p1-heading"), "focus not on the form heading");
    const form = doc.querySelector("form.idv-form");
    const phone = $("idv-p1-f0");
    const code = $("idv-p1-f1");

    form.dispatch("submit");
    await advance(0);
    eq(posts().length, 0, "POST with empty fields");
    eq(phone.getAttribute("aria-invalid"), "true", "phone aria-invalid");
    assert($("idv-p1-f0-error").visible && $("idv-p1-f0-error").textContent !== "", "phone error not shown");
    assert(doc.activeElement === phone, "focus not on the first invalid field");

    phone.value = " +37200000766 ";
    code.value = "60001019906";
    handler = (c) =>
      c.method === "POST"
        ? response(400, { error: "invalid_input", message: "This number has no Mobile-ID.", field: "phone" })
        : hang();
    form.dispatch("submit");
    await advance(0);
    eq(posts().length, 1, "POST count");
    eq(JSON.stringify(posts()[0].body), JSON.stringify({ phone: "+37200000766", personal_code: "60001019906", provider: "mobileid", rd: "/app" }), "POST body");
    eq($("idv-p1-f0-error").textContent, "This number has no Mobile-ID.", "server's field error");
    eq(phone.getAttribute("aria-invalid"), "true", "phone aria-invalid after server error");
    eq(code.getAttribute("aria-invalid"), null, "code aria-invalid");
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-p1"]), "view after field error");

    handler = (c) =>
      c.method === "POST"
        ? response(201, { id: "M1", provider: "mobileid", expires_at: new RealDate(now + 120000).toISOString(), control_code: "1234", status_url: "/.idv/sessions/M1" })
        : hang();
    form.dispatch("submit");
    await advance(0);
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-progress"]), "view after start");
    eq(phone.getAttribute("aria-invalid"), null, "phone aria-invalid after success");
    eq($("idv-code").textContent, "1234", "control code");
    assert(!$("idv-qr").visible, "QR shown without a QR");
    assert(!$("idv-open").visible, "link shown without a link");
    eq($("idv-progress-heading").textContent, "Check the code, then enter your PIN1 on your phone", "heading");
    assert(doc.activeElement === $("idv-progress-heading"), "focus not on the progress heading");

    const back = $("idv-progress").querySelector(".idv-back");
    back.click();
    await advance(0);
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-choose"]), "view after Back");
    assert(polls().every((c) => c.aborted), "poll not stopped by Back");
    assert(doc.activeElement === $("idv-choose-heading"), "focus not on the choice heading");
  },

  // A reloaded page shows the login it already started (GET /sessions)
  // and polls it, without starting another.
  async "reload resumes"() {
    resumable = { id: "abcdefghijklmnopqrstuv", provider: "demo", expires_at: new RealDate(now + 120000).toISOString(),
      qr_text: ORIGIN + "/.idv/demo/wallet/abcdefghijklmnopqrstuv", qr_svg_url: "/.idv/sessions/abcdefghijklmnopqrstuv/qr.svg",
      status_url: "/.idv/sessions/abcdefghijklmnopqrstuv" };
    handler = (c) => (c.method === "POST" ? created() : hang());
    load();
    await advance(0);
    eq(posts().length, 0, "POST of a new login on reload");
    assert(calls.some((c) => c.method === "GET" && c.url.indexOf("/.idv/sessions/abcdefghijklmnopqrstuv?wait=") === 0), "the resumed login is not polled");
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-progress"]), "visible view");
  },

  // A single provider that costs something to start waits for its button.
  async "no autostart"() {
    handler = (c) => (c.method === "POST" ? created() : hang());
    doc.querySelectorAll(".idv-choice").forEach((b) => b.setAttribute("data-autostart", "false"));
    load();
    await advance(0);
    eq(posts().length, 0, "POST before the person chose");
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-choose"]), "visible view");
    doc.querySelectorAll(".idv-choice")[0].click();
    await advance(0);
    eq(posts().length, 1, "POST after the choice");
  },

  // A single form provider shows its form at once, without focus moving.
  async "single form"() {
    handler = () => hang();
    load();
    await advance(0);
    eq(JSON.stringify(visibleView()), JSON.stringify(["idv-p0"]), "visible view");
    eq(doc.activeElement, null, "focus");
    eq(doc.querySelectorAll(".idv-back").length, 0, "Back without a choice");
  }
};

(async () => {
  const run = scenarios[scenarioName];
  if (!run) {
    console.error("no scenario " + scenarioName + "; have: " + Object.keys(scenarios).join(", "));
    process.exit(2);
  }
  try {
    await run();
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    console.error("calls: " + JSON.stringify(calls.map((c) => [c.method, c.url, c.at - calls[0].at])));
    process.exit(1);
  }
  process.stdout.write("ok\n");
})();
