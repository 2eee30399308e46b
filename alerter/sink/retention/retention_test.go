package retention

import (
	"testing"
	"time"
)

func TestExpired(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		id      string
		keep    int
		want    bool
		wantErr bool
	}{
		// keep 30 days before today (2026-11-27): cutoff 2026-10-28 00:00.
		{"20261027", 30, true, false},
		{"20261028", 30, false, false},
		{"20261127", 30, false, false},
		{"20250101", 30, true, false},
		// A month goes only when its last day expired.
		{"202609", 30, true, false},
		{"202610", 30, false, false},
		{"202410", 730, true, false},
		{"202411", 730, false, false},
		{"tuple()", 30, false, true},
		{"2026102", 30, false, true},
		{"20261399", 30, false, true},
	} {
		got, err := Expired(tc.id, tc.keep, now)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("Expired(%q, %d) = %v, %v; want %v, err %v", tc.id, tc.keep, got, err, tc.want, tc.wantErr)
		}
	}
}
