# Attribute rules on tool arguments (ABAC), shipped with the default policy. They only add
# obligations and requirements; they never grant access on their own.
#
# Tunables live in policies.yml under `params` (hot-reloaded with the rest).
#
# authz.rego reads three sets from this package: `denies` and `confirms` (rule ids) and
# `required_scopes` (scopes the call needs on top of the tool's). Keep them in a package of
# their own: regorus 0.14 mis-evaluates `with input as` tests when a second module shares the
# package of the rules under test.
package fastmcp.abac

import rego.v1

default ads_budget_threshold := 1000

ads_budget_threshold := data.policies.params.ads_budget_confirmation_threshold

# A campaign whose budget is above the threshold needs a human confirmation.
confirms contains "abac-ads-budget-over-threshold" if {
	input.resource.toolId == "ads:createCampaign"
	budget := input.request.arguments.budget
	is_number(budget)
	budget > ads_budget_threshold
}

# A budget that is not a number cannot be compared: confirm rather than guess. (Presence is
# tested explicitly: the RVM must not see `not` applied to an undefined value.)
confirms contains "abac-ads-budget-not-a-number" if {
	input.resource.toolId == "ads:createCampaign"
	args := object.get(input, ["request", "arguments"], {})
	"budget" in object.keys(args)
	not is_number(args.budget)
}

# Anything but one plain read-only statement needs database.write (the database provider also
# enforces read-only connections; this is the policy-level requirement).
# (No query at all, as when the catalog asks whether the tool may be listed: no requirement;
# the tool's input schema then refuses the call.)
required_scopes contains "database.write" if {
	input.resource.toolId == "database:executeQuery"
	args := object.get(input, ["request", "arguments"], {})
	"query" in object.keys(args)
	not read_only_sql(args.query)
}

read_only_sql(q) if {
	is_string(q)
	regex.match(`^\s*(?i:select|explain|values)\b[^;]*;?\s*$`, q)
}

# --- Manifest registration (action manifests.register). The gateway puts the tenant of the
# manifest being replaced (`resource.previous_tenant`) and the safety tags the new version
# drops (`resource.removed_tags`) into the input.

platform_admin if "platform-admin" in input.subject.roles

# Only a platform admin registers tools that every tenant sees.
denies contains "register-public-needs-platform-admin" if {
	input.action == "manifests.register"
	input.resource.tenant == "public"
	not platform_admin
}

# A tool registered by another tenant cannot be taken over.
denies contains "register-foreign-manifest" if {
	input.action == "manifests.register"
	prev := object.get(input, ["resource", "previous_tenant"], null)
	is_string(prev)
	prev != input.subject.tenant
	not platform_admin
}

# Dropping safety tags lowers a tool's risk for everyone who may call it.
denies contains "register-drops-safety-tags" if {
	input.action == "manifests.register"
	count(object.get(input, ["resource", "removed_tags"], [])) > 0
	not platform_admin
}

# --- Sidecar mode (mTLS). With `params.peer_must_match_subject: true` the JWT's `sub` must be
# one of the names of the connection's verified client certificate (`input.subject.peer`, a
# URI SAN such as a SPIFFE ID, or a DNS SAN, compared case-insensitively): only the workload
# the certificate names may use its token on this gateway. No certificate: denied.
default peer_must_match_subject := false

peer_must_match_subject := data.policies.params.peer_must_match_subject

denies contains "peer-does-not-match-subject" if {
	peer_must_match_subject == true
	not peer_names_subject
}

peer_names_subject if {
	some uri in input.subject.peer.uris
	uri == input.subject.sub
}

peer_names_subject if {
	some name in input.subject.peer.dns
	name == lower(input.subject.sub)
}
