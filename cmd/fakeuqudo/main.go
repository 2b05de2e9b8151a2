// Command fakeuqudo serves the uqudo fake (providers/uqudo/fakeuqudo) on a
// loopback port for the local demo and prints the Caddyfile lines that point
// the uqudo provider at it. Its dynamic link opens a fake phone page with a
// button that completes the session.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/caddy-idv/caddy-idv/providers/uqudo/fakeuqudo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "loopback address to listen on")
	flag.Parse()
	fake, err := fakeuqudo.New(fakeuqudo.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(os.Stdout, `fake uqudo listening on %s

Caddyfile lines:
	provider uqudo {
		base_url      %s
		client_id     %s
		client_secret %s
	}

Open the QR code's link (%s/fake/phone/...) and press the button to act as the phone.
`, base, base, fake.ClientID(), fake.ClientSecret(), base)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
