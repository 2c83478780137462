"""The Explorer in headless Chromium against a live gateway and audit sink.

Run by tests/explorer_test.sh, which starts the processes and sets EXPLORER_URL (the
HTTP API), EXPLORER_GATEWAY (gRPC, for sluicectl publish), EXPLORER_TOKEN_A (tenant
acme), EXPLORER_TOKEN_B (tenant globex), EXPLORER_ARTIFACTS and SLUICECTL. Each step
asserts what the page shows and saves a screenshot; the first failure ends the run.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

URL = os.environ["EXPLORER_URL"]
GATEWAY = os.environ["EXPLORER_GATEWAY"]
TOKEN_A = os.environ["EXPLORER_TOKEN_A"]
TOKEN_B = os.environ["EXPLORER_TOKEN_B"]
ARTIFACTS = os.environ["EXPLORER_ARTIFACTS"]
SLUICECTL = os.environ["SLUICECTL"]


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def actor():
    return {"actorId": "explorer-test", "actorType": "ACTOR_TYPE_SYSTEM"}


def refreshed(tenant, urn, correlation=None):
    e = {
        "id": str(uuid.uuid4()), "type": "data.refreshed", "tenantId": tenant, "source": "etl.pipeline",
        "occurredAt": now_iso(),
        "dataRefreshed": {"entityUrn": urn, "service": {"schema": "public", "table": urn.replace(".", "_")},
                          "rowsAffected": "10", "refreshType": "REFRESH_TYPE_INCREMENTAL",
                          "completedAt": now_iso(), "triggeredBy": actor()},
    }
    if correlation:
        e["correlationId"] = correlation
    return e


def failed(tenant, key, source="metadata-studio.api", correlation=None):
    e = {
        "id": str(uuid.uuid4()), "type": "metadata.profile.failed", "tenantId": tenant, "source": source,
        "occurredAt": now_iso(),
        "profileFailed": {"entityType": "ENTITY_TYPE_METADATA", "entityId": str(uuid.uuid4()), "canonicalKey": key,
                          "tier": "TIER_1", "errorCode": "STATEMENT_TIMEOUT", "errorMessage": "timeout",
                          "retryable": True, "jobId": str(uuid.uuid4()), "attempt": 1, "triggeredBy": actor()},
    }
    if correlation:
        e["correlationId"] = correlation
    return e


def publish(token, events, expect_ok=True):
    """Publishes through sluicectl (gRPC); returns its output lines."""
    text = "\n".join(json.dumps(e) for e in events) + "\n"
    r = subprocess.run([SLUICECTL, "publish", "--gateway", GATEWAY, "--token", token, "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    if expect_ok and r.returncode != 0:
        raise AssertionError(f"publish failed: {r.stdout} {r.stderr}")
    return r.stdout.splitlines()


def http(path, token, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_for(what, check, timeout=20.0, every=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # a stale element or a page still rendering
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Explorer:
    def __init__(self):
        o = webdriver.ChromeOptions()
        o.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1600,1000", "--lang=en-US"):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
        self.shots = 0

    def quit(self):
        self.d.quit()

    def shot(self, name):
        self.shots += 1
        self.d.execute_script("window.scrollTo(0, 0)")
        path = os.path.join(ARTIFACTS, f"{self.shots:02d}-{name}.png")
        self.d.save_screenshot(path)
        print(f"  screenshot {path}")

    def q(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def qa(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def console_errors(self):
        return [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]

    def login(self, token, expect_app=True):
        self.d.get(URL + "/")
        wait_for("the sign-in form", lambda: self.q("#login").is_displayed() or self.q("#app").is_displayed())
        if self.q("#app").is_displayed():
            self.q("#logout").click()
        self.q("#token").send_keys(token)
        self.q("#login-form button[type=submit]").click()
        if expect_app:
            wait_for("the app", lambda: self.q("#app").is_displayed())

    def rows(self):
        return [(r.get_attribute("data-id"), r.get_attribute("data-type"), r.get_attribute("data-tenant"))
                for r in self.qa("#events tbody tr")]

    def select(self, css, values):
        s = Select(self.q(css))
        s.deselect_all()
        for v in values:
            s.select_by_value(v)

    def apply(self):
        self.q("#apply").click()


def step(name):
    print(f"explorer: {name}")


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    chain = str(uuid.uuid4())
    # acme: three refreshes (two of them and a failed profile share one correlation id);
    # globex: two refreshes alice must never see.
    acme = [refreshed("acme", f"acme.orders_{run}", chain), refreshed("acme", f"acme.customers_{run}"),
            refreshed("acme", f"acme.invoices_{run}", chain), failed("acme", f"revenue_{run}", correlation=chain)]
    globex = [refreshed("globex", f"globex.secret_{run}"), refreshed("globex", f"globex.ledger_{run}")]
    publish(TOKEN_A, acme)
    publish(TOKEN_B, globex)
    wait_for("the audit sink to store the events",
             lambda: len(http("/v1/events?limit=200", TOKEN_A)[1].get("events", [])) >= 4
             and len(http("/v1/events?limit=200", TOKEN_B)[1].get("events", [])) >= 2, timeout=60)

    x = Explorer()
    try:
        step("the files come from the gateway, with a strict Content-Security-Policy")
        with urllib.request.urlopen(URL + "/explorer/", timeout=10) as res:
            csp = res.headers.get("Content-Security-Policy", "")
            assert "script-src 'self'" in csp and "default-src 'none'" in csp, csp
        x.login(TOKEN_A)
        wait_for("acme's events", lambda: len(x.rows()) >= 4)
        rows = x.rows()
        assert {r[2] for r in rows} == {"acme"}, rows
        assert {r[0] for r in rows} >= {e["id"] for e in acme}, rows
        resources = x.d.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
        assert resources and all(r.startswith(URL) for r in resources), resources
        x.shot("events")

        step("filtering by type shows only that type")
        x.select("#f-types", ["metadata.profile.failed"])
        x.apply()
        wait_for("only profile.failed rows",
                 lambda: x.rows() and all(r[1] == "metadata.profile.failed" for r in x.rows()))
        assert [r[0] for r in x.rows()] == [acme[3]["id"]], x.rows()
        sev = x.q("#events tbody tr td.sev").text
        assert sev == "error", sev
        x.shot("filter-type")
        x.select("#f-types", ["data.refreshed"])
        x.apply()
        wait_for("only data.refreshed rows",
                 lambda: len(x.rows()) == 3 and all(r[1] == "data.refreshed" for r in x.rows()))

        step("live mode shows an event published now within 2 s")
        x.q("#live").click()
        wait_for("the feed to be live", lambda: x.q("#live-status").get_attribute("data-state") == "live")
        live = refreshed("acme", f"acme.live_{run}")
        publish(TOKEN_A, [live])
        acked = time.monotonic()
        wait_for("the live event", lambda: any(r[0] == live["id"] for r in x.rows()), timeout=2.0, every=0.05)
        seen = time.monotonic() - acked
        print(f"  live event shown {seen * 1000:.0f} ms after the publish was acknowledged")
        assert x.rows()[0][0] == live["id"], "a new event goes on top"
        x.shot("live")
        x.q("#live").click()  # back to the paged list

        step("an event opens to its envelope and its correlation chain")
        x.select("#f-types", [])
        x.apply()
        # The unfiltered list (it has the failed profile the data.refreshed list had not).
        wait_for("the unfiltered list", lambda: any(r[0] == acme[3]["id"] for r in x.rows()))

        def open_first():
            x.q(f'#events tbody tr[data-id="{acme[0]["id"]}"]').click()
            return True
        wait_for("a click on the chain's first event", open_first)
        wait_for("the detail panel", lambda: x.q("#detail").is_displayed())
        chain_ids = wait_for("the chain", lambda: [li.get_attribute("data-id") for li in x.qa("#chain li")])
        assert chain_ids == [acme[0]["id"], acme[2]["id"], acme[3]["id"]], chain_ids
        assert x.q("#chain li.current").get_attribute("data-id") == acme[0]["id"]
        envelope = json.loads(x.q("#detail-envelope").text)
        assert envelope["id"] == acme[0]["id"] and envelope["dataRefreshed"]["entityUrn"] == f"acme.orders_{run}"
        x.shot("detail")
        x.q('#chain li[data-type="metadata.profile.failed"]').click()
        wait_for("the chain's failed profile", lambda: x.q("#detail-title").text == "metadata.profile.failed")
        x.q("#detail-close").click()

        step("a saved view round-trips")
        x.select("#f-types", ["data.refreshed"])
        x.q("#view-name").send_keys(f"refreshes {run}")
        x.q("#view-desc").send_keys("every data.refreshed")
        x.q("#save-view-btn").click()
        item = f'#views li[data-name="refreshes {run}"]'
        wait_for("the saved view", lambda: x.qa(item))
        x.q("#reset").click()
        wait_for("the unfiltered list", lambda: any(r[1] != "data.refreshed" for r in x.rows()))
        x.q(f"{item} button.apply").click()
        wait_for("the view's filter", lambda: Select(x.q("#f-types")).all_selected_options
                 and [o.get_attribute("value") for o in Select(x.q("#f-types")).all_selected_options]
                 == ["data.refreshed"])
        wait_for("the view's events", lambda: len(x.rows()) == 4 and all(r[1] == "data.refreshed" for r in x.rows()))
        stats = wait_for("the view's use", lambda: "used 1×" in x.q(f"{item} .stats").text and x.q(f"{item} .stats").text)
        assert "0.0% errors" in stats, stats
        x.shot("saved-view")
        status, views = http("/v1/views", TOKEN_A)
        view = [v for v in views.get("views", []) if v["name"] == f"refreshes {run}"]
        assert status == 200 and len(view) == 1, views
        view = view[0]
        assert view["filter"].get("types") == ["data.refreshed"] and view["useCount"] == "1", view
        assert view["recent"]["events"] == "4" and abs(view["recent"]["eventsPerMinute"] - 4 / 15) < 1e-9, view
        assert http("/v1/views", TOKEN_B)[1].get("views", []) == [], "bob sees alice's private view"

        step("the health rail shows a source paused by its rate limit")
        out = publish(TOKEN_A, [failed("acme", f"limited_{run}_{i}", source="agent.profiler") for i in range(4)],
                      expect_ok=False)
        assert sum(1 for l in out if l.startswith("ok ")) == 2, out
        x.q("#health-refresh").click()
        paused = '#health-paused li[data-source="agent.profiler"][data-state="paused"]'
        wait_for("the paused source", lambda: x.qa(paused))
        assert "acme/agent.profiler paused until" in x.q(paused).text, x.q(paused).text
        lag = wait_for("the source's lag",
                       lambda: x.q('#health-sources tbody tr[data-source="agent.profiler"] td:last-child').text)
        assert lag.count(" ms") + lag.count(" s") == 3 and "–" not in lag, lag
        x.shot("health-paused")

        errors = x.console_errors()
        assert not errors, f"console errors: {errors}"

        step("tenant B's token sees none of tenant A's events")
        x.login(TOKEN_B)
        wait_for("globex's events", lambda: len(x.rows()) == 2)
        assert {r[2] for r in x.rows()} == {"globex"}, x.rows()
        assert {r[0] for r in x.rows()} == {e["id"] for e in globex}, x.rows()
        page = x.d.page_source
        assert "acme" not in page and run not in page.replace(f"secret_{run}", "").replace(f"ledger_{run}", ""), \
            "tenant A's data on tenant B's page"
        assert not x.qa('#health-sources tbody tr[data-tenant="acme"]'), "acme's sources in bob's rail"
        assert not x.qa(item), "alice's private view in bob's list"
        x.shot("tenant-b")
        status, body = http(f"/v1/events/{acme[0]['id']}", TOKEN_B)
        assert status == 404, (status, body)
        status, body = http("/v1/events?tenantIds=acme", TOKEN_B)
        assert status == 403, (status, body)
        assert not x.console_errors(), x.console_errors()

        step("a refused token goes back to the sign-in form with a message")
        x.login("not-a-token", expect_app=False)
        wait_for("the refusal", lambda: x.q("#login").is_displayed() and "refused" in x.q("#login-error").text)
        x.shot("refused")
    except Exception:
        x.shot("failure")
        raise
    finally:
        x.quit()
    print("explorer: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"explorer: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
