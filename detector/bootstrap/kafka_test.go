package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestCoordinatedRetriesOnlyWhileTheCoordinatorLoads(t *testing.T) {
	cases := []struct {
		name  string
		errs  []error // returned by successive calls; then nil
		calls int
		fail  bool
	}{
		{"ok at once", nil, 1, false},
		{"not coordinator, then ok", []error{fmt.Errorf("describing: %w", kafka.NotCoordinatorForGroup), kafka.GroupCoordinatorNotAvailable, kafka.GroupLoadInProgress}, 4, false},
		{"other errors are not retried", []error{kafka.GroupAuthorizationFailed}, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := coordinated(context.Background(), func() error {
				calls++
				if calls <= len(c.errs) {
					return c.errs[calls-1]
				}
				return nil
			})
			if calls != c.calls || (err != nil) != c.fail {
				t.Errorf("%d calls, err %v; want %d calls, failure %v", calls, err, c.calls, c.fail)
			}
		})
	}
	old := coordinatorWait
	coordinatorWait = 0
	defer func() { coordinatorWait = old }()
	if err := coordinated(context.Background(), func() error { return kafka.NotCoordinatorForGroup }); !errors.Is(err, kafka.NotCoordinatorForGroup) {
		t.Errorf("after the wait: %v, want the coordinator error", err)
	}
}
