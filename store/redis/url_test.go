package redisstore

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	type want struct {
		mode       string
		addrs      []string
		db         int
		tls        bool
		user, pass string
		master     string
	}
	cases := []struct {
		name, url string
		want      want
	}{
		{"single", "redis://127.0.0.1:6379", want{mode: modeSingle, addrs: []string{"127.0.0.1:6379"}}},
		{"single default port and db", "redis://cache.internal/3", want{mode: modeSingle, addrs: []string{"cache.internal:6379"}, db: 3}},
		{"password only", "redis://:s3cr%40t@h:6380/0", want{mode: modeSingle, addrs: []string{"h:6380"}, pass: "s3cr@t"}},
		{"user and password", "redis://idv:pw@h:6379/1", want{mode: modeSingle, addrs: []string{"h:6379"}, db: 1, user: "idv", pass: "pw"}},
		{"tls", "rediss://idv:pw@redis.example.com:6380/0", want{mode: modeSingle, addrs: []string{"redis.example.com:6380"}, tls: true, user: "idv", pass: "pw"}},
		{"ipv6", "redis://[::1]:7000", want{mode: modeSingle, addrs: []string{"[::1]:7000"}}},
		{"unix", "unix:///run/redis.sock?db=2", want{mode: modeSingle, addrs: []string{"/run/redis.sock"}, db: 2}},
		{"sentinel comma list", "redis://s1:26379,s2:26379,s3:26379/0?master_name=mymaster",
			want{mode: modeSentinel, addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, master: "mymaster"}},
		{"sentinel addr params", "redis://s1:26379/2?master_name=m&addr=s2:26379",
			want{mode: modeSentinel, addrs: []string{"s1:26379", "s2:26379"}, db: 2, master: "m"}},
		{"sentinel one", "rediss://s1:26379?master_name=m", want{mode: modeSentinel, addrs: []string{"s1:26379"}, tls: true, master: "m"}},
		{"cluster comma list", "redis://:pw@n1:7000,n2:7001,n3:7002", want{mode: modeCluster, addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, pass: "pw"}},
		{"cluster addr params", "rediss://n1:7000?addr=n2:7001", want{mode: modeCluster, addrs: []string{"n1:7000", "n2:7001"}, tls: true}},
		{"cluster one seed", "redis://cfg.example.com:6379/0?cluster=true", want{mode: modeCluster, addrs: []string{"cfg.example.com:6379"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseURL(c.url)
			if err != nil {
				t.Fatalf("parseURL: %v", err)
			}
			got := want{mode: cfg.mode, addrs: cfg.addrs, tls: cfg.tls()}
			var dial, read time.Duration
			var ctxTimeout bool
			switch {
			case cfg.single != nil:
				o := cfg.single
				got.db, got.user, got.pass = o.DB, o.Username, o.Password
				dial, read, ctxTimeout = o.DialTimeout, o.ReadTimeout, o.ContextTimeoutEnabled
				if o.Addr != c.want.addrs[0] {
					t.Errorf("go-redis address %q, want %q", o.Addr, c.want.addrs[0])
				}
			case cfg.failover != nil:
				o := cfg.failover
				got.db, got.user, got.pass, got.master = o.DB, o.SentinelUsername, o.SentinelPassword, o.MasterName
				dial, read, ctxTimeout = o.DialTimeout, o.ReadTimeout, o.ContextTimeoutEnabled
				if !slices.Equal(o.SentinelAddrs, c.want.addrs) {
					t.Errorf("Sentinel addresses %q, want %q", o.SentinelAddrs, c.want.addrs)
				}
				if o.TLSConfig != nil && o.TLSConfig.ServerName != "" {
					t.Errorf("TLS server name %q, want each server's own", o.TLSConfig.ServerName)
				}
			case cfg.cluster != nil:
				o := cfg.cluster
				got.user, got.pass = o.Username, o.Password
				dial, read, ctxTimeout = o.DialTimeout, o.ReadTimeout, o.ContextTimeoutEnabled
				if !slices.Equal(o.Addrs, c.want.addrs) {
					t.Errorf("cluster addresses %q, want %q", o.Addrs, c.want.addrs)
				}
				if o.TLSConfig != nil && o.TLSConfig.ServerName != "" {
					t.Errorf("TLS server name %q, want each node's own", o.TLSConfig.ServerName)
				}
			}
			if got.mode != c.want.mode || !slices.Equal(got.addrs, c.want.addrs) || got.db != c.want.db ||
				got.tls != c.want.tls || got.user != c.want.user || got.pass != c.want.pass || got.master != c.want.master {
				t.Errorf("parsed %+v, want %+v", got, c.want)
			}
			if dial != defaultDialTimeout || read != defaultReadTimeout || !ctxTimeout {
				t.Errorf("dial timeout %v, read timeout %v, context timeouts %v; want the defaults", dial, read, ctxTimeout)
			}
		})
	}
}

