package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ticketTTL is how long a ticket opens the event stream. It is checked
// when the stream opens, not while it runs.
const ticketTTL = time.Minute

// tickets sign and check the short-lived tickets that let a browser's
// EventSource, which cannot send an Authorization header, open the live
// stream: "<expiry unix seconds>.<HMAC-SHA256 of it>", keyed by a key
// derived from admin.token, so every instance sharing the token accepts
// them and changing the token voids them.
type tickets struct {
	token string // admin.token; "" when there is none
	key   []byte
	now   func() time.Time
}

func newTickets(token string) tickets {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("console live stream ticket"))
	return tickets{token: token, key: mac.Sum(nil), now: time.Now}
}

// issue returns a ticket and when it expires.
func (t tickets) issue() (string, time.Time) {
	exp := t.now().Add(ticketTTL).Truncate(time.Second)
	payload := strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + t.sign(payload), exp
}

func (t tickets) sign(payload string) string {
	mac := hmac.New(sha256.New, t.key)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// valid reports whether ticket was issued with this token and has not
// expired.
func (t tickets) valid(ticket string) bool {
	payload, sig, ok := strings.Cut(ticket, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(t.sign(payload))) {
		return false
	}
	exp, err := strconv.ParseInt(payload, 10, 64)
	return err == nil && t.now().Unix() < exp
}

// authorized reports whether r may open the live stream: always without a
// token, else with a valid ticket or the token as a bearer token (curl).
func (t tickets) authorized(r *http.Request) bool {
	if t.token == "" {
		return true
	}
	if ticket := r.URL.Query().Get("ticket"); ticket != "" {
		return t.valid(ticket)
	}
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got, want := sha256.Sum256([]byte(strings.TrimSpace(given))), sha256.Sum256([]byte(t.token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
