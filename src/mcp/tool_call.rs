//! `tools/call` at an MCP door: translated into a [`Call`] for the enforcement core, and the
//! core's answer into MCP (forward, a refusal, a hold in the form the client understands).
//!
//! Confirmation inputs the call may carry: the gateway's action token
//! (`params._meta["fastmcp/action_token"]` or `X-Action-Token`), or its own sealed MRTR
//! `requestState` with the user's answer in `inputResponses` (2026-07-28). An upstream
//! server's MRTR state is the upstream's and passes through.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::canonical;
use crate::enforce::{Call, HeldCall, MessageKind, Outcome, Permit, Presented, Stop};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::confirm::{self, ClientProfile};
use crate::mcp::inbound::{Answer, Forward, Inbound, ReadResponse, Verdict};
use crate::mcp::jsonrpc;
use crate::mcp::request_state::{self, HoldState, StateError};
use crate::ratelimit;

const METHOD: Option<&str> = Some("tools/call");

impl Gateway {
    /// Runs one `tools/call` request (`body` is the whole JSON-RPC message) through the core.
    pub async fn tool_call<'a>(&self, req: &Inbound<'a>, id: &Value, params: &'a Value, body: &Value) -> Verdict<'a> {
        let parsed = match jsonrpc::tool_call(params) {
            Ok(c) => c,
            Err(e) => {
                let call = self.tool_stub(req, params);
                let r = self.enforce.refuse(&call, e).await;
                return Verdict::Answer(Answer::refusal(&r, id, req.corr_id, METHOD, self.cfg.mcp.refusal_status));
            }
        };
        let name = req.target_name.unwrap_or(&parsed.name);
        let mut call = self.tool_call_of(req, name, params);
        let tool_id = call.tool_id.clone().unwrap_or_default();
        let args_hash = call.args_hash.clone().unwrap_or_default();
        let mut token = parsed.action_token.clone().or(req.action_token_header.map(String::from));
        let mut decline = false;
        // Only the gateway's own state; an upstream server's MRTR state goes to that server.
        let ours = params.get("requestState").and_then(Value::as_str).filter(|s| request_state::is_ours(s));
        if let Some(sealed) = ours {
            let p = req.principal;
            let now = chrono::Utc::now().timestamp();
            let state = match self.fed.sealer.open(sealed, &p.sub, &p.tenant, &tool_id, &args_hash, now) {
                Ok(s) => s,
                Err(e) => {
                    let err = match e {
                        StateError::Expired => GatewayError::Conflict { message: e.to_string() },
                        _ => GatewayError::Forbidden { message: e.to_string(), reasons: vec!["request_state".into()] },
                    };
                    let r = self.enforce.refuse(&call, err).await;
                    return Verdict::Answer(Answer::refusal(&r, id, req.corr_id, METHOD, self.cfg.mcp.refusal_status));
                }
            };
            match confirm::retry_answer(params) {
                Some(confirm::Answer::Accept) => token = Some(state.action_token),
                Some(confirm::Answer::Decline) => {
                    token = Some(state.action_token);
                    decline = true;
                }
                None => return self.ask_again(call, id, sealed).await,
            }
        }
        call.presented = token.map(|t| Presented { token: t });
        let permit = match self.enforce.authorize(call).await {
            Ok(p) => p,
            Err(r) => {
                return Verdict::Answer(Answer::refusal(&r, id, req.corr_id, METHOD, self.cfg.mcp.refusal_status))
            }
        };
        if decline {
            let r = self.enforce.decline(permit).await;
            if r.outcome == Outcome::Declined {
                // A tool result, not an error: an LLM reads that the call did not run.
                return Verdict::Answer(Answer::message(confirm::declined_result(id, &tool_id), r.outcome, METHOD));
            }
            return Verdict::Answer(Answer::refusal(&r, id, req.corr_id, METHOD, self.cfg.mcp.refusal_status));
        }
        // A call that would be held must be one that can run: arguments the tool's discovered
        // inputSchema refuses are refused now (422), not after a human confirmed them.
        if permit.will_hold() {
            if let Err(e) = self.check_arguments(&req.server.name, name, &tool_id, permit.call().arguments) {
                let r = self.enforce.refuse_permit(permit, e).await;
                return Verdict::Answer(Answer::refusal(&r, id, req.corr_id, METHOD, self.cfg.mcp.refusal_status));
            }
        }
        // The arguments are kept with the hold so `confirm_url` (the REST confirm) can run
        // the call without the caller re-sending them.
        let keep = params.get("arguments").map(Value::to_string);
        match self.enforce.admit(permit, keep).await {
            Ok(admitted) => {
                let rewritten = body.pointer("/params/_meta/fastmcp~1action_token").is_some() || ours.is_some();
                let new_body = rewritten.then(|| {
                    let clean = confirm::strip_retry_fields(jsonrpc::strip_action_token(body.clone()));
                    Bytes::from(serde_json::to_vec(&clean).unwrap_or_default())
                });
                Verdict::Forward(Box::new(Forward {
                    admitted,
                    body: new_body,
                    read: ReadResponse::Pass,
                    method: METHOD.map(String::from),
                    elicitation: false,
                    params: Vec::new(),
                }))
            }
            Err(Stop::Refused(r)) => {
                Verdict::Answer(Answer::refusal(&r, id, req.corr_id, METHOD, self.cfg.mcp.refusal_status))
            }
            Err(Stop::Held(held)) => self.present_hold(req, id, params, held),
        }
    }

