package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// SMTP sends mail through a relay, upgrading with STARTTLS.
type SMTP struct {
	Addr      string // host:port
	From      string
	Username  string // empty: no AUTH
	Password  string
	StartTLS  string // "required" (default) or "none" (local relay on loopback only)
	TLS       *tls.Config
	HelloName string
	Timeout   time.Duration
}

// Mail is one message.
type Mail struct {
	To        []string
	Subject   string
	Body      string
	MessageID string // stable per incident and state, so mail clients thread and dedupe
	Headers   map[string]string
}

// Send delivers mail. SMTP 4xx replies and network errors are retryable,
// 5xx are not.
func (s *SMTP) Send(ctx context.Context, m Mail) error {
	if len(m.To) == 0 {
		return Permanent(errors.New("smtp: no recipient"))
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return Permanent(fmt.Errorf("smtp addr %q: %w", s.Addr, err))
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpError("greeting", err)
	}
	defer c.Close()
	if s.HelloName != "" {
		if err := c.Hello(s.HelloName); err != nil {
			return smtpError("EHLO", err)
		}
	}
	if s.StartTLS != "none" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			// Refuse to send customer data in clear text.
			return Permanent(errors.New("smtp: server does not offer STARTTLS (set starttls: none only for a local relay)"))
		}
		tc := s.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tc = tc.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		if err := c.StartTLS(tc); err != nil {
			return smtpError("STARTTLS", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return smtpError("AUTH", err)
		}
	}
	// The envelope sender is the bare address; the header keeps the display
	// name ("PacketWorks NOC <noc@...>"), which MAIL FROM would refuse.
	envelope := s.From
	if a, err := mail.ParseAddress(s.From); err == nil {
		envelope = a.Address
	}
	if err := c.Mail(envelope); err != nil {
		return smtpError("MAIL FROM", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return smtpError("RCPT TO "+to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError("DATA", err)
	}
	if _, err := w.Write(s.render(m)); err != nil {
		return smtpError("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpError("DATA", err)
	}
	_ = c.Quit()
	return nil
}

func smtpError(stage string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &Error{Status: te.Code, Retryable: te.Code < 500, Err: fmt.Errorf("smtp %s: %w", stage, err)}
	}
	return fmt.Errorf("smtp %s: %w", stage, err)
}

// render builds the RFC 5322 message: UTF-8 text, quoted-printable.
func (s *SMTP) render(m Mail) []byte {
	var b bytes.Buffer
	h := func(k, v string) {
		// No header injection through customer names or subjects.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	h("From", s.From)
	h("To", strings.Join(m.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", time.Now().UTC().Format(time.RFC1123Z))
	if m.MessageID != "" {
		h("Message-ID", "<"+m.MessageID+">")
	}
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	for k, v := range m.Headers {
		h(k, v)
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}
