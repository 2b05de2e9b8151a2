// Package templates holds what a person sees during a login: the login page,
// the error page and the demo provider's wallet page, as html/template files
// embedded in the binary, and their static assets (style.css, login.js,
// wallet.js).
//
// The handler sends every page with a strict Content-Security-Policy
// (default-src 'none'; script-src 'self'; style-src 'self'; ...), so the
// templates use no inline scripts, no style attributes or blocks and no
// resources from other sites; data reaches the scripts in data-* attributes
// and in JSON data blocks (<script type="application/json">, which no
// browser executes).
//
// # Languages
//
// Every text a page shows comes from the message catalogues in locales/:
// one JSON file per language, named by its BCP 47 tag (en.json, et.json),
// in go-i18n's format: "id": "text", or for a text that depends on a
// number, "id": {"one": "...", "few": "...", "other": "..."} with the forms
// the language's CLDR plural rules use. Arguments are written {{.Name}}.
// The module ships English, Estonian, Lithuanian, Latvian, Russian and
// Arabic (written right to left: pages get dir="rtl"). Render shows a page
// in one language; Set.Negotiate picks it for a request (?lang=, the
// idv_lang cookie, Accept-Language, else the first language offered).
//
// Messages whose id starts with "msg." are the English texts of the Go code
// (provider labels and hints, field errors, outcome and API messages): the
// pages find them by their English wording, so the JSON API keeps its
// English while pages show the translation.
//
// # Overriding the pages
//
// The `templates <dir>` option names a directory whose layout.html,
// login.html, error.html or wallet.html replace the embedded file of the same
// name; a file that is not there stays embedded, and so do the static assets.
// Its locales/<tag>.json files add messages (for the operator's own
// templates) and replace single embedded ones, in any language, or add a
// language. Every offered language must have every message, with every
// plural form it needs: otherwise the configuration is refused, naming the
// missing ids, so that no page is half translated. Start from a copy of the
// embedded file. The contract between them:
//
//   - layout.html is the document. It executes {{template "content" .}} and
//     may offer the blocks "title" and "head" (where pages put their
//     <script src=... defer>).
//   - Each page file defines "content" and may define "title" and "head".
//     Its data is Login, Error or Wallet (data.go).
//   - The function asset returns a static file's name with its version, as
//     in {{.Prefix}}/static/{{asset "login.js"}}, so that browsers may cache
//     it for a year and still see a new release at once.
//   - The functions that speak the page's language (see langFuncs): t "id"
//     ["Name" value]... is a message; tn "id" n is a plural one; text s shows
//     a message id, a translated English text of the Go code, or an
//     operator's own text as it is; kind <kind> "use"|"scan"|"open"|
//     "button"|"confirm" says what a provider kind asks of the person;
//     script "login"|"wallet" is the texts of a page script, for its JSON
//     block #idv-text.
//   - Every page is executed once with sample data when the configuration
//     loads, so a template that cannot run is refused then, not later.
//
// login.js needs these elements in login.html: the JSON block #idv-text
// ({{script "login"}}); #idv-login with data-prefix and data-rd; sections of
// class idv-view (#idv-choose, one per form provider, #idv-progress), each
// headed by an h2 with tabindex="-1"; buttons of class idv-choice with
// data-provider, data-flow and the kind's texts data-scan, data-open,
// data-button and data-confirm, holding a .choice-label; for a form
// provider, form.idv-form with data-provider, inputs whose error element has
// the id "<input id>-error" (and hint "<input id>-hint"), and a .form-error;
// in #idv-progress: #idv-progress-heading, #idv-challenge holding
// #idv-qr-wrap (with #idv-qr-caption and #idv-qr), #idv-open-wrap with
// #idv-open and #idv-other-wrap with #idv-other (which it orders: the QR
// code first on a desktop, the link first on a phone), #idv-code-wrap,
// #idv-code, #idv-timer-wrap, #idv-countdown, #idv-time-announce,
// #idv-status and #idv-retry; and optional .idv-back buttons. wallet.js
// reads #idv-text ({{script "wallet"}}), time.idv-local, form.idv-answer,
// #idv-wallet-status and, after an answer on the device that started the
// login, #idv-return with data-auto="true", which it follows.
package templates
