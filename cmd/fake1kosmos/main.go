// Command fake1kosmos serves a fake 1Kosmos tenant (BlockID UWL sessions and
// document verification) on a loopback port, for trying the blockid and
// onekosmos_idv providers without a 1Kosmos account. It prints the
// Caddyfile lines that point caddy-idv at it.
//
//	go run ./cmd/fake1kosmos -addr 127.0.0.1:8092
//
// The simulated phone is a web page: open a BlockID QR link in a browser to
// get an Approve button, open an ID-verification link to consent and submit
// a synthetic passport; http://<addr>/_fake/ lists every session. It is a
// test tool: anyone who can reach it can approve any login.
//
// -hostile <endpoint>=<mode> makes an endpoint (community_info, caas_sd,
// publickeys, session_new, session_info, session_response,
// session_authenticate, userinfo, event, idv_create, idv_result) answer
// every request in a hostile mode of internal/hostile, to see how the
// module copes with a tenant gone bad: huge, endless, truncated, not-json,
// wrong-types, null, deep-nesting, wrong-content-type, invalid-utf8, slow or
// hang. Repeat it for several endpoints, e.g.
//
//	go run ./cmd/fake1kosmos -hostile caas_sd=huge -hostile session_response=slow
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8092", "loopback address to listen on")
	ttl := flag.Duration("ttl", 120*time.Second, "BlockID session lifetime (the docs say 60s or 120s)")
	idvTTL := flag.Duration("idv-ttl", 15*time.Minute, "ID-verification session lifetime")
	license := flag.String("license", "fake-license-key", "the licence key the fake accepts")
	dvc := flag.String("dvc", "fake_dvcid", "the ID-verification workflow (dvcID) the fake knows")
	ops := make([]string, len(fake1kosmos.Ops))
	for i, op := range fake1kosmos.Ops {
		ops[i] = string(op)
	}
	faults := map[fake1kosmos.Op]fake1kosmos.Fault{}
	flag.Func("hostile", hostile.Usage(ops), func(s string) error {
		op, m, err := hostile.ParseSetting(s, ops)
		if err == nil {
			faults[fake1kosmos.Op(op)] = fake1kosmos.Fault{Hostile: m}
		}
		return err
	})
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("fake1kosmos: -addr: %v", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("fake1kosmos: refusing to listen on %s: its test hooks let anyone log in; use a loopback address", host)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("fake1kosmos: %v", err)
	}
	f := fake1kosmos.New(fake1kosmos.Config{TTL: *ttl, IDVTTL: *idvTTL, LicenseKey: *license, DvcIDs: []string{*dvc}})
	for op, fl := range faults {
		f.InjectFault(op, fl)
		fmt.Printf("endpoint %s answers %s\n", op, fl.Hostile)
	}
	cfg := f.Config()
	base := "http://" + ln.Addr().String()
	fmt.Printf(`fake1kosmos: a fake 1Kosmos tenant on %[1]s (not for production)

Caddyfile lines for caddy-idv:

	provider blockid {
		base_url    %[1]s
		dns         %[2]s
		community   %[3]s
		license_key %[4]s
		scopes      firstname lastname
	}
	provider onekosmos_idv {
		base_url      %[1]s
		dns           %[2]s
		community     %[3]s
		license_key   %[4]s
		dvc_id        %[5]s
		document_type ppt_object
	}

The simulated phone: open the QR link in a browser, or %[1]s/_fake/
Demo wallet user: %[6]s
`, base, cfg.DNS, cfg.Community, cfg.LicenseKey, cfg.DvcIDs[0], f.DemoWallet().UserID)

	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("fake1kosmos: %v", err)
	}
}