    /// Checks `arguments` against the `inputSchema` discovery found for `tool` on `server`;
    /// a tool the gateway has no schema for passes (the server judges its own input).
    fn check_arguments(&self, server: &str, tool: &str, tool_id: &str, arguments: &Value) -> Result<(), GatewayError> {
        let Some(schema) = self.fed.tool(server, tool).and_then(|t| t.get("inputSchema").cloned()) else {
            return Ok(());
        };
        crate::rest::invoke::validate(self, tool_id, "in", &schema, arguments)
    }

    /// The [`Call`] for a `tools/call` of `name` on `req.server`.
    fn tool_call_of<'a>(&self, req: &Inbound<'a>, name: &str, params: &'a Value) -> Call<'a> {
        let arguments = params.get("arguments").filter(|a| a.is_object()).unwrap_or(&EMPTY_OBJECT);
        let tool_id = format!("mcp:{}:{}", req.server.name, name);
        let resource = self.catalog.tool_resource(req.server, name, None);
        let mut call = Call::new(
            req.policy,
            req.principal,
            "tools.invoke",
            resource,
            arguments,
            MessageKind::Request,
            req.origin(),
        );
        call.args_hash = Some(canonical::hash(arguments));
        call.rate_key = Some(ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, &tool_id));
        call.tool_id = Some(tool_id);
        call.provider = Some("mcp".into());
        call.server = Some(req.server.name.clone());
        call.mcp_method = Some("tools/call".into());
        call.write_class = true;
        call
    }

    /// A call for the record of a `tools/call` too malformed to name its tool.
    fn tool_stub<'a>(&self, req: &Inbound<'a>, params: &'a Value) -> Call<'a> {
        let resource = self.catalog.server_resource(req.server, None);
        let mut call =
            Call::new(req.policy, req.principal, "tools.invoke", resource, params, MessageKind::Request, req.origin());
        call.provider = Some("mcp".into());
        call.server = Some(req.server.name.clone());
        call.mcp_method = Some("tools/call".into());
        call
    }

    /// Tells the client about a new hold in the way it understands: an MRTR question
    /// (2026-07-28 with elicitation), an elicitation on the call's stream (2025-11-25 session
    /// with elicitation), else the -32010 error with the action token. A hold that needs an
    /// approver is never offered to the caller to confirm itself.
    fn present_hold<'a>(&self, req: &Inbound<'a>, id: &Value, params: &Value, held: Box<HeldCall<'a>>) -> Verdict<'a> {
        let profile = ClientProfile::from_request(req.protocol_version, params);
        let tool_id = held.call().tool_id.clone().unwrap_or_default();
        if !held.needs_approval {
            if profile.modern && profile.elicitation {
                let state = HoldState {
                    action_token: held.issued.action_token.clone(),
                    sub: req.principal.sub.clone(),
                    tenant: req.principal.tenant.clone(),
                    tool_id: tool_id.clone(),
                    args_hash: held.call().args_hash.clone().unwrap_or_default(),
                    exp: chrono::Utc::now().timestamp() + self.cfg.holds.ttl_seconds as i64,
                };
                if let Ok(sealed) = self.fed.sealer.seal(&state) {
                    let body = confirm::input_required(id, &tool_id, &held.decision.reasons, &sealed);
                    return Verdict::Answer(Answer::message(body, Outcome::Held, METHOD));
                }
            }
            if req.session_elicitation && !profile.modern {
                return Verdict::Elicit(held);
            }
        }
        let mut data = held.issued.data(req.corr_id);
        data["approval_required"] = json!(held.needs_approval);
        data["hold_id"] = json!(held.issued.hold_id);
        data["reasons"] = json!(held.decision.reasons);
        // Clients that show only `error.message` (CLIs, inspectors) must still tell their user
        // what to do: the message names the confirm URL and where the token is.
        let url = &held.issued.confirm_url;
        let message = if held.needs_approval {
            format!(
                "confirmation required: an approver must approve hold {} first; then re-send this call with \
                 the action token from error.data.action_token in params._meta[\"fastmcp/action_token\"], \
                 or POST {{\"action_token\": …}} to {url}",
                held.issued.hold_id
            )
        } else {
            format!(
                "confirmation required: re-send this call with the action token from error.data.action_token \
                 in params._meta[\"fastmcp/action_token\"], or POST {{\"action_token\": …}} to {url}"
            )
        };
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32010, "message": message, "data": data}});
        Verdict::Answer(Answer::message(body, Outcome::Held, METHOD))
    }

    /// A retry that carries the gateway's state but no answer: ask again with the same state.
    async fn ask_again<'a>(&self, call: Call<'a>, id: &Value, sealed: &str) -> Verdict<'a> {
        tracing::info!(corr_id = call.origin.corr_id, "retry without an answer to the confirmation; asking again");
        let tool_id = call.tool_id.clone().unwrap_or_default();
        let corr_id = call.origin.corr_id;
        let permit: Permit<'a> = match self.enforce.authorize(call).await {
            Ok(p) => p,
            Err(r) => return Verdict::Answer(Answer::refusal(&r, id, corr_id, METHOD, self.cfg.mcp.refusal_status)),
        };
        let reasons = permit.decision().reasons.clone();
        self.enforce.asked_again(permit).await;
        Verdict::Answer(Answer::message(confirm::input_required(id, &tool_id, &reasons, sealed), Outcome::Held, METHOD))
    }
}

/// The arguments of a call that sent none.
static EMPTY_OBJECT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
