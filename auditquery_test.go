package haven_test

import (
	"strings"
	"testing"

	"haven"
)

func TestAuditQueryValidate(t *testing.T) {
	for _, q := range []haven.AuditQuery{
		{},
		{PatientID: "abc-123", ActorID: " u_1 ", Action: "chart.read", Decision: haven.DecisionDeny},
		{Decision: haven.DecisionAllow}, {Decision: haven.DecisionFail},
	} {
		if err := q.Validate(); err != nil {
			t.Errorf("%+v: %v", q, err)
		}
	}
	for name, q := range map[string]haven.AuditQuery{
		"patient not an id": {PatientID: "Jane Doe"},
		"actor with a NUL":  {ActorID: "u\x00SECRET"},
		"action with space": {Action: "chart read SECRET"},
		"action too long":   {Action: strings.Repeat("a", 65)},
		"decision unknown":  {Decision: "SECRET"},
		"decision in caps":  {Decision: "ALLOW"},
	} {
		err := q.Validate()
		if haven.ErrorCode(err) != haven.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		} else if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the message echoes the value: %v", name, err)
		}
	}
}