func TestParseURLOptions(t *testing.T) {
	cfg, err := parseURL("rediss://h:6380/0?dial_timeout=5s&read_timeout=1&pool_size=7&insecure_skip_verify=true")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.single
	if o.DialTimeout != 5*time.Second || o.ReadTimeout != time.Second || o.PoolSize != 7 {
		t.Errorf("options from the URL not kept: dial %v read %v pool %d", o.DialTimeout, o.ReadTimeout, o.PoolSize)
	}
	if !cfg.insecure || !o.TLSConfig.InsecureSkipVerify {
		t.Errorf("insecure_skip_verify not applied")
	}
}

func TestParseURLRefused(t *testing.T) {
	cases := []struct{ name, url, want string }{
		{"scheme", "http://h:6379", "scheme"},
		{"no scheme", "h:6379", "scheme"},
		{"empty server", "redis://a:1,,b:2", "empty server"},
		{"bad port", "redis://a:x", "port"},
		{"bad db", "redis://h/x", "database"},
		{"cluster db", "redis://a:1,b:2/3", "database 0"},
		{"unknown option", "redis://h?frobnicate=1", "frobnicate"},
		{"skip_verify", "rediss://h?skip_verify=true", "insecure_skip_verify"},
		{"insecure without tls", "redis://h?insecure_skip_verify=true", "rediss"},
		{"replica reads", "redis://s:26379?master_name=m&replica_only=true", "replica"},
		{"route randomly", "redis://a:1,b:2?route_randomly=true", "replica"},
		{"read only", "redis://a:1,b:2?read_only=1", "replica"},
		{"sentinel and cluster", "redis://s:26379?master_name=m&cluster=true", "exclude"},
		{"bad boolean", "redis://h?cluster=maybe", "boolean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseURL(c.url)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("parseURL(%q) = %v, want an error about %q", c.url, err, c.want)
			}
		})
	}
}

// TestParseURLErrorHidesPassword checks that no error quotes the URL, which
// may hold the password.
func TestParseURLErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:hunter2@h:6379/%zz",
		"redis://user:hunter2@h:6379/x",
		"redis://user:hunter2@h:port",
		"redis://user:hunter2@h?bogus=1",
		"redis://user:hunter2@[::1",
	} {
		_, err := parseURL(u)
		if err == nil {
			t.Errorf("parseURL(%q) accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseURL error shows the password: %v", err)
		}
	}
}

// TestParseURLErrorHidesPasswordFragments writes passwords the way
// operators get them wrong (a malformed escape, reserved characters left
// unescaped) in every place a password can go, and checks that no error
// shows any three characters of the password in a row.
func TestParseURLErrorHidesPasswordFragments(t *testing.T) {
	passwords := []string{
		"s3cr%zzet", "s3cr%2et", "s3cret%", "s3/cr3t", "s3?cr3t", "s3#cr3t", "s3@cr3t",
		"s3:cr3t", "s3[cr]3t", "s3 cr3t", "s3%00cr3t", "12/ab34", "12?ab=34", "12#ab34",
		"99/0", "s3cr\x7fet", "s3,cr3t", "s3&cr=3t",
	}
	forms := []string{
		"redis://user:%s@h:6379/0",
		"redis://:%s@h",
		"rediss://user:%s@a:1,b:2,c:3",
		"redis://user:%s@s1:26379,s2:26379?master_name=m",
		"redis://s1:26379?master_name=m&password=%s",
		"redis://:sentinelpw@s1:26379?master_name=m&password=%s&db=x",
		"unix://user:%s@/run/redis.sock",
		"redis://%s@h",
	}
	for _, pw := range passwords {
		for _, form := range forms {
			raw := strings.Replace(form, "%s", pw, 1)
			_, err := parseURL(raw)
			if err == nil {
				continue
			}
			msg := err.Error()
			for i := 0; i+3 <= len(pw); i++ {
				if frag := pw[i : i+3]; strings.Contains(msg, frag) {
					t.Errorf("parseURL(%q) = %q: shows %q of the password", raw, msg, frag)
					break
				}
			}
		}
	}
}

