# Tests for abac.rego against the shipped policies.yml.
package fastmcp.abac_test

import rego.v1

import data.fastmcp.authz

campaign(budget) := {
	"subject": {"sub": "f", "tenant": "acme", "roles": ["finance-write"], "scopes": []},
	"action": "tools.invoke",
	"resource": {"toolId": "ads:createCampaign", "provider_id": "ads", "tenant": "public", "safety_tags": [], "required_scopes": ["ads.write"]},
	"request": {"arguments": {"budget": budget}},
}

query(roles, sql) := {
	"subject": {"sub": "d", "tenant": "acme", "roles": roles, "scopes": []},
	"action": "tools.invoke",
	"resource": {"toolId": "database:executeQuery", "provider_id": "database", "tenant": "public", "safety_tags": [], "required_scopes": ["database.execute"]},
	"request": {"arguments": {"query": sql}},
}

test_budget_over_threshold_needs_confirmation if {
	d := authz.decision with input as campaign(5000)
	d.allow
	d.require_confirmation
	"abac-ads-budget-over-threshold" in d.reasons
}

test_budget_threshold_is_configurable if {
	d := authz.decision with input as campaign(5000) with data.policies.params.ads_budget_confirmation_threshold as 10000
	not "abac-ads-budget-over-threshold" in d.reasons
}

test_budget_below_threshold_needs_no_abac_confirmation if {
	d := authz.decision with input as campaign(10)
	d.allow
	not "abac-ads-budget-over-threshold" in d.reasons
}

test_non_numeric_budget_is_confirmed if {
	d := authz.decision with input as campaign("lots")
	"abac-ads-budget-not-a-number" in d.reasons
}

test_analyst_may_select if {
	d := authz.decision with input as query(["data-analyst"], "SELECT * FROM users")
	d.allow
}

test_analyst_may_not_write if {
	d := authz.decision with input as query(["data-analyst"], "DELETE FROM users")
	not d.allow
	"missing_scope:database.write" in d.reasons
}

test_stacked_statements_need_write if {
	d := authz.decision with input as query(["data-analyst"], "SELECT 1; DROP TABLE users")
	not d.allow
}

test_admin_may_write if {
	d := authz.decision with input as query(["data-admin"], "DELETE FROM users")
	d.allow
}

register(roles, tenant, resource) := {
	"subject": {"sub": "adm", "tenant": tenant, "roles": roles, "scopes": []},
	"action": "manifests.register",
	"resource": object.union({"toolId": "x:y", "provider_id": "x", "tenant": tenant, "safety_tags": [], "required_scopes": []}, resource),
}

test_tenant_admin_registers_own_tenant if {
	d := authz.decision with input as register(["tenant-admin"], "acme", {})
	d.allow
}

test_public_registration_needs_platform_admin if {
	d := authz.decision with input as register(["tenant-admin"], "acme", {"tenant": "public"})
	not d.allow
	"register-public-needs-platform-admin" in d.reasons
	p := authz.decision with input as register(["platform-admin"], "acme", {"tenant": "public"})
	p.allow
}

test_foreign_manifest_cannot_be_taken_over if {
	d := authz.decision with input as register(["tenant-admin"], "acme", {"previous_tenant": "globex"})
	not d.allow
	"register-foreign-manifest" in d.reasons
}

test_dropping_safety_tags_is_denied if {
	d := authz.decision with input as register(["tenant-admin"], "acme", {"removed_tags": ["destructive"]})
	not d.allow
	"register-drops-safety-tags" in d.reasons
}

test_agents_cannot_register if {
	d := authz.decision with input as register(["agent"], "acme", {})
	not d.allow
}

sidecar_call(sub, peer) := {
	"subject": {"sub": sub, "tenant": "acme", "roles": ["data-analyst"], "scopes": [], "peer": peer},
	"action": "tools.invoke",
	"resource": {"toolId": "database:listTables", "provider_id": "database", "tenant": "public", "safety_tags": [], "required_scopes": []},
	"request": {"arguments": {}},
}

spiffe_peer := {"uris": ["spiffe://acme.example/agent-1"], "dns": ["agent-1.acme.svc"], "spiffe_id": "spiffe://acme.example/agent-1", "sha256": "00"}

test_sidecar_mode_is_off_by_default if {
	d := authz.decision with input as sidecar_call("someone-else", null)
	d.allow
}

test_sidecar_mode_admits_the_subject_the_certificate_names if {
	d := authz.decision with input as sidecar_call("spiffe://acme.example/agent-1", spiffe_peer) with data.policies.params.peer_must_match_subject as true
	d.allow
	e := authz.decision with input as sidecar_call("Agent-1.ACME.svc", spiffe_peer) with data.policies.params.peer_must_match_subject as true
	e.allow
}

test_sidecar_mode_denies_another_subject_or_no_certificate if {
	d := authz.decision with input as sidecar_call("spiffe://acme.example/agent-2", spiffe_peer) with data.policies.params.peer_must_match_subject as true
	not d.allow
	"peer-does-not-match-subject" in d.reasons
	e := authz.decision with input as sidecar_call("spiffe://acme.example/agent-1", null) with data.policies.params.peer_must_match_subject as true
	not e.allow
	"peer-does-not-match-subject" in e.reasons
}
