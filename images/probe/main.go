// probe is the network tool of the perimeter's probe pods (`audit --probe`) and of the live
// tier. Static and pure Go, so the image needs no libc and runs as any user.
//
//	probe listen tcp/8080 udp/7844 ...   stand in for a workload: TCP accepts and answers
//	                                      "probe-ok", UDP echoes "probe-ok"; runs until killed
//	probe check '<json list>' ['<json>']  try each {"id","proto","host","port","mode","name"}
//	                                      at once; print one JSON line per check; exit 0.
//	                                      The optional second argument is a check the
//	                                      policies must block: it is retried until blocked
//	                                      (up to PROBE_SETTLE_SECONDS, default 15) first, as
//	                                      a policy agent enforces a new pod's traffic only
//	                                      once it has learnt the pod's address
//	probe lookup NAME                     resolve through /etc/resolv.conf
//	probe never-ready                     exit 1 (a readiness probe that never passes)
//
// Modes: "banner" reaches only when the far side answered "probe-ok" (a probe listener saw
// it, which a refused or reset connection does not prove); "connect" when a TCP connection
// opened (a real server); "dns" when the server at host:port answered a query for name.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const banner = "probe-ok"

type check struct {
	ID    string `json:"id"`
	Proto string `json:"proto"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Mode  string `json:"mode"`
	Name  string `json:"name"`
}

type result struct {
	ID      string `json:"id"`
	Reached bool   `json:"reached"`
	Detail  string `json:"detail"`
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "never-ready" {
		os.Exit(1)
	}
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: probe listen PROTO/PORT... | check JSON | lookup NAME")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "listen":
		listen(os.Args[2:])
	case "check":
		var checks []check
		if err := json.Unmarshal([]byte(os.Args[2]), &checks); err != nil {
			fmt.Fprintln(os.Stderr, "probe check: bad JSON:", err)
			os.Exit(2)
		}
		if len(os.Args) > 3 {
			var canary check
			if err := json.Unmarshal([]byte(os.Args[3]), &canary); err != nil {
				fmt.Fprintln(os.Stderr, "probe check: bad settle JSON:", err)
				os.Exit(2)
			}
			settle(canary)
		}
		run(checks, timeout())
	case "lookup":
		ctx, cancel := context.WithTimeout(context.Background(), timeout())
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(strings.Join(addrs, "\n"))
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// timeout of one check: PROBE_TIMEOUT_SECONDS, default 2.
func timeout() time.Duration {
	if s, err := strconv.ParseFloat(os.Getenv("PROBE_TIMEOUT_SECONDS"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return 2 * time.Second
}

// settle waits until the canary is blocked, and says how long that took.
func settle(canary check) {
	limit := 15 * time.Second
	if s, err := strconv.ParseFloat(os.Getenv("PROBE_SETTLE_SECONDS"), 64); err == nil && s > 0 {
		limit = time.Duration(s * float64(time.Second))
	}
	start := time.Now()
	tries := 0
	for {
		tries++
		r := try(canary, 500*time.Millisecond)
		if !r.Reached || time.Since(start) > limit {
			detail := fmt.Sprintf("blocked after %d tries, %.1f s", tries, time.Since(start).Seconds())
			if r.Reached {
				detail = fmt.Sprintf("still reached after %d tries, %.1f s", tries, time.Since(start).Seconds())
			}
			_ = json.NewEncoder(os.Stdout).Encode(result{"settle", !r.Reached, detail})
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func listen(specs []string) {
	for _, spec := range specs {
		proto, port, ok := strings.Cut(strings.ToLower(spec), "/")
		if !ok {
			fmt.Fprintf(os.Stderr, "probe listen: %q is not PROTO/PORT\n", spec)
			os.Exit(2)
		}
		addr := net.JoinHostPort("", port)
		switch proto {
		case "tcp":
			l, err := net.Listen("tcp", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			go serveTCP(l)
		case "udp":
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			go serveUDP(c)
		default:
			fmt.Fprintf(os.Stderr, "probe listen: protocol %q is not tcp or udp\n", proto)
			os.Exit(2)
		}
	}
	fmt.Println("listening", strings.Join(specs, " "))
	select {}
}

func serveTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stdout, "tcp from %s\n", c.RemoteAddr())
		_, _ = c.Write([]byte(banner + "\n"))
		_ = c.Close()
	}
}

func serveUDP(c net.PacketConn) {
	buf := make([]byte, 512)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stdout, "udp from %s\n", from)
		_, _ = c.WriteTo([]byte(banner), from)
	}
}

func run(checks []check, limit time.Duration) {
	results := make([]result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func(i int, c check) {
			defer wg.Done()
			results[i] = try(c, limit)
		}(i, c)
	}
	wg.Wait()
	out := json.NewEncoder(os.Stdout)
	for _, r := range results {
		_ = out.Encode(r)
	}
}

func try(c check, limit time.Duration) result {
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	proto := strings.ToLower(c.Proto)
	if c.Mode == "dns" {
		return lookupAt(c, addr, proto, limit)
	}
	conn, err := net.DialTimeout(proto, addr, limit)
	if err != nil {
		return result{c.ID, false, err.Error()}
	}
	defer conn.Close()
	if c.Mode == "connect" {
		return result{c.ID, true, "connected"}
	}
	_ = conn.SetDeadline(time.Now().Add(limit))
	if proto == "udp" {
		if _, err := conn.Write([]byte("probe")); err != nil {
			return result{c.ID, false, err.Error()}
		}
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if proto == "udp" && err != nil && strings.HasPrefix(line, banner) {
		err = nil // a datagram has no newline
	}
	if err != nil && !strings.HasPrefix(line, banner) {
		return result{c.ID, false, err.Error()}
	}
	if !strings.HasPrefix(line, banner) {
		return result{c.ID, false, fmt.Sprintf("answered %q, not the probe banner", line)}
	}
	return result{c.ID, true, "answered"}
}

// lookupAt asks the DNS server at addr (over proto) for c.Name; an answer of any kind,
// "no such host" included, means the server was reached.
func lookupAt(c check, addr, proto string, limit time.Duration) result {
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: limit}).DialContext(ctx, proto, addr)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	addrs, err := r.LookupHost(ctx, c.Name)
	if err == nil {
		return result{c.ID, true, "answered " + strings.Join(addrs, ",")}
	}
	if dnsErr, ok := err.(*net.DNSError); ok && dnsErr.IsNotFound {
		return result{c.ID, true, "answered: no such host"}
	}
	return result{c.ID, false, err.Error()}
}
