//! `fastmcp policy test`: runs every `test_*` rule of the `*_test.rego` files, like
//! `opa test`. A test passes only when its rule evaluates to `true`; undefined (a failed
//! body) and errors count as failures.

use super::source::{is_test_file, PolicySources};

/// One test's result.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub file: String,
    pub rule: String,
    pub passed: bool,
    pub detail: String,
}

/// The `(package, rule)` of every `test_*` rule in a Rego source.
pub fn test_rules(text: &str) -> Vec<(String, String)> {
    let mut package = String::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if let Some(p) = l.strip_prefix("package ") {
            package = p.trim().to_string();
            continue;
        }
        // A rule head starts at column 0 (indented lines are bodies).
        if line.starts_with("test_") {
            let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !package.is_empty() && !out.iter().any(|(p, r)| *p == package && *r == name) {
                out.push((package.clone(), name));
            }
        }
    }
    out
}

/// Runs all tests of `sources`.
pub fn run(sources: &PolicySources) -> Result<Vec<TestResult>, String> {
    let engine = sources.engine(true)?;
    let mut results = Vec::new();
    for (file, text) in sources.rego.iter().filter(|(n, _)| is_test_file(n)) {
        for (package, rule) in test_rules(text) {
            let mut e = engine.clone();
            e.set_input(regorus::Value::new_object());
            let path = format!("data.{package}.{rule}");
            let (passed, detail) = match e.eval_rule(path) {
                Ok(regorus::Value::Bool(true)) => (true, String::new()),
                Ok(regorus::Value::Undefined) => (false, "undefined (a body expression failed)".into()),
                Ok(v) => (false, format!("evaluated to {v}")),
                Err(err) => (false, format!("error: {err}")),
            };
            results.push(TestResult { file: file.clone(), rule, passed, detail });
        }
    }
    Ok(results)
}
