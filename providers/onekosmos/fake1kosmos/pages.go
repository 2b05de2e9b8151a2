package fake1kosmos

import (
	"html/template"
	"net/http"
	"sort"
)

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.}}</title><style>body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}
button{font-size:1.1em;margin:.3em;padding:.5em 1em}</style></head><body>
<p><em>fake1kosmos — a simulated phone for local tests. Not 1Kosmos.</em></p>{{end}}
{{define "wallet"}}{{template "head" "Simulated BlockID app"}}
<h1>Simulated BlockID app</h1>
{{if .Open}}<p>A website asks you to log in as <b>{{.User}}</b> (session {{.ID}}).</p>
<form method="post" action="/_fake/blockid/{{.ID}}/approve"><button>Approve</button></form>
<form method="post" action="/_fake/blockid/{{.ID}}/decline"><button>Decline (the app just stays silent)</button></form>
{{else}}<p>This session is answered, expired or unknown. Go back to the website.</p>{{end}}
</body></html>{{end}}
{{define "capture"}}{{template "head" "Simulated ID verification"}}
<h1>Simulated ID verification</h1>
<p>Session {{.ID}}: state <b>{{.State}}</b>.</p>
{{if eq .State "PENDING"}}
<form method="post" action="/_fake/idv/{{.ID}}/consent"><button>I consent — let's get started</button></form>
<form method="post" action="/_fake/idv/{{.ID}}/decline"><button>Decline</button></form>
{{else if eq .State "INPROGRESS"}}
<form method="post" action="/_fake/idv/{{.ID}}/submit"><button>Submit passport and selfie (passes)</button></form>
<form method="post" action="/_fake/idv/{{.ID}}/fail"><button>Submit an unsupported document (fails)</button></form>
{{else}}<p>Nothing more to do here. Go back to the website.</p>{{end}}
</body></html>{{end}}
{{define "index"}}{{template "head" "fake1kosmos"}}
<h1>fake1kosmos</h1>
<h2>BlockID sessions waiting for the phone</h2>
<ul>{{range .UWL}}<li><a href="/sessions/session/{{.}}">{{.}}</a>
<form style="display:inline" method="post" action="/_fake/blockid/{{.}}/approve"><button>Approve</button></form></li>
{{else}}<li>none</li>{{end}}</ul>
<h2>ID-verification sessions</h2>
<ul>{{range .IDV}}<li><a href="/idproofing/session/{{.}}">{{.}}</a></li>{{else}}<li>none</li>{{end}}</ul>
</body></html>{{end}}
`))

func (f *Fake) walletPage(w http.ResponseWriter, _ *http.Request, id string) {
	f.mu.Lock()
	s := f.uwl[id]
	ok := s != nil && s.Answer == nil && !s.expired(f.cfg.Now())
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "wallet", map[string]any{"ID": id, "Open": ok, "User": f.demoWallet.UserID})
}

func (f *Fake) capturePage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	s := f.idv[id]
	state := ""
	if s != nil {
		state = f.idvState(s, f.cfg.Now())
	}
	f.mu.Unlock()
	if s == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "capture", map[string]any{"ID": id, "State": state})
}

func (f *Fake) indexPage(w http.ResponseWriter, _ *http.Request) {
	uwl := f.UWLSessions()
	idv := f.IDVSessions()
	sort.Strings(uwl)
	sort.Strings(idv)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "index", map[string]any{"UWL": uwl, "IDV": idv})
}
