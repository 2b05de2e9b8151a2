package templates

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// SourceLanguage is the language of the embedded locales/en.json and of
// every person-facing text the module's Go code writes (provider labels,
// hints, field errors, outcome messages, API error messages). Those texts
// are looked up by their English wording in the "msg." messages of
// locales/en.json, so the JSON API keeps speaking English to programs while
// pages show them translated.
const SourceLanguage = "en"

// DefaultLanguages are offered when the operator lists none: all languages
// the module ships, English first (the default).
func DefaultLanguages() []string { return []string{"en", "et", "lt", "lv", "ru", "ar"} }

// LanguageParam is the query parameter that picks a language (?lang=et);
// LanguageCookie remembers the choice.
const (
	LanguageParam  = "lang"
	LanguageCookie = "idv_lang"
)

// sourcePrefix marks the messages whose English text is the wording the Go
// code uses; they are found by that wording (Lang.Text).
const sourcePrefix = "msg."

// localesDir is where catalogues live, embedded and in an override
// directory: one JSON file per language, named by its tag (et.json).
const localesDir = "locales"

// rtlScripts are the scripts written right to left among those CLDR gives as
// a language's likely script; a language written in one gets dir="rtl".
var rtlScripts = map[string]bool{
	"Adlm": true, "Arab": true, "Hebr": true, "Mand": true, "Nkoo": true,
	"Rohg": true, "Samr": true, "Syrc": true, "Thaa": true, "Yezi": true,
}

// Lang is one offered language: its messages and how to show them.
type Lang struct {
	// Tag is the BCP 47 tag, as in lang="...".
	Tag string
	// Dir is "rtl" or "ltr".
	Dir string
	// Name is the language's name in itself (message "language.name").
	Name string

	loc *i18n.Localizer
	// messages are this language's messages by id, for plural forms and
	// existence checks (go-i18n answers with the default language when a
	// message is missing; here nothing is missing, Load checks it).
	messages map[string]*i18n.Message
	cat      *catalogue
	// scripts are the texts of the page scripts, by script ("login",
	// "wallet"), ready to be rendered as JSON.
	scripts map[string]map[string]any
}

// catalogue is the messages of every offered language.
type catalogue struct {
	langs   []*Lang // offered, the default first
	matcher language.Matcher
	// source maps the English wording of every "msg." message to its id.
	source map[string]string
}

// loadCatalogue reads the embedded catalogues and, when dir is not "", the
// files in dir/locales, which add messages and replace single ones. It
// refuses an offered language without messages, and a language that lacks a
// message another offered language has or a plural form its plural rules
// need: a page is never half translated.
func loadCatalogue(dir string, offered []string) (*catalogue, error) {
	if len(offered) == 0 {
		offered = DefaultLanguages()
	}
	all := map[language.Tag]map[string]*i18n.Message{}
	embeddedLocales, err := fs.Sub(embedded, localesDir)
	if err != nil {
		return nil, err
	}
	if err := readLocales(embeddedLocales, localesDir, all); err != nil {
		return nil, err
	}
	embeddedIDs := map[string]bool{}
	source := map[string]string{}
	for id, m := range all[language.English] {
		embeddedIDs[id] = true
		if strings.HasPrefix(id, sourcePrefix) {
			if other, dup := source[m.Other]; dup {
				return nil, fmt.Errorf("templates: embedded messages %s and %s have the same English text", other, id)
			}
			source[m.Other] = id
		}
	}
	if dir != "" {
		d := filepath.Join(dir, localesDir)
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			if err := readLocales(os.DirFS(d), d, all); err != nil {
				return nil, err
			}
		} else if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("templates: %s: not a readable directory", d)
		}
	}

	var tags []language.Tag
	for _, s := range offered {
		t, err := language.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("templates: language %q: %v", s, err)
		}
		if slices.Contains(tags, t) {
			return nil, fmt.Errorf("templates: language %q is listed twice", s)
		}
		if all[t] == nil {
			return nil, fmt.Errorf("templates: language %q has no messages: add %s/%s.json to the templates directory", s, localesDir, t)
		}
		tags = append(tags, t)
	}
	// Every offered language must have every message the module's own
	// templates and scripts use and every message any of them has.
	ids := map[string]bool{}
	for id := range all[language.English] {
		if embeddedIDs[id] {
			ids[id] = true
		}
	}
	for _, t := range tags {
		for id := range all[t] {
			ids[id] = true
		}
	}
	for _, t := range tags {
		var missing []string
		for id := range ids {
			if _, ok := all[t][id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			if len(missing) > 10 {
				missing = append(missing[:10], fmt.Sprintf("and %d more", len(missing)-10))
			}
			return nil, fmt.Errorf("templates: language %s lacks messages %s: translate them, or offer fewer languages with `languages`", t, strings.Join(missing, ", "))
		}
	}

	bundle := i18n.NewBundle(tags[0])
	for _, t := range tags {
		for _, m := range all[t] {
			if err := bundle.AddMessages(t, m); err != nil {
				return nil, fmt.Errorf("templates: messages of %s: %w", t, err)
			}
		}
	}
	c := &catalogue{matcher: language.NewMatcher(tags), source: source}
	for _, t := range tags {
		l := &Lang{Tag: t.String(), Dir: direction(t), loc: i18n.NewLocalizer(bundle, t.String()), messages: all[t], cat: c}
		if err := l.check(); err != nil {
			return nil, err
		}
		name, err := l.T("language.name")
		if err != nil {
			return nil, err
		}
		l.Name = name
		if l.scripts, err = l.scriptTexts(); err != nil {
			return nil, err
		}
		c.langs = append(c.langs, l)
	}
	return c, nil
}

