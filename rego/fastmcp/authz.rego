# FastMCP authorization: interprets the seed-format rules of policies/policies.yml with the
# DESIGN §5 semantics.
#
# Data: data.policies (policies.yml as written), data.fastmcp_rules (the same rules with
# each `when` condition pre-parsed by the gateway: {op, path, value|other}) and
# data.fastmcp_index (which rules an action, tool or provider can match; see
# src/policy/normalize.rs). Entry point:
#   data.fastmcp.authz.decision =
#     {"allow": bool, "require_confirmation": bool, "reasons": [rule ids], "rate_limit"?: {...}}
package fastmcp.authz

import rego.v1

default rules := []

rules := data.fastmcp_rules

default role_scopes := {}

role_scopes := data.policies.roles

# Scopes the subject holds: the token's own plus those of its roles.
subject_scopes contains s if {
	some s in input.subject.scopes
}

subject_scopes contains s if {
	some r in input.subject.roles
	some s in role_scopes[r]
}

# A held scope ending in `*` covers every scope with that prefix (`mcp.*` covers `mcp.git`).
scope_held(required) if required in subject_scopes

scope_held(required) if {
	some s in subject_scopes
	endswith(s, "*")
	startswith(required, trim_suffix(s, "*"))
}

default index := {"any": [], "by_action": {}, "rate_limited": []}

index := data.fastmcp_index

# The rules this input can match, from the index: a decision visits a handful of rules however
# many the policy has. The index only narrows; `matched` checks every condition. An action,
# tool or provider that is not a string (never so in the gateway's input) visits every rule
# the index could have filed it under, so the result is the same as without the index.
action := object.get(input, "action", null)

tool_id := object.get(input, ["resource", "toolId"], null)

provider_id := object.get(input, ["resource", "provider_id"], null)

action_rules := index.by_action[action]

candidates contains i if some i in index.any

candidates contains i if some i in action_rules.rest

candidates contains i if some i in action_rules.tool[tool_id]

candidates contains i if some i in action_rules.provider[provider_id]

candidates contains i if {
	not is_string(tool_id)
	some ids in action_rules.tool
	some i in ids
}

candidates contains i if {
	not is_string(provider_id)
	some ids in action_rules.provider
	some i in ids
}

candidates contains i if {
	not is_string(action)
	some i, _ in rules
}

# A rule matches when all its `when` conditions hold, one list per operator:
# eq: equal; in: the value (or any element of a list value) is listed; tags_any: the
# resource has any of the tags; neq_path: differs from another input path, where a `public`
# resource belongs to every tenant.
matched contains i if {
	some i in candidates
	rule := rules[i]
	object.subset(input, rule.eq_pattern)
	every c in rule.eq {
		object.get(input, c.path, null) == c.value
	}
	every c in rule["in"] {
		in_ok(c)
	}
	every c in rule.tags_any {
		some t in object.get(input, c.path, [])
		t in c.value
	}
	every c in rule.neq_path {
		differs(c)
	}
}

in_ok(c) if {
	have := object.get(input, c.path, null)
	not is_array(have)
	have in c.value
}

in_ok(c) if {
	have := object.get(input, c.path, null)
	is_array(have)
	some h in have
	h in c.value
}

differs(c) if {
	have := object.get(input, c.path, null)
	have != object.get(input, c.other, null)
	have != "public"
}

# A confirmation rule without a subject condition is an obligation (`rule.obligation`,
# computed from the rule's shape at load): it never grants access.
grants contains rule.id if {
	some i in matched
	rule := rules[i]
	rule.effect == "allow"
	not rule.obligation
}

denies contains rules[i].id if {
	some i in matched
	rules[i].effect == "deny"
}

denies contains id if some id in abac_denies

confirms contains rule.id if {
	some i in matched
	rule := rules[i]
	rule.effect == "allow"
	rule.require_confirmation
}

confirms contains id if some id in abac_confirms

# Attribute rules (package fastmcp.abac, abac.rego): rule ids that deny, rule ids that ask
# for confirmation, extra scopes the call needs. Empty when that package is absent.
default abac_denies := []

abac_denies := data.fastmcp.abac.denies

default abac_confirms := []

abac_confirms := data.fastmcp.abac.confirms

default abac_required_scopes := []

abac_required_scopes := data.fastmcp.abac.required_scopes

missing_scopes contains s if {
	some s in input.resource.required_scopes
	not scope_held(s)
}

missing_scopes contains s if {
	some s in abac_required_scopes
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

# The first matching allow rule that names a rate limit sets it.
# (`index.rate_limited`: the allow rules that name one, in policy order.)
rate_limits := [rules[i].rate_limit |
	some i in index.rate_limited
	i in matched
]

base := {
	"allow": allow,
	"require_confirmation": require_confirmation,
	"reasons": reason_ids, # a set: serialized as a sorted array
}

decision := object.union(base, {"rate_limit": rate_limits[0]}) if count(rate_limits) > 0

else := base
