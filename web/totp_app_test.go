package web_test

import (
	"encoding/base32"
	"strings"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"
)

// appCode is what an authenticator app, an implementation Haven did not
// write, shows for secret at a time. It reads the algorithm as apps read it
// from the enrolment URI: a 32-byte secret is an HMAC-SHA-256 one (FIPS
// 140-3 mode), any other HMAC-SHA-1.
func appCode(secret string, at time.Time) (string, error) {
	alg := otp.AlgorithmSHA1
	if key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret)); err == nil && len(key) == 32 {
		alg = otp.AlgorithmSHA256
	}
	return otptotp.GenerateCodeCustom(secret, at, otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: alg})
}