// readLocales reads every <tag>.json of fsys into all, replacing messages of
// the same id. from names fsys in errors.
func readLocales(fsys fs.FS, from string, all map[language.Tag]map[string]*i18n.Message) error {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return err
	}
	for _, name := range names {
		file := path.Join(from, name)
		t, err := language.Parse(strings.TrimSuffix(name, ".json"))
		if err != nil {
			return fmt.Errorf("templates: %s: the file name must be a language tag, such as et.json: %v", file, err)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		msgs, err := i18n.ParseMessageBytes(b, json.Unmarshal)
		if err != nil {
			return fmt.Errorf("templates: %s: %w", file, err)
		}
		if all[t] == nil {
			all[t] = map[string]*i18n.Message{}
		}
		for _, m := range msgs {
			all[t][m.ID] = m
		}
	}
	return nil
}

// direction is "rtl" for a language written in a right-to-left script.
func direction(t language.Tag) string {
	if s, _ := t.Script(); rtlScripts[s.String()] {
		return "rtl"
	}
	return "ltr"
}

// pluralSamples are counts that reach every plural form of CLDR's integer
// rules (Arabic's "many" needs 11-99, its "other" 100-102).
const pluralSamples = 200

// check refuses messages that do not execute, and plural messages that lack
// a form this language's plural rules choose for some count.
func (l *Lang) check() error {
	for id, m := range l.messages {
		if !plural(m) {
			if _, err := l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: sampleArgs}); err != nil {
				return fmt.Errorf("templates: message %s (%s): %w", id, l.Tag, err)
			}
			continue
		}
		for n := 0; n <= pluralSamples; n++ {
			if _, err := l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: n, TemplateData: withCount(sampleArgs, n)}); err != nil {
				return fmt.Errorf("templates: message %s (%s), count %d: %w", id, l.Tag, n, err)
			}
		}
	}
	return nil
}

// sampleArgs fill every argument messages use, for the load-time check.
var sampleArgs = map[string]any{
	"Site": "s", "Client": "c", "User": "u", "Time": "t", "Status": 500, "Hint": "h", "Count": 2, "Label": "l",
}

func withCount(args map[string]any, n int) map[string]any {
	out := make(map[string]any, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	out["Count"] = n
	return out
}

func plural(m *i18n.Message) bool {
	return m.Zero != "" || m.One != "" || m.Two != "" || m.Few != "" || m.Many != ""
}

// args turns key, value pairs into a message's template data.
func args(kv []any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("templates: message arguments must be key, value pairs")
	}
	data := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("templates: message argument name %v is not a string", kv[i])
		}
		data[k] = kv[i+1]
	}
	return data, nil
}

// Has reports whether the language has message id.
func (l *Lang) Has(id string) bool {
	_, ok := l.messages[id]
	return ok
}

// T is message id with arguments given as key, value pairs ("Site",
// "Example"). An unknown id is an error.
func (l *Lang) T(id string, kv ...any) (string, error) {
	if !l.Has(id) {
		return "", fmt.Errorf("templates: no message %q", id)
	}
	data, err := args(kv)
	if err != nil {
		return "", err
	}
	return l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
}

// N is the plural message id for count n (its argument Count), in the form
// the language's plural rules choose.
func (l *Lang) N(id string, n int, kv ...any) (string, error) {
	if !l.Has(id) {
		return "", fmt.Errorf("templates: no message %q", id)
	}
	data, err := args(kv)
	if err != nil {
		return "", err
	}
	data["Count"] = n
	return l.loc.Localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: n, TemplateData: data})
}

// must is T for texts the catalogue is known to have (Load checked them).
func (l *Lang) must(id string, kv ...any) string {
	s, err := l.T(id, kv...)
	if err != nil {
		return id
	}
	return s
}

// Text shows s: the message s when s is a message id, the translation of s
// when s is the English wording of a "msg." message (a provider's label, a
// field error), else s itself (an operator's own label).
func (l *Lang) Text(s string) string {
	if s == "" {
		return ""
	}
	if l.Has(s) && !plural(l.messages[s]) {
		if t, err := l.T(s); err == nil {
			return t
		}
	}
	if id, ok := l.cat.source[s]; ok {
		if t, err := l.T(id); err == nil {
			return t
		}
	}
	return s
}

// Known reports whether Text translates s.
func (l *Lang) Known(s string) bool {
	_, ok := l.cat.source[s]
	return ok || (l.Has(s) && !plural(l.messages[s]))
}

