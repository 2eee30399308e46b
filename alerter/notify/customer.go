package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/schemas/inventory"
)

// Directory finds a customer of the inventory.
type Directory interface {
	Customer(id string) *inventory.Customer
}

// NOC is how customers reach the ISP's network operations centre.
type NOC struct {
	Name  string `yaml:"name"`
	Phone string `yaml:"phone"`
	Email string `yaml:"email"`
	URL   string `yaml:"url"`
}

// Customer tells the affected customer, in plain language, by e-mail to the
// inventory's contacts and/or by the customer's own signed webhook, for the
// classes and severities the customer's notify policy asks for.
type Customer struct {
	Directory  Directory
	Mail       *SMTP // nil: no e-mail
	UseWebhook bool
	Company    string
	NOC        NOC
	Client     *http.Client
	Now        func() time.Time

	mu   sync.Mutex
	done map[string]bool // channels already delivered for a retried message
}

func (c *Customer) Kind() string      { return "customer" }
func (c *Customer) PerIncident() bool { return true }

// Wants applies the customer's notify policy.
func (c *Customer) Wants(in *incident.Incident) (bool, string) {
	cu := c.Directory.Customer(in.Customer)
	if cu == nil {
		return false, fmt.Sprintf("customer %q is not in the inventory", in.Customer)
	}
	if len(cu.Notify.Classes) > 0 && !slices.Contains(cu.Notify.Classes, in.Class) {
		return false, fmt.Sprintf("class %s is not in the customer's notify.classes", in.Class)
	}
	min := cu.Notify.MinSeverity
	if min == "" {
		min = "warning"
	}
	if incident.SeverityRank(in.MaxSeverity) < incident.SeverityRank(min) {
		return false, fmt.Sprintf("severity %s is below the customer's notify.min_severity %s", in.MaxSeverity, min)
	}
	hasMail := c.Mail != nil && len(cu.Contacts.Emails) > 0
	hasHook := c.UseWebhook && !cu.Contacts.WebhookURL.IsZero()
	if !hasMail && !hasHook {
		return false, "the customer has no contact this receiver can use"
	}
	return true, ""
}

// Notify sends the (single) incident of m.
func (c *Customer) Notify(ctx context.Context, m *Message) error {
	for _, in := range m.Firing {
		if err := c.one(ctx, m, in, false); err != nil {
			return err
		}
	}
	for _, in := range m.Resolved {
		if err := c.one(ctx, m, in, true); err != nil {
			return err
		}
	}
	return nil
}

func (c *Customer) one(ctx context.Context, m *Message, in *incident.Incident, resolved bool) error {
	cu := c.Directory.Customer(in.Customer)
	if cu == nil {
		return Permanent(fmt.Errorf("customer %q is not in the inventory", in.Customer))
	}
	subject, body, err := c.Render(cu, in, resolved)
	if err != nil {
		return Permanent(err)
	}
	state := "firing"
	if resolved {
		state = "resolved"
	}
	id := deliveryID(m) + "/" + in.ID + "/" + state
	if c.Mail != nil && len(cu.Contacts.Emails) > 0 && !c.isDone(id+"/mail") {
		err := c.Mail.Send(ctx, Mail{To: cu.Contacts.Emails, Subject: subject, Body: body,
			MessageID: messageID(in.ID, state), Headers: map[string]string{"X-Flowsentry-Incident": in.ID}})
		if err != nil {
			return err
		}
		c.markDone(id + "/mail")
	}
	if c.UseWebhook && !cu.Contacts.WebhookURL.IsZero() && !c.isDone(id+"/webhook") {
		url, err := cu.Contacts.WebhookURL.Resolve("customers." + cu.ID + ".contacts.webhook_url")
		if err != nil {
			return Permanent(err)
		}
		key, err := cu.Contacts.WebhookSecret.Resolve("customers." + cu.ID + ".contacts.webhook_secret")
		if err != nil || key.IsZero() {
			return Permanent(fmt.Errorf("customers.%s.contacts.webhook_secret: required to sign the webhook (%v)", cu.ID, err))
		}
		payload, _ := json.Marshal(CustomerWebhookBody{Version: "1", Customer: cu.ID, Status: state,
			Subject: subject, Text: body, Incident: customerView(in)})
		if err := PostSigned(ctx, client(c.Client), url.Reveal(), []byte(key.Reveal()), payload, id, c.now()); err != nil {
			return err
		}
		c.markDone(id + "/webhook")
	}
	return nil
}

// CustomerWebhookBody is what a customer's webhook receives.
type CustomerWebhookBody struct {
	Version  string       `json:"version"`
	Customer string       `json:"customer"`
	Status   string       `json:"status"`
	Subject  string       `json:"subject"`
	Text     string       `json:"text"`
	Incident CustomerView `json:"incident"`
}

