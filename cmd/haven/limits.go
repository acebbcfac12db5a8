package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"haven/web"
)

// limitsConfig is how `haven serve` limits request rates, finds client
// addresses behind a load balancer and lets a scraper in by network.
type limitsConfig struct {
	PerAddress, PerUser, PerClient, TrustedProxy, MetricsAllow string

	perAddress, perUser, perClient int
	trusted, allow                 []netip.Prefix
}

func (c *limitsConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"rate-limit-address", "HAVEN_RATE_LIMIT_ADDRESS", strconv.Itoa(web.DefaultPerAddressRate), "requests a minute one client address may make (an IPv6 client counts by its /64), shared by every server on the database (counted in memory, flushed every 100 ms); 0 is no limit", false, &c.PerAddress},
		{"rate-limit-user", "HAVEN_RATE_LIMIT_USER", strconv.Itoa(web.DefaultPerUserRate), "API requests a minute one signed-in user may make, shared by every server on the database; 0 is no limit", false, &c.PerUser},
		{"rate-limit-client", "HAVEN_RATE_LIMIT_CLIENT", "600", "token and FHIR requests a minute one SMART app or backend system may make, shared by every server on the database; 0 is no limit", false, &c.PerClient},
		{"trusted-proxy", "HAVEN_TRUSTED_PROXY", "", "load balancers whose X-Forwarded-For is believed, comma-separated CIDR networks; from any other peer the header is ignored", false, &c.TrustedProxy},
		{"metrics-allow", "HAVEN_METRICS_ALLOW", "", "networks that may read /metrics without the metrics token, comma-separated CIDR (the client address, through --trusted-proxy only)", false, &c.MetricsAllow},
	})
}

func (c *limitsConfig) validate() error {
	var err error
	for _, s := range []struct {
		flag, v string
		dst     *int
	}{{"--rate-limit-address", c.PerAddress, &c.perAddress}, {"--rate-limit-user", c.PerUser, &c.perUser}, {"--rate-limit-client", c.PerClient, &c.perClient}} {
		n, err := strconv.Atoi(strings.TrimSpace(s.v))
		if err != nil || n < 0 {
			return fmt.Errorf("%s: %q is not a whole number of requests (0 is no limit)", s.flag, s.v)
		}
		*s.dst = n
	}
	if c.trusted, err = web.ParsePrefixes(c.TrustedProxy); err != nil {
		return fmt.Errorf("--trusted-proxy: %v", err)
	}
	if c.allow, err = web.ParsePrefixes(c.MetricsAllow); err != nil {
		return fmt.Errorf("--metrics-allow: %v", err)
	}
	return nil
}

// limits is the servers' rate limits, counted in memory and shared
// through the database.
func (c *limitsConfig) limits(counter web.RequestCounter) *web.RateLimits {
	return &web.RateLimits{Counter: counter, PerAddress: c.perAddress, PerUser: c.perUser, PerClient: c.perClient}
}
