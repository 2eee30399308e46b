package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/packetworks/flowsentry/schemas/secret"
)

// ReceiverConfig is one YAML receiver: a name and exactly one kind.
type ReceiverConfig struct {
	Name      string           `yaml:"name"`
	Slack     *SlackConfig     `yaml:"slack"`
	PagerDuty *PagerDutyConfig `yaml:"pagerduty"`
	Webhook   *WebhookConfig   `yaml:"webhook"`
	Customer  *CustomerConfig  `yaml:"customer"`
	// Retry overrides the top-level retry policy for this receiver.
	Retry *Retry `yaml:"retry"`
	// SendResolved: tell this receiver when incidents end (default true).
	SendResolved *bool `yaml:"send_resolved"`
}

// RateLimit is a destination's budget.
type RateLimit struct {
	PerMinute float64 `yaml:"per_minute"`
	Burst     int     `yaml:"burst"`
}

// SlackConfig: the incoming-webhook URL is a secret (it carries the token).
type SlackConfig struct {
	WebhookURL secret.Ref `yaml:"webhook_url"`
	// Slack allows about one message per second per channel.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// PagerDutyConfig for Events API v2.
type PagerDutyConfig struct {
	URL         string            `yaml:"url"`
	RoutingKey  secret.Ref        `yaml:"routing_key"`
	SeverityMap map[string]string `yaml:"severity_map"`
	// PagerDuty accepts about 120 events per minute per routing key.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// WebhookConfig for a generic signed webhook.
type WebhookConfig struct {
	URL       string     `yaml:"url"`
	Secret    secret.Ref `yaml:"secret"`
	RateLimit RateLimit  `yaml:"rate_limit"`
}

// CustomerConfig for the affected customer's contacts.
type CustomerConfig struct {
	SMTP      *SMTPConfig `yaml:"smtp"`
	Webhook   bool        `yaml:"webhook"`
	Company   string      `yaml:"company"`
	NOC       NOC         `yaml:"noc"`
	RateLimit RateLimit   `yaml:"rate_limit"`
}

// SMTPConfig is the mail relay.
type SMTPConfig struct {
	Addr               string        `yaml:"addr"`
	From               string        `yaml:"from"`
	Username           string        `yaml:"username"`
	Password           secret.Ref    `yaml:"password"`
	StartTLS           string        `yaml:"starttls"` // required (default) or none
	CAFile             string        `yaml:"ca_file"`
	ServerName         string        `yaml:"server_name"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	HelloName          string        `yaml:"hello_name"`
	Timeout            time.Duration `yaml:"timeout"`
}

var receiverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// Validate checks one receiver; key is e.g. "receivers[2]".
func (c ReceiverConfig) Validate(key string) error {
	var errs []error
	if !receiverName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("%s.name: %q must be lower-case letters, digits, '.', '_' or '-'", key, c.Name))
	}
	n := 0
	if c.Slack != nil {
		n++
		if c.Slack.WebhookURL.IsZero() {
			errs = append(errs, fmt.Errorf("%s.slack.webhook_url: set env or file (the URL is a secret)", key))
		}
		errs = append(errs, c.Slack.RateLimit.validate(key+".slack.rate_limit"))
	}
	if c.PagerDuty != nil {
		n++
		if c.PagerDuty.RoutingKey.IsZero() {
			errs = append(errs, fmt.Errorf("%s.pagerduty.routing_key: set env or file", key))
		}
		if c.PagerDuty.URL != "" {
			errs = append(errs, checkURL(key+".pagerduty.url", c.PagerDuty.URL))
		}
		for ours, theirs := range c.PagerDuty.SeverityMap {
			switch ours {
			case "info", "warning", "critical":
			default:
				errs = append(errs, fmt.Errorf("%s.pagerduty.severity_map.%s: not one of our severities (info, warning, critical)", key, ours))
			}
			switch theirs {
			case "critical", "error", "warning", "info":
			default:
				errs = append(errs, fmt.Errorf("%s.pagerduty.severity_map.%s: %q is not a PagerDuty severity (critical, error, warning, info)", key, ours, theirs))
			}
		}
		errs = append(errs, c.PagerDuty.RateLimit.validate(key+".pagerduty.rate_limit"))
	}
	if c.Webhook != nil {
		n++
		errs = append(errs, checkURL(key+".webhook.url", c.Webhook.URL))
		if c.Webhook.Secret.IsZero() {
			errs = append(errs, fmt.Errorf("%s.webhook.secret: set env or file (deliveries are signed)", key))
		}
		errs = append(errs, c.Webhook.RateLimit.validate(key+".webhook.rate_limit"))
	}
	if c.Customer != nil {
		n++
		if c.Customer.SMTP == nil && !c.Customer.Webhook {
			errs = append(errs, fmt.Errorf("%s.customer: set smtp and/or webhook: true", key))
		}
		if s := c.Customer.SMTP; s != nil {
			if _, _, err := net.SplitHostPort(s.Addr); err != nil {
				errs = append(errs, fmt.Errorf("%s.customer.smtp.addr: %q is not host:port", key, s.Addr))
			}
			if s.From == "" {
				errs = append(errs, fmt.Errorf("%s.customer.smtp.from: required", key))
			} else if _, err := mail.ParseAddress(s.From); err != nil {
				errs = append(errs, fmt.Errorf("%s.customer.smtp.from: %q is not an e-mail address: %v", key, s.From, err))
			}
			if s.Username != "" && s.Password.IsZero() {
				errs = append(errs, fmt.Errorf("%s.customer.smtp.password: set env or file when username is set", key))
			}
			switch s.StartTLS {
			case "", "required", "none":
			default:
				errs = append(errs, fmt.Errorf("%s.customer.smtp.starttls: %q is not required or none", key, s.StartTLS))
			}
		}
		errs = append(errs, c.Customer.RateLimit.validate(key+".customer.rate_limit"))
	}
	if n != 1 {
		errs = append(errs, fmt.Errorf("%s: set exactly one of slack, pagerduty, webhook, customer (got %d)", key, n))
	}
	if c.Retry != nil {
		errs = append(errs, c.Retry.Validate(key+".retry"))
	}
	return errors.Join(errs...)
}

func (r RateLimit) validate(key string) error {
	if r.PerMinute < 0 || r.Burst < 0 {
		return fmt.Errorf("%s: per_minute and burst must not be negative", key)
	}
	return nil
}

func checkURL(key, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", key, s)
	}
	return nil
}

// Receiver is a built receiver.
type Receiver struct {
	Name         string
	Notifier     Notifier
	Retry        Retry
	Limiter      *Limiter
	SendResolved bool
}

// BuildOptions is what receivers need besides their own section.
type BuildOptions struct {
	Links     Links
	Directory Directory
	Retry     Retry
	Limiters  *Limiters
	Client    *http.Client
}

// Build resolves secrets and returns the receiver.
func (c ReceiverConfig) Build(key string, o BuildOptions) (*Receiver, error) {
	r := &Receiver{Name: c.Name, Retry: o.Retry, SendResolved: c.SendResolved == nil || *c.SendResolved}
	if c.Retry != nil {
		r.Retry = *c.Retry
	}
	if o.Limiters == nil {
		o.Limiters = &Limiters{}
	}
	lim := func(dest string, rl RateLimit, perMin float64) *Limiter {
		if rl.PerMinute > 0 {
			perMin = rl.PerMinute
		}
		return o.Limiters.Get(dest, perMin, rl.Burst)
	}
	switch {
	case c.Slack != nil:
		u, err := c.Slack.WebhookURL.Resolve(key + ".slack.webhook_url")
		if err != nil {
			return nil, err
		}
		if err := checkURL(key+".slack.webhook_url", u.Reveal()); err != nil {
			return nil, fmt.Errorf("%s.slack.webhook_url: the secret is not an http(s) URL", key)
		}
		r.Notifier = &Slack{URL: u.Reveal(), Links: o.Links, Client: o.Client}
		r.Limiter = lim("slack "+u.Reveal(), c.Slack.RateLimit, 60)
	case c.PagerDuty != nil:
		k, err := c.PagerDuty.RoutingKey.Resolve(key + ".pagerduty.routing_key")
		if err != nil {
			return nil, err
		}
		r.Notifier = &PagerDuty{URL: c.PagerDuty.URL, RoutingKey: k.Reveal(), SeverityMap: c.PagerDuty.SeverityMap,
			Links: o.Links, Client: o.Client}
		r.Limiter = lim("pagerduty "+k.Reveal(), c.PagerDuty.RateLimit, 120)
	case c.Webhook != nil:
		s, err := c.Webhook.Secret.Resolve(key + ".webhook.secret")
		if err != nil {
			return nil, err
		}
		r.Notifier = &Webhook{URL: c.Webhook.URL, Secret: []byte(s.Reveal()), Links: o.Links, Client: o.Client}
		r.Limiter = lim("webhook "+c.Webhook.URL, c.Webhook.RateLimit, 0)
	case c.Customer != nil:
		if o.Directory == nil {
			return nil, fmt.Errorf("%s.customer: needs the inventory (inventory.path)", key)
		}
		cn := &Customer{Directory: o.Directory, UseWebhook: c.Customer.Webhook, Company: c.Customer.Company,
			NOC: c.Customer.NOC, Client: o.Client}
		if s := c.Customer.SMTP; s != nil {
			pw, err := s.Password.Resolve(key + ".customer.smtp.password")
			if err != nil {
				return nil, err
			}
			tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName,
				InsecureSkipVerify: s.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
			if s.CAFile != "" {
				pem, err := os.ReadFile(s.CAFile)
				if err != nil {
					return nil, fmt.Errorf("%s.customer.smtp.ca_file: %w", key, err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("%s.customer.smtp.ca_file: no PEM certificate", key)
				}
				tc.RootCAs = pool
			}
			cn.Mail = &SMTP{Addr: s.Addr, From: s.From, Username: s.Username, Password: pw.Reveal(),
				StartTLS: s.StartTLS, TLS: tc, HelloName: s.HelloName, Timeout: s.Timeout}
		}
		r.Notifier = cn
		r.Limiter = lim("customer "+c.Name, c.Customer.RateLimit, 0)
	default:
		return nil, fmt.Errorf("%s: no receiver kind", key)
	}
	return r, nil
}
