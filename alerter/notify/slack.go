package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
)

// Slack limits (Block Kit reference): a message holds at most 50 blocks, a
// header 150 characters, a section text 3000, a field 2000 and at most 10
// fields, a context at most 10 elements.
const (
	slackMaxBlocks        = 50
	slackMaxHeader        = 150
	slackMaxText          = 3000
	slackMaxField         = 2000
	slackMaxFields        = 10
	slackIncidentsPerPost = 5 // detailed incidents per message; the rest are listed
)

// SlackMessage is the incoming-webhook payload.
type SlackMessage struct {
	Text   string       `json:"text"` // notification fallback
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is a Block Kit layout block (header, section, context, divider).
type SlackBlock struct {
	Type     string       `json:"type"`
	Text     *SlackText   `json:"text,omitempty"`
	Fields   []*SlackText `json:"fields,omitempty"`
	Elements []*SlackText `json:"elements,omitempty"`
}

// SlackText is a text object: plain_text or mrkdwn.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Slack posts Block Kit messages to an incoming webhook.
type Slack struct {
	URL    string // the webhook URL is a secret: never log it
	Links  Links
	Client *http.Client
}

func (s *Slack) Kind() string { return "slack" }

// Notify posts one message for the group.
func (s *Slack) Notify(ctx context.Context, m *Message) error {
	body, err := json.Marshal(SlackPayload(m, s.Links))
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("slack request: %w", redactURL(err)))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client(s.Client).Do(req)
	if err != nil {
		return fmt.Errorf("slack: %w", redactURL(err))
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return HTTPError(resp, rb)
	}
	return nil
}

// SlackPayload builds the Block Kit message: per incident what, who, how
// big, since when, fingerprint, suggested mitigation and links; a resolve
// is a shorter follow-up.
func SlackPayload(m *Message, links Links) SlackMessage {
	var blocks []SlackBlock
	var fallback []string
	shown := 0
	add := func(in *incident.Incident, resolved bool) {
		if shown == slackIncidentsPerPost {
			return
		}
		shown++
		if len(blocks) > 0 {
			blocks = append(blocks, SlackBlock{Type: "divider"})
		}
		if resolved {
			blocks = append(blocks, slackResolved(in, links)...)
		} else {
			blocks = append(blocks, slackFiring(in, links, m.Repeat)...)
		}
	}
	for _, in := range m.Firing {
		fallback = append(fallback, Title(in))
		add(in, false)
	}
	for _, in := range m.Resolved {
		fallback = append(fallback, "RESOLVED "+Title(in))
		add(in, true)
	}
	if rest := len(m.Firing) + len(m.Resolved) - shown; rest > 0 {
		var ids []string
		for _, in := range append(append([]*incident.Incident{}, m.Firing...), m.Resolved...)[shown:] {
			ids = append(ids, fmt.Sprintf("`%s` %s", slackEscape(in.ID), slackEscape(Title(in))))
		}
		blocks = append(blocks, SlackBlock{Type: "section", Text: mrkdwn(fmt.Sprintf("…and %d more in this group:\n%s", rest, strings.Join(ids, "\n")))})
	}
	if len(blocks) > slackMaxBlocks {
		blocks = blocks[:slackMaxBlocks]
	}
	return SlackMessage{Text: truncate(strings.Join(fallback, "; "), slackMaxText), Blocks: blocks}
}