// CustomerView is the part of an incident a customer is shown: no other
// customer's data, no internal scores.
type CustomerView struct {
	ID         string    `json:"id"`
	Class      string    `json:"class"`
	Severity   string    `json:"severity"`
	Subnet     string    `json:"subnet"`
	Direction  string    `json:"direction"`
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	PeakBPS    uint64    `json:"peak_bps"`
	PeakPPS    uint64    `json:"peak_pps"`
	Mitigation string    `json:"mitigation,omitempty"`
}

func customerView(in *incident.Incident) CustomerView {
	v := CustomerView{ID: in.ID, Class: in.Class, Severity: in.Severity, Subnet: in.Subnet, Direction: in.Direction,
		StartedAt: in.StartedAt, PeakBPS: in.PeakBPS, PeakPPS: in.PeakPPS, Mitigation: MitigationText(in.Fingerprint.Mitigation)}
	if in.State == incident.Resolved {
		v.EndedAt = in.EndedAt
	}
	return v
}

var customerTemplate = template.Must(template.New("customer").Parse(`Hello {{.Name}},
{{if .Resolved}}
The unusual traffic we told you about has ended.

What we saw
From {{.Start}} to {{.End}} ({{.Duration}}) our network monitoring saw {{.What}} {{.Towards}} your addresses {{.Subnet}}. At its peak it reached {{.PeakPPS}} packets per second ({{.PeakBPS}}).

What we are doing
Nothing more is needed from you. If you still see problems, please tell us.
{{else}}
What we saw
Since {{.Start}} our network monitoring has seen {{.What}} {{.Towards}} your addresses {{.Subnet}}. It reaches {{.PeakPPS}} packets per second ({{.PeakBPS}}), {{.Ratio}} for this time of day.

What we are doing
Our network operations centre has been alerted and is looking at it now.{{if .Mitigation}} If the traffic threatens your service or our network, we can filter it at the edge of our network with this rule:
    {{.Mitigation}}{{end}}
You do not need to do anything. We will write again when it is over.
{{end}}
How to reach us
{{.NOC.Name}}{{if .NOC.Phone}}, phone {{.NOC.Phone}}{{end}}{{if .NOC.Email}}, e-mail {{.NOC.Email}}{{end}}{{if .NOC.URL}}, {{.NOC.URL}}{{end}}.
Please quote the reference {{.ID}}.

-- 
{{.Company}} network operations
`))

// Render builds the customer's subject and plain-language text.
func (c *Customer) Render(cu *inventory.Customer, in *incident.Incident, resolved bool) (subject, body string, err error) {
	name := cu.Name
	if name == "" {
		name = cu.ID
	}
	towards := "towards"
	if in.Direction == "outbound" {
		towards = "coming from"
	}
	subnet := in.Subnet
	if subnet == "" {
		subnet = "(all of them)"
	}
	noc := c.NOC
	if noc.Name == "" {
		noc.Name = "Our network operations centre"
	}
	data := map[string]any{
		"Name": name, "Resolved": resolved, "What": ClassText(in.Class), "Towards": towards, "Subnet": subnet,
		"Start": in.StartedAt.UTC().Format("2006-01-02 15:04 UTC"), "End": in.EndedAt.UTC().Format("2006-01-02 15:04 UTC"),
		"Duration": Duration(in.EndedAt.Sub(in.StartedAt)), "PeakPPS": plainCount(float64(in.PeakPPS)),
		"PeakBPS": Rate(float64(in.PeakBPS), "bit/s"), "Ratio": strings.Replace(Ratio(in.Observed, in.Expected), "x expected", " times the usual level", 1),
		"Mitigation": MitigationText(in.Fingerprint.Mitigation), "NOC": noc, "ID": in.ID, "Company": c.Company,
	}
	var b strings.Builder
	if err := customerTemplate.Execute(&b, data); err != nil {
		return "", "", err
	}
	company := c.Company
	if company == "" {
		company = "Network"
	}
	if resolved {
		subject = fmt.Sprintf("[%s] Resolved: unusual traffic %s %s has ended", company, towards, subnet)
	} else {
		subject = fmt.Sprintf("[%s] Possible attack on your network %s (%s)", company, subnet, strings.ReplaceAll(in.Class, "_", " "))
	}
	return subject, b.String(), nil
}

// plainCount writes 2100000 as "2.10 million" for readers outside the NOC.
func plainCount(v float64) string {
	r := Rate(v, "")
	for suffix, word := range map[string]string{"k": " thousand", "M": " million", "G": " billion", "T": " trillion"} {
		if strings.HasSuffix(r, suffix) {
			return strings.TrimSuffix(r, suffix) + word
		}
	}
	return r
}

var messageIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func messageID(id, state string) string {
	return messageIDUnsafe.ReplaceAllString(id, "_") + "." + state + "@flowsentry"
}

func (c *Customer) isDone(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[k]
}

func (c *Customer) markDone(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = map[string]bool{}
	}
	if len(c.done) > 10000 {
		// Only retries in flight need this; an old entry is harmless to lose.
		clear(c.done)
	}
	c.done[k] = true
}

func (c *Customer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
