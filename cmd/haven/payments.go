package main

import (
	"flag"
	"fmt"
	"strings"

	"haven"
	"haven/stripe"
)

// paymentConfig is how `haven serve` takes card payments: through Stripe's
// hosted Checkout, with its secret key and the webhook endpoint's signing
// secret. The patient enters her card on Stripe's page, never on Haven's,
// so a live key is as welcome as a test one. Without them patients see
// their fees but cannot pay by card.
type paymentConfig struct {
	StripeKey     string
	WebhookSecret string
}

func (p *paymentConfig) register(fs *flag.FlagSet) error {
	return registerSettings(fs, []setting{
		{"stripe-key", "HAVEN_STRIPE_KEY", "", "Stripe secret API key for card payments (sk_live_… or sk_test_…); patients pay on Stripe's hosted page; default: card payments off", true, &p.StripeKey},
		{"stripe-webhook-secret", "HAVEN_STRIPE_WEBHOOK_SECRET", "", "signing secret (whsec_…) of the Stripe webhook endpoint <public-url>/api/v1/payments/webhook; required with --stripe-key", true, &p.WebhookSecret},
	})
}

// validate checks the settings before anything is opened.
func (p *paymentConfig) validate() error {
	_, err := p.processor("https://localhost")
	return err
}

// processor checks the settings and returns the processor, which sends
// patients back to publicURL, or nil when card payments are off.
func (p *paymentConfig) processor(publicURL string) (haven.Processor, error) {
	if p.StripeKey == "" {
		if p.WebhookSecret != "" {
			return nil, fmt.Errorf("--stripe-webhook-secret needs --stripe-key")
		}
		return nil, nil
	}
	if p.WebhookSecret == "" {
		return nil, fmt.Errorf("--stripe-webhook-secret: required with --stripe-key (payments settle by the webhook's notices)")
	}
	if !strings.HasPrefix(p.WebhookSecret, "whsec_") {
		return nil, fmt.Errorf("--stripe-webhook-secret: must start with whsec_ (Stripe's signing secret of the endpoint)")
	}
	proc, err := stripe.New(stripe.Config{Key: p.StripeKey, WebhookSecret: p.WebhookSecret, ReturnURL: publicURL})
	if err != nil {
		return nil, fmt.Errorf("--stripe-key: %s", haven.ErrorMessage(err))
	}
	return proc, nil
}
