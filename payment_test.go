package haven_test

import (
	"testing"

	"haven"
)

func TestPaymentRefsAreOpaqueAndOnlyParseWhatNewMakes(t *testing.T) {
	r := haven.NewPaymentRef()
	if got, err := haven.ParsePaymentRef(r.String()); err != nil || got != r {
		t.Fatalf("round trip of %s: %v, %v", r, got, err)
	}
	if r == haven.NewPaymentRef() {
		t.Fatal("two references alike")
	}
	for _, s := range []string{"", "Jane Doe", "hvp_jane.doe@example.com", "hvp_" + "JANEDOEJANEDOEJANEDOEJAN", r.String() + "a", "pay_" + r.String()[4:]} {
		if _, err := haven.ParsePaymentRef(s); err == nil {
			t.Errorf("%q parsed as a reference", s)
		}
	}
}

func TestProcessorIDsCarryNoFreeText(t *testing.T) {
	if _, err := haven.ParseProcessorID("pi_3Nx2abcDEF"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "Jane Doe", "pi_jane doe", "pi_a@b.c", "nounderscore", "p_1234"} {
		if _, err := haven.ParseProcessorID(s); err == nil {
			t.Errorf("%q parsed as a processor id", s)
		}
	}
}

func TestCurrencies(t *testing.T) {
	for _, tc := range []struct {
		c    haven.Currency
		a    haven.Cents
		want string
	}{{haven.USD, 4000, "$40.00"}, {haven.EUR, 1205, "€12.05"}, {haven.GBP, 7, "£0.07"}, {haven.USD, -150, "-$1.50"}} {
		if got := tc.c.Format(tc.a); got != tc.want {
			t.Errorf("%v %d = %q, want %q", tc.c, tc.a, got, tc.want)
		}
	}
	if c, err := haven.ParseCurrency("EUR"); err != nil || c != haven.EUR {
		t.Errorf("EUR: %v %v", c, err)
	}
	if _, err := haven.ParseCurrency("xyz"); err == nil {
		t.Error("xyz parsed")
	}
	if (haven.Currency{}).Valid() {
		t.Error("the zero currency is valid")
	}
}
