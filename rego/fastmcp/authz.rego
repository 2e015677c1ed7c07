# FastMCP authorization: interprets the seed-format data in policies/policies.yml
# (data.policies.roles, data.policies.rules) with DESIGN §5 semantics.
#
# Entry point: data.fastmcp.authz.decision =
#   {"allow": bool, "require_confirmation": bool, "reasons": [rule ids], "rate_limit"?: {...}}
package fastmcp.authz

import rego.v1

rules := object.get(data, ["policies", "rules"], [])

role_scopes := object.get(data, ["policies", "roles"], {})

# Scopes the subject holds: the token's own plus those of its roles.
subject_scopes contains s if {
	some s in object.get(input, ["subject", "scopes"], [])
}

subject_scopes contains s if {
	some r in object.get(input, ["subject", "roles"], [])
	some s in object.get(role_scopes, r, [])
}

# A held scope ending in `*` covers every scope with that prefix (`mcp.*` covers `mcp.git`).
scope_held(required) if required in subject_scopes

scope_held(required) if {
	some s in subject_scopes
	endswith(s, "*")
	startswith(required, trim_suffix(s, "*"))
}

lookup(path) := object.get(input, split(path, "."), null)

# One `when` condition. The value is a string (equal), a list (any of), or "!= <path>".
cond(key, want) if {
	key == "resource.safety_tags_any"
	some t in object.get(input, ["resource", "safety_tags"], [])
	t in want
}

cond(key, want) if {
	key != "resource.safety_tags_any"
	is_string(want)
	not startswith(want, "!= ")
	lookup(key) == want
}

cond(key, want) if {
	is_string(want)
	startswith(want, "!= ")
	differs(key, trim_prefix(want, "!= "))
}

cond(key, want) if {
	key != "resource.safety_tags_any"
	is_array(want)
	have := lookup(key)
	is_array(have)
	some h in have
	h in want
}

cond(key, want) if {
	key != "resource.safety_tags_any"
	is_array(want)
	have := lookup(key)
	not is_array(have)
	have in want
}

# The tenant-isolation form. A `public` resource belongs to every tenant.
differs(key, other) if {
	lookup(key) != lookup(other)
	lookup(key) != "public"
}

matches(rule) if {
	every key, want in object.get(rule, "when", {}) {
		cond(key, want)
	}
}

matched contains rule if {
	some rule in rules
	matches(rule)
}

names_subject(rule) if {
	some key, _ in object.get(rule, "when", {})
	startswith(key, "subject.")
}

# A confirmation rule without a subject condition is an obligation: it never grants access.
obligation(rule) if {
	rule.require_confirmation == true
	not names_subject(rule)
}

grants contains rule.id if {
	some rule in matched
	rule.effect == "allow"
	not obligation(rule)
}

denies contains rule.id if {
	some rule in matched
	rule.effect == "deny"
}

confirms contains rule.id if {
	some rule in matched
	rule.effect == "allow"
	rule.require_confirmation == true
}

missing_scopes contains s if {
	some s in object.get(input, ["resource", "required_scopes"], [])
	not scope_held(s)
}

default allow := false

allow if {
	count(grants) > 0
	count(denies) == 0
	count(missing_scopes) == 0
}

default require_confirmation := false

require_confirmation if {
	allow
	count(confirms) > 0
}

reason_ids contains id if some id in grants

reason_ids contains id if some id in denies

reason_ids contains id if some id in confirms

reason_ids contains sprintf("missing_scope:%s", [s]) if some s in missing_scopes

reason_ids contains "default_deny" if count(grants) == 0

rate_limits := [rule.rate_limit |
	some rule in matched
	rule.effect == "allow"
	rule.rate_limit
]

extra := {"rate_limit": rate_limits[0]} if count(rate_limits) > 0

else := {}

decision := object.union(
	{
		"allow": allow,
		"require_confirmation": require_confirmation,
		"reasons": sort([id | some id in reason_ids]),
	},
	extra,
)
