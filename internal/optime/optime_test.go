package optime

import (
	"math"
	"testing"
)

// Prev is the timestamp right before: the previous increment, the last
// increment of the previous second, and zero for zero.
func TestPrev(t *testing.T) {
	for _, tc := range []struct{ in, want Timestamp }{
		{Timestamp{T: 10, I: 5}, Timestamp{T: 10, I: 4}},
		{Timestamp{T: 10, I: 0}, Timestamp{T: 9, I: math.MaxUint32}},
		{Zero, Zero},
	} {
		if got := tc.in.Prev(); got != tc.want {
			t.Errorf("%s.Prev() = %s, want %s", tc.in, got, tc.want)
		}
		if !tc.in.IsZero() && !tc.in.Prev().Before(tc.in) {
			t.Errorf("%s.Prev() is not before it", tc.in)
		}
	}
}
