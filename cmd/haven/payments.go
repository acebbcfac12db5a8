package main

import (
	"flag"
	"fmt"
	"strings"

	"haven"
	"haven/stripe"
)

// paymentConfig is how `haven serve` takes card payments: through Stripe,
// with its secret key and the webhook endpoint's signing secret. Without
// them patients see their fees but cannot pay by card.
type paymentConfig struct {
	StripeKey     string
	WebhookSecret string
}

func (p *paymentConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"stripe-key", "HAVEN_STRIPE_KEY", "", "Stripe secret API key for card payments, a test key (sk_test_…) in this version; default: card payments off", true, &p.StripeKey},
		{"stripe-webhook-secret", "HAVEN_STRIPE_WEBHOOK_SECRET", "", "signing secret (whsec_…) of the Stripe webhook endpoint <public-url>/api/v1/payments/webhook; required with --stripe-key", true, &p.WebhookSecret},
	})
}

// processor checks the settings and returns the processor, or nil when
// card payments are off.
func (p *paymentConfig) processor() (haven.Processor, error) {
	if p.StripeKey == "" {
		if p.WebhookSecret != "" {
			return nil, fmt.Errorf("--stripe-webhook-secret needs --stripe-key")
		}
		return nil, nil
	}
	if p.WebhookSecret == "" {
		return nil, fmt.Errorf("--stripe-webhook-secret: required with --stripe-key (payments settle by the webhook's notices)")
	}
	if strings.Contains(p.StripeKey, "_live_") {
		// Payments are confirmed on the server with Stripe's test card:
		// collecting a real card in the patient's browser is not built yet.
		return nil, fmt.Errorf("--stripe-key: only test keys (sk_test_…) are supported yet: this version has no card entry for live payments")
	}
	if !strings.HasPrefix(p.WebhookSecret, "whsec_") {
		return nil, fmt.Errorf("--stripe-webhook-secret: must start with whsec_ (Stripe's signing secret of the endpoint)")
	}
	proc, err := stripe.New(stripe.Config{Key: p.StripeKey, WebhookSecret: p.WebhookSecret})
	if err != nil {
		return nil, fmt.Errorf("--stripe-key: %s", haven.ErrorMessage(err))
	}
	return proc, nil
}