// TestParseURLMalformedQueryIsRefused checks that a query parameter with a
// malformed escape is an error rather than silently dropped: a Sentinel
// master password lost that way would only show as failed logins.
func TestParseURLMalformedQueryIsRefused(t *testing.T) {
	_, err := parseURL("redis://s1:26379?master_name=m&password=s3cr%zzet")
	if err == nil || !strings.Contains(err.Error(), "percent-escape") {
		t.Fatalf("parseURL = %v, want an error about the escape", err)
	}
}

func TestEntryEncoding(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 500_000, time.UTC) // 0.5 ms past a millisecond
	for _, ttl := range []time.Duration{0, time.Nanosecond, time.Minute, 1500 * time.Microsecond} {
		raw := encodeEntry(now, []byte("v\nw"), ttl)
		exp, start, err := decodeHeader(raw)
		if err != nil || string(raw[start:]) != "v\nw" {
			t.Fatalf("ttl %v: decode = %d, %q, %v", ttl, exp, raw[start:], err)
		}
		if ttl == 0 {
			if exp != 0 {
				t.Errorf("ttl 0: expiry %d, want 0", exp)
			}
			continue
		}
		// Never early: live until the exact expiry, dead within a
		// millisecond after it.
		end := now.Add(ttl)
		if !live(exp, end.Add(-time.Nanosecond)) {
			t.Errorf("ttl %v: dead before its end", ttl)
		}
		if live(exp, end.Add(time.Millisecond)) {
			t.Errorf("ttl %v: live a millisecond after its end", ttl)
		}
	}
	for _, bad := range []string{"", "\n", "x\nv", "-1\nv", "12345678901234567890\nv", "123"} {
		if _, _, err := decodeHeader([]byte(bad)); err == nil {
			t.Errorf("decodeHeader(%q) accepted", bad)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	if got, want := escapeGlob(`a*b?c[d]e\f`), `a\*b\?c\[d\]e\\f`; got != want {
		t.Errorf("escapeGlob = %q, want %q", got, want)
	}
}

func TestParseURLReplicaAcks(t *testing.T) {
	for _, c := range []struct {
		url     string
		acks    int
		timeout time.Duration
	}{
		{"redis://h", 0, defaultAckTimeout},
		{"unix:///run/redis.sock", 0, defaultAckTimeout},
		{"redis://a:1,b:2,c:3", 0, defaultAckTimeout},
		{"redis://s1:26379,s2:26379?master_name=m", 1, defaultAckTimeout},
		{"redis://s1:26379?master_name=m&replica_acks=0", 0, defaultAckTimeout},
		{"redis://s1:26379?master_name=m&replica_acks=2&replica_ack_timeout=250ms", 2, 250 * time.Millisecond},
		{"redis://h?replica_acks=1", 1, defaultAckTimeout},
		{"redis://a:1,b:2?replica_acks=1", 1, defaultAckTimeout},
	} {
		cfg, err := parseURL(c.url)
		if err != nil {
			t.Errorf("parseURL(%q): %v", c.url, err)
			continue
		}
		if cfg.acks != c.acks || cfg.ackTimeout != c.timeout {
			t.Errorf("parseURL(%q): replica_acks %d, timeout %v; want %d, %v", c.url, cfg.acks, cfg.ackTimeout, c.acks, c.timeout)
		}
	}
	for _, u := range []string{
		"redis://h?replica_acks=-1", "redis://h?replica_acks=x", "redis://h?replica_acks=17",
		"redis://h?replica_ack_timeout=0s", "redis://h?replica_ack_timeout=1m", "redis://h?replica_ack_timeout=soon",
	} {
		if _, err := parseURL(u); err == nil {
			t.Errorf("parseURL(%q) accepted", u)
		}
	}
}
