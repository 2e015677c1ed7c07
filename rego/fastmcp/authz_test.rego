# Unit tests for authz.rego against the shipped policies.yml. Run: `fastmcp policy test`.
package fastmcp.authz_test

import rego.v1

import data.fastmcp.authz

mcp_call(roles, tags) := call_on(roles, tags, "public", ["mcp.git"])

call_on(roles, tags, tenant, scopes) := {
	"subject": {"sub": "a", "tenant": "acme", "roles": roles, "scopes": []},
	"action": "tools.invoke",
	"resource": {
		"toolId": "mcp:git:log", "provider_id": "mcp", "tenant": tenant,
		"safety_tags": tags, "required_scopes": scopes,
	},
}

test_mcp_user_reads_git if {
	d := authz.decision with input as mcp_call(["mcp-user"], ["read_only"])
	d.allow
	not d.require_confirmation
	"invoke-mcp-tools" in d.reasons
}

test_destructive_tool_needs_confirmation if {
	d := authz.decision with input as mcp_call(["mcp-user"], ["destructive"])
	d.allow
	d.require_confirmation
}

test_obligation_rule_never_grants if {
	d := authz.decision with input as mcp_call(["agent"], ["destructive"])
	not d.allow
}

test_default_deny if {
	d := authz.decision with input as {"subject": {"roles": []}, "action": "tools.invoke", "resource": {}}
	not d.allow
	"default_deny" in d.reasons
}

test_required_scope_enforced if {
	inp := call_on(["mcp-user"], [], "public", ["mcp.secrets"])
	d := authz.decision with input as inp
	not d.allow
	"missing_scope:mcp.secrets" in d.reasons
}

test_wildcard_scope if {
	inp := call_on(["mcp-admin"], [], "public", ["mcp.secrets"])
	d := authz.decision with input as inp
	d.allow
}

test_tenant_isolation_denies_other_tenant if {
	inp := call_on(["mcp-user"], [], "globex", ["mcp.git"])
	d := authz.decision with input as inp
	not d.allow
	"tenant-isolation" in d.reasons
}

test_finance_ads_with_confirmation if {
	d := authz.decision with input as {
		"subject": {"sub": "f", "tenant": "acme", "roles": ["finance-write"], "scopes": []},
		"action": "tools.invoke",
		"resource": {"toolId": "ads:createCampaign", "provider_id": "ads", "tenant": "public", "safety_tags": ["financial"], "required_scopes": ["ads.write"]},
	}
	d.allow
	d.require_confirmation
}

test_mcp_methods_allowed_for_mcp_roles if {
	d := authz.decision with input as object.union(mcp_call(["mcp-user"], []), {"action": "mcp.resources/read"})
	d.allow
}

test_unlisted_mcp_method_denied if {
	d := authz.decision with input as object.union(mcp_call(["mcp-user"], []), {"action": "mcp.sampling/createMessage"})
	not d.allow
}

test_server_requests_relayed_within_the_server_scope if {
	d := authz.decision with input as object.union(mcp_call(["mcp-user"], []), {"action": "mcp.client.sampling/createMessage"})
	d.allow
	"mcp-client-requests" in d.reasons
	other := authz.decision with input as object.union(mcp_call(["mcp-user"], []), {"action": "mcp.client.tasks/get"})
	not other.allow
	no_scope := object.union(call_on(["mcp-user"], [], "public", ["mcp.secrets"]), {"action": "mcp.client.roots/list"})
	not authz.decision.allow with input as no_scope
}
