"""Drives the approvals console (/admin/ui/) in headless Chromium (Debian's chromium and
chromium-driver; Selenium, no browser download). Run by tests/approvals_console.rs, which
starts the gateway and a counting upstream, then checks what this script cannot see (the
upstream's count, the audit trail, the API's own answer to a self-approval).

Steps: the approver signs in; an agent's call is held (made here over HTTP, after sign-in,
so it must appear without a reload); the approver approves it with a reason; the agent
confirms and its call runs; the page shows it done. Then a requester who is also an admin
signs in and tries to approve its own held call: the page shows the refusal.

Every wait is a WebDriverWait with a deadline; no sleeps. Prints the screenshots' paths and
writes a JSON summary to --results.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 30


def post(url, token, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("accept", "application/json, text/event-stream")
    req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def rpc_message(text):
    """The JSON-RPC message of a JSON or SSE answer."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    datas = [l[5:].strip() for l in text.splitlines() if l.startswith("data:") and '"id"' in l]
    return json.loads(datas[-1])


def tool_call(gateway, token, args, action_token=None):
    params = {"name": "echo", "arguments": args}
    if action_token:
        params["_meta"] = {"fastmcp/action_token": action_token}
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    status, text = post(gateway + "/mcp/demo", token, body)
    return status, rpc_message(text)


def held(msg):
    data = msg["error"]["data"]
    assert data["approval_required"] is True, msg
    return data["hold_id"], data["action_token"]


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1400"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def sign_in(d, wait, admin, token):
    d.get(admin + "/admin/ui/")
    wait.until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    d.find_element(By.ID, "signin").click()
    wait.until(EC.visibility_of_element_located((By.ID, "console")))
    wait.until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))


def card(wait, where, hold_id):
    return wait.until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f'#{where} .hold[data-id="{hold_id}"]')))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--approver", required=True, help="JWT of the approver")
    ap.add_argument("--agent", required=True, help="JWT of the agent whose call is held")
    ap.add_argument("--self-approver", required=True, help="JWT of a requester who is also an admin")
    ap.add_argument("--reason", required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--results", required=True)
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.screenshot), exist_ok=True)
    results = {}
    d = browser()
    try:
        wait = WebDriverWait(d, WAIT)
        sign_in(d, wait, a.admin, a.approver)
        assert "ops" in d.find_element(By.ID, "whoami").text
        assert d.find_element(By.ID, "revision").text.strip(), "the policy revision is shown"

        # An agent's call is held after the page is up: it must appear without a reload.
        status, msg = tool_call(a.gateway, a.agent, {"item": "invoice-42", "api_token": "tok-SECRET-1"})
        hold_id, action_token = held(msg)
        results["hold_id"] = hold_id
        c = card(wait, "holds", hold_id)
        wait.until(lambda _: "alice" in c.find_element(By.CSS_SELECTOR, ".who").text)
        shown = c.find_element(By.CSS_SELECTOR, ".args").text
        assert "invoice-42" in shown and "tok-SECRET-1" not in shown and "sha256:" in shown, shown
        assert "financial" in c.find_element(By.CSS_SELECTOR, ".tags").text
        assert "safety-destroy-requires-confirm" in c.find_element(By.CSS_SELECTOR, ".rules").text
        assert "left" in c.find_element(By.CSS_SELECTOR, ".ttl").text

        # Approve without a reason: the page asks for one, nothing is sent.
        c.find_element(By.CSS_SELECTOR, ".approve").click()
        wait.until(lambda _: "reason" in c.find_element(By.CSS_SELECTOR, ".error").text.lower())
        c.find_element(By.CSS_SELECTOR, ".reason").send_keys(a.reason)
        c.find_element(By.CSS_SELECTOR, ".approve").click()
        wait.until(lambda _: "waiting for the agent" in c.find_element(By.CSS_SELECTOR, ".status").text)

        # The agent confirms: the call runs, and the page shows the hold done.
        status, msg = tool_call(a.gateway, a.agent, {"item": "invoice-42", "api_token": "tok-SECRET-1"}, action_token)
        results["confirm_status"] = status
        results["confirm_result"] = msg.get("result")
        done = card(wait, "resolved", hold_id)
        wait.until(lambda _: "done" in done.find_element(By.CSS_SELECTOR, ".status").text)
        wait.until(lambda _: any(a.reason in li.text for li in d.find_elements(By.CSS_SELECTOR, "#decisions li")))
        d.save_screenshot(a.screenshot)
        print("screenshot:", a.screenshot)

        # A requester who is also an admin cannot approve its own call: refused in the page.
        d.find_element(By.ID, "signout").click()
        status, msg = tool_call(a.gateway, a.self_approver, {"item": "invoice-77"})
        own_id, _ = held(msg)
        results["self_hold_id"] = own_id
        sign_in(d, wait, a.admin, a.self_approver)
        c = card(wait, "holds", own_id)
        c.find_element(By.CSS_SELECTOR, ".reason").send_keys("approving my own")
        c.find_element(By.CSS_SELECTOR, ".approve").click()
        wait.until(lambda _: "someone other than its requester" in c.find_element(By.CSS_SELECTOR, ".error").text)
        results["self_refusal_text"] = c.find_element(By.CSS_SELECTOR, ".error").text
        assert d.find_elements(By.CSS_SELECTOR, f'#holds .hold[data-id="{own_id}"]'), "still pending"
        refused = a.screenshot.replace(".png", "-self-approval.png")
        d.save_screenshot(refused)
        print("screenshot:", refused)
    except Exception:
        shot = a.screenshot.replace(".png", "-failure.png")
        d.save_screenshot(shot)
        print("failure screenshot:", shot, file=sys.stderr)
        print("page:", d.find_element(By.TAG_NAME, "body").text[:4000], file=sys.stderr)
        raise
    finally:
        d.quit()
        with open(a.results, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
