package redisstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the connection options that the URL leaves unset. They are
// short so that a call made while Redis is down fails (and the request that
// needs it answers 503) within about two seconds instead of hanging.
const (
	defaultDialTimeout   = 2 * time.Second
	defaultReadTimeout   = 2 * time.Second
	defaultWriteTimeout  = 2 * time.Second
	defaultDialerRetries = 2
	defaultPort          = "6379"
)

// Kinds of deployment a URL can name.
const (
	modeSingle   = "single"
	modeSentinel = "sentinel"
	modeCluster  = "cluster"
)

// replicaOptions are go-redis URL options that send reads to replicas. They
// are refused: a replica lags its master, so a one-time value consumed a
// moment ago, or a session revoked a moment ago, could read as absent there.
var replicaOptions = []string{"read_only", "route_by_latency", "route_randomly", "replica_only", "use_disconnected_replicas"}

// clientConfig is a parsed `store redis` URL: the kind of deployment and the
// go-redis options for exactly one of the three.
type clientConfig struct {
	mode  string
	addrs []string
	// insecure is set when the URL turned off TLS certificate checks.
	insecure bool

	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// parseURL parses the URL of `store redis <url>` without connecting. The
// forms it accepts are listed in README.md; everything in the query that
// go-redis's ParseURL, ParseFailoverURL or ParseClusterURL accepts is passed
// on to it. Errors never quote the URL, which may hold a password.
func parseURL(raw string) (*clientConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	q := u.Query()
	if q.Has("skip_verify") {
		return nil, errors.New(`option "skip_verify" is called "insecure_skip_verify" here`)
	}
	insecure, err := boolOption(q, "insecure_skip_verify")
	if err != nil {
		return nil, err
	}
	forceCluster, err := boolOption(q, "cluster")
	if err != nil {
		return nil, err
	}
	for _, name := range replicaOptions {
		if on, err := boolOption(q, name); err != nil || on {
			return nil, fmt.Errorf("option %q: reads from replicas are not supported, since a replica can miss a value consumed or revoked a moment ago", name)
		}
	}
	c := &clientConfig{insecure: insecure}

	switch u.Scheme {
	case "redis", "rediss":
	case "unix":
		if forceCluster || q.Has("master_name") {
			return nil, errors.New("a unix socket names a single server")
		}
		u.RawQuery = q.Encode()
		c.mode = modeSingle
		if c.single, err = redis.ParseURL(u.String()); err != nil {
			return nil, err
		}
		c.addrs = []string{c.single.Addr}
		return c, c.finish()
	default:
		return nil, fmt.Errorf("unsupported URL scheme %q (want redis, rediss or unix)", u.Scheme)
	}

	// Several servers may be listed in the host, separated by commas, or
	// in addr parameters (go-redis's own form); go-redis wants the first
	// as the host and the others as addr.
	for _, h := range append(strings.Split(u.Host, ","), q["addr"]...) {
		addr, err := hostPort(h)
		if err != nil {
			return nil, err
		}
		c.addrs = append(c.addrs, addr)
	}
	u.Host = c.addrs[0]
	q["addr"] = c.addrs[1:]
	if len(q["addr"]) == 0 {
		delete(q, "addr")
	}

	switch {
	case q.Get("master_name") != "":
		if forceCluster {
			return nil, errors.New("master_name (Sentinel) and cluster exclude each other")
		}
		c.mode = modeSentinel
		u.RawQuery = q.Encode()
		if c.failover, err = redis.ParseFailoverURL(u.String()); err != nil {
			return nil, err
		}
	case len(c.addrs) > 1 || forceCluster:
		c.mode = modeCluster
		// ParseClusterURL ignores the path; refuse a database number
		// rather than drop it silently.
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, errors.New("a Redis Cluster has database 0 only; remove the database number from the URL")
		}
		u.Path = ""
		u.RawQuery = q.Encode()
		if c.cluster, err = redis.ParseClusterURL(u.String()); err != nil {
			return nil, err
		}
	default:
		if q.Has("addr") {
			return nil, errors.New("addr without master_name lists cluster nodes, but only one is given")
		}
		c.mode = modeSingle
		u.RawQuery = q.Encode()
		if c.single, err = redis.ParseURL(u.String()); err != nil {
			return nil, err
		}
	}
	return c, c.finish()
}

// hostPort normalises one server of the URL to host:port.
func hostPort(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty server address in URL")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return "", fmt.Errorf("server address %q has no host", h)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("server address %q has an invalid port", h)
		}
		return net.JoinHostPort(host, port), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.ContainsAny(host, "[]/") {
		return "", fmt.Errorf("invalid server address %q", h)
	}
	return net.JoinHostPort(host, defaultPort), nil
}

// boolOption reads and removes the boolean query parameter name; absent is
// false, present without a value is true.
func boolOption(q url.Values, name string) (bool, error) {
	if !q.Has(name) {
		return false, nil
	}
	v := q.Get(name)
	q.Del(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("option %q: invalid boolean %q", name, v)
	}
	return b, nil
}

// finish applies the defaults that the URL left unset and the TLS options.
func (c *clientConfig) finish() error {
	var (
		dial, read, write *time.Duration
		dialerRetries     *int
		ctxTimeout        *bool
		tlsOn             bool
	)
	switch {
	case c.single != nil:
		o := c.single
		dial, read, write, dialerRetries, ctxTimeout = &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled
		tlsOn = o.TLSConfig != nil
		if tlsOn && c.insecure {
			o.TLSConfig.InsecureSkipVerify = true
		}
	case c.failover != nil:
		o := c.failover
		dial, read, write, dialerRetries, ctxTimeout = &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled
		tlsOn = o.TLSConfig != nil
		if tlsOn {
			// go-redis names the first Sentinel as the server for every
			// connection, the master's included; check each server
			// against the address dialled instead.
			o.TLSConfig.ServerName = ""
			o.TLSConfig.InsecureSkipVerify = c.insecure
		}
	case c.cluster != nil:
		o := c.cluster
		dial, read, write, dialerRetries, ctxTimeout = &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.DialerRetries, &o.ContextTimeoutEnabled
		tlsOn = o.TLSConfig != nil
		if tlsOn {
			// As for Sentinel: each node is checked against its own name.
			o.TLSConfig.ServerName = ""
			o.TLSConfig.InsecureSkipVerify = c.insecure
		}
	}
	if c.insecure && !tlsOn {
		return errors.New("insecure_skip_verify needs TLS (rediss://)")
	}
	setDefault(dial, defaultDialTimeout)
	setDefault(read, defaultReadTimeout)
	setDefault(write, defaultWriteTimeout)
	setDefault(dialerRetries, defaultDialerRetries)
	// Callers' deadlines (a request's) bound the network waits too.
	*ctxTimeout = true
	return nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// tls reports whether connections use TLS.
func (c *clientConfig) tls() bool {
	switch {
	case c.single != nil:
		return c.single.TLSConfig != nil
	case c.failover != nil:
		return c.failover.TLSConfig != nil
	default:
		return c.cluster.TLSConfig != nil
	}
}

// newClient returns the go-redis client for the configuration, the one that
// redis.NewUniversalClient would choose for it. It does not connect.
func (c *clientConfig) newClient() redis.UniversalClient {
	switch {
	case c.single != nil:
		return redis.NewClient(c.single)
	case c.failover != nil:
		return redis.NewFailoverClient(c.failover)
	default:
		return redis.NewClusterClient(c.cluster)
	}
}
