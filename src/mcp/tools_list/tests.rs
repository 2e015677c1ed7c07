use super::*;
use serde_json::json;

fn only(name: &'static str) -> impl FnMut(&Value) -> bool {
    move |t: &Value| t["name"] == name
}

fn filtered(msg: &str, allowed: &mut dyn FnMut(&Value) -> bool) -> Option<String> {
    filter_raw(msg.as_bytes(), allowed).unwrap().map(|b| String::from_utf8(b).unwrap())
}

#[test]
fn keeps_only_allowed_tools_byte_for_byte() {
    let msg = "{ \"result\" : {\"tools\": [\n  {\"name\":\"a\", \"inputSchema\":{\"z\":1,\"a\":2}},\n  {\"name\":\"b\",\n   \"inputSchema\":{\"type\":\"object\",\"properties\":{\"y\":{},\"x\":{}}}} ,\n  {\"name\":\"c\",\"n\":1.0e0}\n ], \"nextCursor\":\"c\"},\"id\":1,\"jsonrpc\":\"2.0\"}";
    assert_eq!(
        filtered(msg, &mut only("b")).unwrap(),
        "{ \"result\" : {\"tools\": [\n  {\"name\":\"b\",\n   \"inputSchema\":{\"type\":\"object\",\"properties\":{\"y\":{},\"x\":{}}}}\n ], \"nextCursor\":\"c\"},\"id\":1,\"jsonrpc\":\"2.0\"}"
    );
    let mut not_b = |t: &Value| t["name"] != "b";
    assert_eq!(
        filtered(msg, &mut not_b).unwrap(),
        "{ \"result\" : {\"tools\": [\n  {\"name\":\"a\", \"inputSchema\":{\"z\":1,\"a\":2}},\n  {\"name\":\"c\",\"n\":1.0e0}\n ], \"nextCursor\":\"c\"},\"id\":1,\"jsonrpc\":\"2.0\"}"
    );
    assert_eq!(filtered(msg, &mut |_| true).unwrap(), msg);
    let none = filtered(msg, &mut |_| false).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&none).unwrap()["result"]["tools"], json!([]));
    assert!(none.ends_with("\n ], \"nextCursor\":\"c\"},\"id\":1,\"jsonrpc\":\"2.0\"}"), "{none}");
}

#[test]
fn every_subset_of_tools_stays_valid_json_with_the_right_tools() {
    let msg =
        r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[ {"name":"t0"} ,{"name":"t1"},	{"name":"t2"} , {"name":"t3"}]}}"#;
    for mask in 0u32..16 {
        let mut allowed = |t: &Value| {
            let i: u32 = t["name"].as_str().unwrap()[1..].parse().unwrap();
            mask & (1 << i) != 0
        };
        let out = filtered(msg, &mut allowed).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let names: Vec<String> = (0..4).filter(|i| mask & (1 << i) != 0).map(|i| format!("t{i}")).collect();
        let got: Vec<String> =
            v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().into()).collect();
        assert_eq!(got, names, "mask {mask}: {out}");
    }
}

#[test]
fn messages_that_are_not_tools_lists_are_left_alone() {
    for msg in [
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"tools":[]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":[{"tools":[]}]}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"a"}}}"#,
        r#""just a string""#,
    ] {
        assert!(filter_raw(msg.as_bytes(), &mut |_| false).unwrap().is_none(), "{msg}");
    }
    assert_eq!(filtered(r#"{"result":{"tools":[]}}"#, &mut |_| false).unwrap(), r#"{"result":{"tools":[]}}"#);
}

#[test]
fn invalid_ambiguous_or_batched_messages_are_errors() {
    for msg in [
        "",
        "{",
        r#"{"result":{"tools":[{"name":"a"}]}} x"#,
        r#"{"result":{"tools":[{"name":"a"},]}}"#,
        r#"{"id":1,"bad":[1,}"#,
        r#"{"result":{"tools":[]},"result":{"tools":[{"name":"secret"}]}}"#,
        r#"[{"result":{"tools":[{"name":"secret"}]}}]"#,
        "nope",
    ] {
        assert!(filter_raw(msg.as_bytes(), &mut |_| true).is_err(), "{msg}");
        assert!(mark_complete_raw(msg.as_bytes()).is_err(), "{msg}");
    }
    let twice = r#"{"result":{"tools":[],"tools":[{"name":"secret"}]}}"#;
    assert!(filter_raw(twice.as_bytes(), &mut |_| true).is_err());
}

#[test]
fn escaped_member_names_are_read_like_clients_read_them() {
    let msg = r#"{"re\u0073ult":{"tool\u0073":[{"name":"a"},{"name":"b"}]}}"#;
    assert_eq!(filtered(msg, &mut only("b")).unwrap(), r#"{"re\u0073ult":{"tool\u0073":[{"name":"b"}]}}"#);
}

#[test]
fn raw_results_are_marked_complete_once_without_reserialising() {
    let msg = br#"{"jsonrpc":"2.0","id":1,"result": { "z":1, "content":[] }}"#;
    let out = mark_complete_raw(msg).unwrap().unwrap();
    assert_eq!(out, br#"{"jsonrpc":"2.0","id":1,"result": {"resultType":"complete", "z":1, "content":[] }}"#);
    assert!(mark_complete_raw(&out).unwrap().is_none());
    assert_eq!(
        mark_complete_raw(br#"{"id":1,"result":{ }}"#).unwrap().unwrap(),
        br#"{"id":1,"result":{"resultType":"complete" }}"#
    );
    assert!(mark_complete_raw(br#"{"id":1,"result":{"resultType":null}}"#).unwrap().is_none());
    assert!(mark_complete_raw(br#"{"method":"notifications/progress"}"#).unwrap().is_none());
    assert!(mark_complete_raw(br#"{"id":1,"error":{"code":1,"message":"x"}}"#).unwrap().is_none());
}

#[test]
fn legacy_results_are_marked_complete_once() {
    let out = mark_complete(&json!({"id":1,"result":{"content":[]}})).unwrap();
    assert_eq!(out["result"]["resultType"], "complete");
    assert!(mark_complete(&out).is_none());
    assert!(mark_complete(&json!({"method":"notifications/progress"})).is_none());
}
