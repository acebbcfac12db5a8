package policy_test

import (
	"testing"

	"haven"
	"haven/policy"
)

// TestRescheduleIsDecidedLikeBookingAndCancelling: moving a visit is
// booking a new time and cancelling the old one in a single step, so it
// must be open to exactly whom both are open, for every role, relationship,
// MFA state and step-up age. A wider row would let someone move a visit
// they could not have cancelled.
func TestRescheduleIsDecidedLikeBookingAndCancelling(t *testing.T) {
	allowed := 0
	for _, role := range haven.Roles {
		for _, sc := range scenarios {
			for _, mfa := range []bool{true, false} {
				for _, fresh := range []bool{true, false} {
					a, _, r, f := request(role, "visit.reschedule", sc, mfa, fresh)
					got := policy.Decide(a, policy.VisitReschedule, r, f)
					book := policy.Decide(a, policy.VisitBook, r, f)
					cancel := policy.Decide(a, policy.VisitCancel, r, f)
					if got != book || got != cancel {
						t.Errorf("%s, %s, mfa=%v fresh=%v: reschedule %+v, book %+v, cancel %+v", role, sc, mfa, fresh, got, book, cancel)
					}
					if got.Allow {
						allowed++
					}
				}
			}
		}
	}
	if allowed == 0 {
		t.Fatal("nobody may reschedule: the comparison proves nothing")
	}
}