func slackFiring(in *incident.Incident, links Links, repeat bool) []SlackBlock {
	icon := map[string]string{"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}[in.Severity]
	title := Title(in)
	if repeat {
		title = "Still firing: " + title
	}
	if icon != "" {
		title = icon + " " + title
	}
	fields := []*SlackText{
		mrkdwnField("*Customer*\n" + slackEscape(orDash(in.Customer))),
		mrkdwnField("*Subnet*\n" + slackEscape(orDash(in.Subnet)) + " (" + in.Direction + ")"),
		mrkdwnField(fmt.Sprintf("*Observed*\n%s %s", slackEscape(in.Metric), Rate(in.Observed, in.Unit))),
		mrkdwnField(fmt.Sprintf("*Expected*\n%s (%s, score %.1f)", Rate(in.Expected, in.Unit), Ratio(in.Observed, in.Expected), in.Score)),
		mrkdwnField("*Since*\n" + slackDate(in.StartedAt) + " (" + Duration(in.UpdatedAt.Sub(in.StartedAt)) + ")"),
		mrkdwnField(fmt.Sprintf("*Peak*\n%s / %s", Rate(float64(in.PeakBPS), "bps"), Rate(float64(in.PeakPPS), "pps"))),
	}
	blocks := []SlackBlock{
		{Type: "header", Text: &SlackText{Type: "plain_text", Text: truncate(title, slackMaxHeader)}},
		{Type: "section", Text: mrkdwn(fmt.Sprintf("*%s* on %s", slackEscape(in.Class), slackEscape(Who(in)))), Fields: fields},
	}
	fp := in.Fingerprint
	var lines []string
	for _, x := range []struct {
		name  string
		items []incident.TopItem
	}{{"Top sources", fp.TopSources}, {"Source ports", fp.TopSrcPorts}, {"Destination ports", fp.TopDstPorts},
		{"Protocols", fp.TopProtocols}, {"Top destinations", fp.TopDestinations}} {
		if t := TopList(x.items, 5); t != "" {
			lines = append(lines, fmt.Sprintf("*%s:* %s", x.name, slackEscape(t)))
		}
	}
	if fp.DistinctSources > 0 {
		lines = append(lines, fmt.Sprintf("*Distinct sources:* ~%d", fp.DistinctSources))
	}
	if len(lines) > 0 {
		blocks = append(blocks, SlackBlock{Type: "section", Text: mrkdwn("*Fingerprint*\n" + strings.Join(lines, "\n"))})
	}
	if mt := MitigationText(fp.Mitigation); mt != "" {
		blocks = append(blocks, SlackBlock{Type: "section", Text: mrkdwn("*Suggested mitigation*\n```" + slackEscape(mt) + "```")})
	}
	sql := SQL(in)
	blocks = append(blocks, SlackBlock{Type: "section", Text: mrkdwn("*Query the flows*\n```" + slackEscape(sql) + "```")})
	blocks = append(blocks, slackContext(in, links, sql))
	return blocks
}

func slackResolved(in *incident.Incident, links Links) []SlackBlock {
	reason := in.Reason
	if reason == "" {
		reason = "ended"
	}
	text := fmt.Sprintf("*%s* on %s ended %s after %s.\n*Why:* %s (%s)\n*Peak:* %s / %s, *total:* %s, %s packets",
		slackEscape(in.Class), slackEscape(Who(in)), slackDate(in.EndedAt), Duration(in.EndedAt.Sub(in.StartedAt)),
		slackEscape(reason), in.ResolvedBy, Rate(float64(in.PeakBPS), "bps"), Rate(float64(in.PeakPPS), "pps"),
		Rate(float64(in.TotalBytes), "B"), Rate(float64(in.TotalPackets), ""))
	return []SlackBlock{
		{Type: "header", Text: &SlackText{Type: "plain_text", Text: truncate(":white_check_mark: RESOLVED "+Title(in), slackMaxHeader)}},
		{Type: "section", Text: mrkdwn(text)},
		slackContext(in, links, SQL(in)),
	}
}

func slackContext(in *incident.Incident, links Links, sql string) SlackBlock {
	els := []*SlackText{mrkdwn("Incident `" + slackEscape(in.ID) + "`")}
	if u := links.Incident(in.ID); u != "" {
		els = append(els, mrkdwn("<"+u+"|Open in console>"))
	}
	if u := links.Query(sql); u != "" {
		els = append(els, mrkdwn("<"+u+"|Run the query>"))
	}
	if in.Ack != nil {
		els = append(els, mrkdwn("Acknowledged by "+slackEscape(in.Ack.By)))
	}
	return SlackBlock{Type: "context", Elements: els}
}

func mrkdwn(s string) *SlackText { return &SlackText{Type: "mrkdwn", Text: truncate(s, slackMaxText)} }
func mrkdwnField(s string) *SlackText {
	return &SlackText{Type: "mrkdwn", Text: truncate(s, slackMaxField)}
}

// slackDate renders in each reader's time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// slackEscape escapes the three characters mrkdwn treats as control.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: 15 * time.Second}
}