// TextOr is Text for a message the module's Go code wrote, such as an error
// from a provider: when it is not in the catalogue and this is not the
// source language, the message fallback is shown instead, so that no
// English reaches a page in another language.
func (l *Lang) TextOr(s, fallback string) string {
	if s == "" || (!l.Known(s) && !l.isSource()) {
		return l.must(fallback)
	}
	return l.Text(s)
}

// Heading is the heading of an error page: s when it is set and can be
// shown in this language (Text), else the heading of the status code.
func (l *Lang) Heading(s string, code int) string {
	if s == "" || (!l.Known(s) && !l.isSource()) {
		return l.Status(code)
	}
	return l.Text(s)
}

// Message is TextOr for the message of an error with HTTP status code: the
// fallback is the generic text of client (4xx) or server (5xx) errors.
func (l *Lang) Message(s string, code int) string {
	if code >= 500 {
		return l.TextOr(s, "error.server")
	}
	return l.TextOr(s, "error.client")
}

func (l *Lang) isSource() bool {
	t, _ := language.Parse(l.Tag)
	b, _ := t.Base()
	return b.String() == SourceLanguage
}

// Kind is a text about a provider kind ("use", "scan", "open", "button",
// "confirm"): message kind.<kind>.<what>, else kind.other.<what>, else "".
func (l *Lang) Kind(kind, what string) string {
	for _, id := range []string{"kind." + kind + "." + what, "kind.other." + what} {
		if l.Has(id) {
			return l.must(id)
		}
	}
	return ""
}

// Status is the heading of an error page for an HTTP status: message
// status.<code>, else error.title.
func (l *Lang) Status(code int) string {
	if id := fmt.Sprintf("status.%d", code); l.Has(id) {
		return l.must(id)
	}
	return l.must("error.title")
}

// scriptTexts are the texts login.js and wallet.js show, rendered into the
// pages as JSON (the Content-Security-Policy allows no inline script): the
// messages script.<name>.*, plural ones as their forms, and for login.js the
// translations of the "msg." messages by their English wording, since the
// status answer of a login carries the provider's English text.
func (l *Lang) scriptTexts() (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for _, name := range []string{"login", "wallet"} {
		prefix := "script." + name + "."
		text := map[string]any{}
		for id, m := range l.messages {
			key, ok := strings.CutPrefix(id, prefix)
			if !ok {
				continue
			}
			if plural(m) {
				forms := map[string]string{"other": m.Other}
				for form, s := range map[string]string{"zero": m.Zero, "one": m.One, "two": m.Two, "few": m.Few, "many": m.Many} {
					if s != "" {
						forms[form] = s
					}
				}
				text[key] = forms
				continue
			}
			text[key] = m.Other
		}
		out[name] = map[string]any{"lang": l.Tag, "text": text}
	}
	// Only sentences: the messages the API's JSON carries (outcomes, field
	// errors, API errors), not labels and hints, which the server renders,
	// nor the OpenID Connect provider's, which only error pages show.
	server := map[string]string{}
	for english, id := range l.cat.source {
		if !strings.HasSuffix(english, ".") || strings.HasPrefix(id, "msg.oidc.") {
			continue
		}
		if t, err := l.T(id); err == nil && t != english {
			server[english] = t
		}
	}
	out["login"]["server"] = server
	// In another language than the source, a message the catalogue does not
	// know is replaced by the generic text of its outcome.
	out["login"]["generic"] = !l.isSource()
	return out, nil
}

// Script is the JSON data of page script name ("login" or "wallet").
func (l *Lang) Script(name string) (map[string]any, error) {
	s, ok := l.scripts[name]
	if !ok {
		return nil, fmt.Errorf("templates: no script texts %q", name)
	}
	return s, nil
}

// Languages are the offered languages, the default first.
func (s *Set) Languages() []*Lang { return s.cat.langs }

// Default is the default language: the first offered.
func (s *Set) Default() *Lang { return s.cat.langs[0] }

// Lang is the offered language that value (a tag such as "et" or "et-EE")
// names, and whether there is one. Only a close match counts: Ukrainian is
// not answered in Russian.
func (s *Set) Lang(value string) (*Lang, bool) {
	t, err := language.Parse(strings.TrimSpace(value))
	if err != nil {
		return nil, false
	}
	_, i, conf := s.cat.matcher.Match(t)
	if conf < language.High {
		return nil, false
	}
	return s.cat.langs[i], true
}

// Negotiate picks the language of a page for r: a valid ?lang= (chosen is
// then true, and the caller remembers it in LanguageCookie), else the
// cookie, else the best match of Accept-Language, else the default.
func (s *Set) Negotiate(r *http.Request) (l *Lang, chosen bool) {
	if v := r.URL.Query().Get(LanguageParam); v != "" {
		if l, ok := s.Lang(v); ok {
			return l, true
		}
	}
	if c, err := r.Cookie(LanguageCookie); err == nil {
		if l, ok := s.Lang(c.Value); ok {
			return l, false
		}
	}
	prefs, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(prefs) == 0 {
		return s.Default(), false
	}
	_, i, conf := s.cat.matcher.Match(prefs...)
	if conf == language.No {
		return s.Default(), false
	}
	return s.cat.langs[i], false
}
