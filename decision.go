package haven

// Decisions an audit event records. A denial is audited as carefully as an
// access: repeated denials are how a curious insider shows up.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionFail  = "fail" // allowed, but the operation failed
)
