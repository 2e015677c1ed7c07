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

/// Runs all tests of `sources`, each on a fresh copy of the engine.
pub fn run(sources: &PolicySources) -> Result<Vec<TestResult>, String> {
    let engine = sources.engine(true)?;
    Ok(tests(sources).map(|(file, package, rule)| evaluate(&mut engine.clone(), file, package, rule)).collect())
}

/// Line coverage of one policy file by the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCoverage {
    pub file: String,
    pub covered: usize,
    pub not_covered: usize,
}

/// Runs all tests on one engine with coverage on; returns the results and the line coverage
/// of the non-test modules.
pub fn run_with_coverage(sources: &PolicySources) -> Result<(Vec<TestResult>, Vec<FileCoverage>), String> {
    let mut engine = sources.engine(true)?;
    engine.set_enable_coverage(true);
    let results = tests(sources).map(|(file, package, rule)| evaluate(&mut engine, file, package, rule)).collect();
    let report = engine.get_coverage_report().map_err(|e| e.to_string())?;
    let files = report
        .files
        .iter()
        .filter(|f| !is_test_file(&f.path))
        .map(|f| FileCoverage { file: f.path.clone(), covered: f.covered.len(), not_covered: f.not_covered.len() })
        .collect();
    Ok((results, files))
}

/// `(file, package, rule)` of every test.
fn tests(sources: &PolicySources) -> impl Iterator<Item = (&str, String, String)> {
    sources
        .rego
        .iter()
        .filter(|(n, _)| is_test_file(n))
        .flat_map(|(file, text)| test_rules(text).into_iter().map(move |(p, r)| (file.as_str(), p, r)))
}

fn evaluate(engine: &mut regorus::Engine, file: &str, package: String, rule: String) -> TestResult {
    engine.set_input(regorus::Value::new_object());
    let (passed, detail) = match engine.eval_rule(format!("data.{package}.{rule}")) {
        Ok(regorus::Value::Bool(true)) => (true, String::new()),
        Ok(regorus::Value::Undefined) => (false, "undefined (a body expression failed)".into()),
        Ok(v) => (false, format!("evaluated to {v}")),
        Err(err) => (false, format!("error: {err}")),
    };
    TestResult { file: file.to_string(), rule, passed, detail }
}
