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
	// defaultAckTimeout bounds the wait for replicas to confirm a write
	// (see clientConfig.acks). A healthy replica on the same network
	// confirms within a millisecond.
	defaultAckTimeout = time.Second
	maxAcks           = 16
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
	// acks is how many replicas must confirm each write (Redis WAIT)
	// before it counts as done, and ackTimeout how long to wait for them.
	// Redis replicates asynchronously: without the wait, a write that the
	// master answered can be missing from the replica that a failover
	// promotes, and a value consumed once can be consumed again.
	acks       int
	ackTimeout time.Duration

	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// parseURL parses the URL of `store redis <url>` without connecting. The
// forms it accepts are listed in README.md; everything in the query that
// go-redis's ParseURL, ParseFailoverURL or ParseClusterURL accepts is passed
// on to it. Its errors never show the user information or a password: see
// parse and withholdSecrets.
func parseURL(raw string) (*clientConfig, error) {
	c, err := parse(raw)
	if err != nil {
		return nil, withholdSecrets(raw, err)
	}
	return c, nil
}

// errSpilledUserinfo refuses a URL whose last "@" lies beyond the end of the
// authority. That happens when a user name or password holds an unescaped
// "/", "?" or "#": the parser then takes part of the password for the host,
// port, path or query, and any error about those parts would show it.
var errSpilledUserinfo = errors.New(`invalid URL: an "@" follows the host; percent-encode reserved characters in the user name and password ("@" as %40, "/" as %2F, "?" as %3F, "#" as %23, "%" as %25), and "@" anywhere after the host as %40`)

// parse is parseURL without the last check of its errors. No error of
// net/url is passed on as it is, since they quote the offending text
// (a malformed escape inside the password, for example).
func parse(raw string) (*clientConfig, error) {
	if i := strings.Index(raw, "://"); i >= 0 {
		start := i + len("://")
		end := len(raw)
		if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 {
			end = start + j
		}
		if strings.LastIndex(raw, "@") >= end {
			return nil, errSpilledUserinfo
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, describeURLError(err)
	}
	if u.Fragment != "" || u.ForceQuery {
		return nil, errors.New(`invalid URL: it has a "#" fragment or an empty "?" query`)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New(`invalid URL: the query has a malformed percent-escape or a ";" (write "%" as %25)`)
	}
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
	c := &clientConfig{insecure: insecure, acks: -1, ackTimeout: defaultAckTimeout}
	if err := ackOptions(q, c); err != nil {
		return nil, err
	}

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
		c.acks = max(c.acks, 0)
		return c, c.finish()
	default:
		return nil, errors.New("unsupported URL scheme (want redis://, rediss:// or unix://)")
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
	if c.acks < 0 {
		// A Sentinel group has replicas by design; a Cluster or a single
		// server may have none, and waiting for one would fail every
		// write.
		c.acks = 0
		if c.mode == modeSentinel {
			c.acks = 1
		}
	}
	return c, c.finish()
}

// ackOptions reads and removes the options replica_acks (a count) and
// replica_ack_timeout (a duration) into c.
func ackOptions(q url.Values, c *clientConfig) error {
	if q.Has("replica_acks") {
		n, err := strconv.Atoi(q.Get("replica_acks"))
		if err != nil || n < 0 || n > maxAcks {
			return fmt.Errorf("option \"replica_acks\": want a number of replicas from 0 to %d", maxAcks)
		}
		c.acks = n
		q.Del("replica_acks")
	}
	if q.Has("replica_ack_timeout") {
		d, err := time.ParseDuration(q.Get("replica_ack_timeout"))
		if err != nil || d < time.Millisecond || d > 10*time.Second {
			return errors.New(`option "replica_ack_timeout": want a duration from 1ms to 10s`)
		}
		c.ackTimeout = d
		q.Del("replica_ack_timeout")
	}
	return nil
}

// describeURLError says what is wrong with a URL that net/url refused,
// without quoting any of it.
func describeURLError(err error) error {
	var (
		escape  url.EscapeError
		badHost url.InvalidHostError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &escape):
		return errors.New(`invalid URL: a percent-escape is malformed ("%" must be followed by two hexadecimal digits; write "%" itself as %25)`)
	case errors.As(err, &badHost):
		return errors.New("invalid URL: the host has an invalid character")
	case strings.Contains(msg, "invalid userinfo"):
		return errors.New("invalid URL: the user name or password has a character that must be percent-encoded")
	case strings.Contains(msg, "invalid port"):
		return errors.New("invalid URL: the port is not a number")
	case strings.Contains(msg, "control character"):
		return errors.New("invalid URL: it contains a control character")
	case strings.Contains(msg, "missing protocol scheme"):
		return errors.New("invalid URL: no scheme (want redis://, rediss:// or unix://)")
	default:
		return errors.New("invalid URL")
	}
}

// withholdSecrets is the last guard of parseURL: an error that, whatever
// its origin (go-redis's parsers quote values), contains the URL's password
// or user name, or the value of a password option, is replaced by one that
// does not.
func withholdSecrets(raw string, err error) error {
	msg := err.Error()
	for _, secret := range urlSecrets(raw) {
		if strings.Contains(msg, secret) {
			return errors.New("invalid URL (the details are withheld because they would show the user name or password; check that reserved characters in them are percent-encoded)")
		}
	}
	return err
}

// urlSecrets returns the user information of raw (as written and decoded,
// whole and each part) and the values of its password options, leaving out
// what is too short to tell apart from ordinary text.
func urlSecrets(raw string) []string {
	var secrets []string
	add := func(s string) {
		if len(s) >= 3 {
			secrets = append(secrets, s)
		}
		if d, err := url.PathUnescape(s); err == nil && d != s && len(d) >= 3 {
			secrets = append(secrets, d)
		}
	}
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+len("://"):]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo := rest[:at]
		add(userinfo)
		for part := range strings.SplitSeq(userinfo, ":") {
			add(part)
		}
	}
	if i := strings.Index(raw, "?"); i >= 0 {
		for pair := range strings.SplitSeq(raw[i+1:], "&") {
			k, v, _ := strings.Cut(pair, "=")
			if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "username") {
				add(v)
			}
		}
	}
	return secrets
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
