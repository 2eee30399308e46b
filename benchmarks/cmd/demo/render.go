package main

import (
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"sort"
	"strings"

	"github.com/packetworks/flowsentry/alerter/notify"
)

// Terminal renderings of the messages the local receivers accept: what a
// person would see in Slack, in PagerDuty and in their mailbox.

var (
	slackDateRe  = regexp.MustCompile(`<!date\^[0-9]+\^[^|>]*\|([^>]*)>`)
	slackLinkRe  = regexp.MustCompile(`<([^|>]+)\|([^>]*)>`)
	slackIDRe    = regexp.MustCompile("Incident `([^`]+)`")
	slackEmoji   = strings.NewReplacer(":red_circle:", "🔴", ":large_orange_circle:", "🟠", ":large_blue_circle:", "🔵", ":white_check_mark:", "✅")
	slackUnquote = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")
)

// mrkdwnText turns Slack mrkdwn into plain terminal text: dates show their
// fallback, links their label, code blocks are indented.
func mrkdwnText(s string) string {
	s = slackDateRe.ReplaceAllString(s, "$1")
	s = slackLinkRe.ReplaceAllString(s, "[$2]")
	var b strings.Builder
	parts := strings.Split(s, "```")
	for i, p := range parts {
		if i%2 == 1 { // inside a code block
			for _, l := range strings.Split(p, "\n") {
				b.WriteString("\n    | " + l)
			}
			b.WriteString("\n")
			continue
		}
		b.WriteString(strings.ReplaceAll(p, "*", ""))
	}
	return slackUnquote.Replace(strings.TrimRight(b.String(), "\n"))
}

// renderSlack renders a Block Kit message roughly as the Slack client shows
// it; it also returns the incident ids the message names.
func renderSlack(m notify.SlackMessage) (title, text string, ids []string) {
	var b strings.Builder
	for _, blk := range m.Blocks {
		switch blk.Type {
		case "header":
			if blk.Text != nil {
				h := slackEmoji.Replace(blk.Text.Text)
				if title == "" {
					title = h
				}
				b.WriteString(h + "\n")
			}
		case "section":
			if blk.Text != nil {
				b.WriteString(mrkdwnText(blk.Text.Text) + "\n")
			}
			for i := 0; i < len(blk.Fields); i += 2 {
				left := fieldText(blk.Fields[i])
				right := ""
				if i+1 < len(blk.Fields) {
					right = fieldText(blk.Fields[i+1])
				}
				fmt.Fprintf(&b, "  %-44s %s\n", left, right)
			}
		case "context":
			var els []string
			for _, e := range blk.Elements {
				els = append(els, mrkdwnText(e.Text))
				if mm := slackIDRe.FindStringSubmatch(e.Text); mm != nil {
					ids = append(ids, mm[1])
				}
			}
			b.WriteString(strings.Join(els, " · ") + "\n")
		case "divider":
			b.WriteString(strings.Repeat("─", 40) + "\n")
		}
	}
	if title == "" {
		title = m.Text
	}
	return title, strings.TrimRight(b.String(), "\n"), ids
}

func fieldText(t *notify.SlackText) string {
	if t == nil {
		return ""
	}
	label, value, _ := strings.Cut(mrkdwnText(t.Text), "\n")
	return label + ": " + strings.ReplaceAll(value, "\n", " ")
}

// renderPagerDuty renders an Events API v2 event as the incident would read.
func renderPagerDuty(ev notify.PagerDutyEvent) (title, text string) {
	var b strings.Builder
	title = fmt.Sprintf("%s %s", strings.ToUpper(ev.EventAction), ev.DedupKey)
	fmt.Fprintf(&b, "event_action=%s dedup_key=%s", ev.EventAction, ev.DedupKey)
	if p := ev.Payload; p != nil {
		title = fmt.Sprintf("%s [%s] %s", strings.ToUpper(ev.EventAction), p.Severity, p.Summary)
		fmt.Fprintf(&b, " severity=%s source=%s component=%s group=%s class=%s\n", p.Severity, p.Source, p.Component, p.Group, p.Class)
		fmt.Fprintf(&b, "summary: %s", p.Summary)
		keys := make([]string, 0, len(p.CustomDetails))
		for k := range p.CustomDetails {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch k {
			case "suggested_mitigation", "started_at", "incident_id":
				fmt.Fprintf(&b, "\n%s: %v", k, p.CustomDetails[k])
			}
		}
	}
	return title, b.String()
}

// renderMail decodes an RFC 5322 message (quoted-printable body, encoded
// subject) into headers a reader sees and the body.
func renderMail(raw string) (title, text, incidentID string, err error) {
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		return "", "", "", err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(msg.Body)
	}
	bb, err := io.ReadAll(body)
	if err != nil {
		return "", "", "", err
	}
	var b strings.Builder
	for _, h := range []string{"From", "To", "Subject"} {
		v := msg.Header.Get(h)
		if h == "Subject" {
			v = subject
		}
		fmt.Fprintf(&b, "%s: %s\n", h, v)
	}
	b.WriteString("\n" + strings.TrimRight(strings.ReplaceAll(string(bb), "\r\n", "\n"), "\n"))
	return subject, b.String(), msg.Header.Get("X-Flowsentry-Incident"), nil
}
