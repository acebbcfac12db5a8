package totp

import (
	"haven"
	"haven/auth/totp/internal/qr"
)

// QRCodePNG renders an enrolment URI as a QR code in PNG, with scale pixels
// per module (6 makes a code about 300 pixels wide for a typical URI). The
// image holds the secret: serve it only to the enrolling user, with
// Cache-Control: no-store, and never write it to disk or a log.
func QRCodePNG(uri string, scale int) ([]byte, error) {
	c, err := qr.Encode([]byte(uri))
	if err != nil {
		return nil, haven.Errorf(haven.EINVALID, "issuer and account name are too long to fit a QR code")
	}
	return c.PNG(scale)
}
