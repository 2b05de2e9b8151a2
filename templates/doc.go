// Package templates holds what a person sees during a login: the login page,
// the error page and the demo provider's wallet page, as html/template files
// embedded in the binary, and their static assets (style.css, login.js,
// wallet.js).
//
// The handler sends every page with a strict Content-Security-Policy
// (default-src 'none'; script-src 'self'; style-src 'self'; ...), so the
// templates use no inline scripts, no style attributes or blocks and no
// resources from other sites; data reaches the scripts in data-* attributes.
//
// # Overriding the pages
//
// The `templates <dir>` option names a directory whose layout.html,
// login.html, error.html or wallet.html replace the embedded file of the same
// name; a file that is not there stays embedded, and so do the static assets.
// Start from a copy of the embedded file. The contract between them:
//
//   - layout.html is the document. It executes {{template "content" .}} and
//     may offer the blocks "title" and "head" (where pages put their
//     <script src=... defer>).
//   - Each page file defines "content" and may define "title" and "head".
//     Its data is Login, Error or Wallet (data.go).
//   - The function asset returns a static file's name with its version, as
//     in {{.Prefix}}/static/{{asset "login.js"}}, so that browsers may cache
//     it for a year and still see a new release at once.
//   - Every page is executed once with sample data when the configuration
//     loads, so a template that cannot run is refused then, not later.
//
// login.js needs these elements in login.html: #idv-login with data-prefix
// and data-rd; sections of class idv-view (#idv-choose, one per form
// provider, #idv-progress), each headed by an h2 with tabindex="-1";
// buttons of class idv-choice with data-provider and data-flow; for a form
// provider, form.idv-form with data-provider, inputs whose error element has
// the id "<input id>-error" (and hint "<input id>-hint"), and a .form-error;
// in #idv-progress: #idv-progress-heading, #idv-qr-wrap, #idv-qr,
// #idv-open-wrap, #idv-open, #idv-code-wrap, #idv-code, #idv-timer-wrap,
// #idv-countdown, #idv-time-announce, #idv-status and #idv-retry; and
// optional .idv-back buttons.
package templates
