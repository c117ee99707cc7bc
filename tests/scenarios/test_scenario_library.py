"""Every shipped scenario, loaded with --scenario into a real server, through checkout-sdk 4.8.1.

Each test shows the failure the scenario is for, then that the next request behaves normally.
Some run ``python run.py`` itself (ServerProcess); the rest an in-process SandboxServer built
with the same ``scenario_files``.
"""
import pytest
import requests
from checkout_sdk.exception import CheckoutApiException, CheckoutException

from scenario_helpers import OTHER_KEY, card, cit, journal_rules, library, mit, payment, sdk
from simulator.testing import SandboxServer, ServerProcess, WebhookReceiver

# no clock in the config: the scenario's clock.start is what the server runs on
NO_CLOCK = {"webhooks": "manual"}


def rules_of(url, path="/checkout/payments", method="POST"):
    return [rules for (_, p, _, rules) in journal_rules(url, method) if p == path]


@pytest.fixture
def process():
    started = []

    def start(*args):
        proc = ServerProcess(*args).wait_ready()
        started.append(proc)
        return proc
    yield start
    for proc in started:
        proc.stop()


def test_second_mit_is_declined_for_insufficient_funds():
    with SandboxServer(NO_CLOCK, scenario_files=[library("renewal-insufficient-funds.yaml")]) as srv:
        api = sdk(srv.url)
        first = cit(api)
        assert first.http_metadata.status_code == 201 and first.approved is True
        assert first.processed_on.startswith("2026-01-01T00:00:00")   # the scenario's clock.start
        src = first.source.id

        renewal1 = mit(api, src, first.id)
        assert renewal1.approved is True and renewal1.response_code == "10000"
        srv.advance("P30D")
        renewal2 = mit(api, src, renewal1.id)
        assert renewal2.http_metadata.status_code == 201
        assert renewal2.approved is False and renewal2.status == "Declined"
        assert renewal2.response_code == "20051"
        assert api.payments.get_payment_details(renewal2.id).status == "Declined"

        srv.advance("P1D")
        retry = mit(api, src, renewal1.id)
        assert retry.approved is True and retry.response_code == "10000"
        assert rules_of(srv.url) == [[], [], ["second-mit-declined"], []]


def test_first_cit_is_soft_declined_20154_and_upgraded_to_3ds(process):
    srv = process("--scenario", library("sca-soft-decline-3ds.yaml"), "--webhooks", "manual")
    api = sdk(srv.url)
    first = cit(api)
    assert first.http_metadata.status_code == 202 and first.status == "Pending"
    assert getattr(first, "3ds").upgrade_reason == "sca_retry"
    assert first._links.redirect.href.startswith(srv.url)
    assert api.payments.get_payment_details(first.id).status == "Pending"

    done = requests.post(f"{srv.url}/_sandbox/hosted/checkout/{first.id}", json={"three_ds": "pass"}, timeout=10)
    assert done.status_code == 200
    details = api.payments.get_payment_details(first.id)
    assert details.approved is True and details.status in ("Authorized", "Captured")

    second = cit(api, source=card("5436031030606378"))
    assert second.http_metadata.status_code == 201 and second.approved is True
    assert rules_of(srv.url) == [["first-cit-needs-3ds"], []]

    # opting out of the upgrade shows the plain soft decline (another tenant: its own first CIT)
    other = sdk(srv.url, OTHER_KEY)
    declined = cit(other, three_ds={"allow_upgrade": False})
    assert declined.http_metadata.status_code == 201
    assert declined.approved is False and declined.response_code == "20154"


def test_stored_card_fails_as_expired_after_400_days():
    with SandboxServer(NO_CLOCK, scenario_files=[library("card-expires-after-400-days.yaml")]) as srv:
        api = sdk(srv.url)
        first = cit(api, source=card(month=12, year=2026))      # expires within 400 days
        assert first.approved is True
        src = first.source.id
        before = mit(api, src, first.id)
        assert before.approved is True                           # the rule waits for the clock

        assert srv.advance("P400D")["now"].startswith("2027-02-05")
        after = mit(api, src, first.id)
        assert after.http_metadata.status_code == 201
        assert after.approved is False and after.response_code == "20054"

        fresh = cit(api, source=card(month=11, year=2030))      # a new card works as usual
        assert fresh.approved is True
        renewal = mit(api, fresh.source.id, fresh.id)
        assert renewal.approved is True
        assert rules_of(srv.url) == [[], [], ["stored-card-expired"], [], []]

        # the rule marks the stored card expired whatever its printed expiry
        other = sdk(srv.url, OTHER_KEY)
        far = cit(other, source=card(month=1, year=2031))
        expired = mit(other, far.source.id, far.id)
        assert expired.approved is False and expired.response_code == "20054"


@pytest.mark.parametrize("stop", ["kill", "terminate"])
def test_after_counts_from_the_first_load_across_a_restart_on_a_state_file(process, tmp_path, stop):
    """The scenario passed again with --scenario after a restart on the same state file: its P400D
    counts from 2026-01-01, when it was first loaded, not from the restart."""
    args = ("--state", str(tmp_path / "state.db"), "--webhooks", "manual",
            "--scenario", library("card-expires-after-400-days.yaml"))
    srv = process(*args)
    api = sdk(srv.url)
    first = cit(api, source=card(month=12, year=2030))
    assert requests.post(srv.url + "/_sandbox/clock", json={"advance": "P400D"}, timeout=10).status_code == 200
    getattr(srv.proc, stop)()
    srv.stop()
    again = process(*args)
    assert requests.get(again.url + "/_sandbox/clock", timeout=10).json()["now"].startswith("2027-02-05")
    after = mit(sdk(again.url), first.source.id, first.id)
    assert after.approved is False and after.response_code == "20054"
    assert rules_of(again.url) == [["stored-card-expired"]]


def test_webhook_receiver_down_for_three_attempts():
    receiver = WebhookReceiver().start()
    config = {"webhooks": "manual",
              "providers": {"checkout": {"webhook_url": receiver.url + "/cko", "webhook_signing_key": "whsk"}}}
    try:
        with SandboxServer(config, scenario_files=[library("webhook-receiver-down.yaml")]) as srv:
            api = sdk(srv.url)
            paid = cit(api)
            assert paid.approved is True
            srv.flush()
            deliveries = srv.webhooks()
            assert deliveries and receiver.requests == []
            assert all(d["rules"] == ["receiver-down-3-attempts"] for d in deliveries)

            srv.advance("PT5M")
            srv.advance("PT10M")
            assert receiver.requests == []
            srv.advance("PT15M")                                 # 4th attempt, 30 min after the payment
            receiver.wait_for(len(deliveries))
            for d in srv.webhooks():
                assert [a["status"] for a in d["attempts"]] == [503, 503, 503, 200]
                assert d["status"] == "delivered"
            assert {body["data"]["id"] for body in receiver.json()} == {paid.id}

            # the next payment's events arrive on the first attempt
            received = len(receiver.requests)
            again = cit(api, source=card("5436031030606378"))
            srv.flush()
            fresh = [d for d in srv.webhooks() if d["rules"] == []]
            assert fresh and all([a["status"] for a in d["attempts"]] == [200] for d in fresh)
            receiver.wait_for(received + len(fresh))
            assert again.id in {body["data"]["id"] for body in receiver.json()}
    finally:
        receiver.stop()


def flaky_run(process, *args, requests_count=60):
    """Outcomes of a fixed sequence of SDK calls against a fresh `python run.py` process."""
    srv = process(*args, "--webhooks", "manual")
    api = sdk(srv.url)
    outcomes = []
    for i in range(requests_count):
        try:
            resp = api.payments.request_payment(payment(card(), amount=100 + i))
            outcomes.append((resp.http_metadata.status_code, resp.id))
        except CheckoutApiException as exc:
            outcomes.append((exc.http_metadata.status_code, exc.error_type))
    srv.stop()
    return outcomes


def test_flaky_provider_repeats_exactly_with_the_same_seed(process, tmp_path):
    path = library("flaky-provider.yaml")
    first = flaky_run(process, "--scenario", path)
    second = flaky_run(process, "--scenario", path)
    assert first == second

    failures = [i for i, (status, _) in enumerate(first) if status == 503]
    assert 1 <= len(failures) <= 15                                # about one in ten
    assert all(first[i][1] == "service_unavailable" for i in failures)
    assert any(i + 1 < len(first) and first[i + 1][0] == 201 for i in failures)   # next one is normal

    text = open(path).read()
    other_seed = tmp_path / "flaky-43.yaml"
    other_seed.write_text(text.replace("seed: 42", "seed: 43"))
    third = flaky_run(process, "--scenario", str(other_seed))
    assert [s for s, _ in third] != [s for s, _ in first]

    # without a seed in the document, --seed decides: the same seed gives the same run
    no_seed = tmp_path / "flaky-unseeded.yaml"
    no_seed.write_text(text.replace("seed: 42\n", ""))
    assert flaky_run(process, "--scenario", str(no_seed), "--seed", "42") == first


def test_slow_provider_outlasts_a_client_timeout_and_the_retry_is_normal(process):
    srv = process("--scenario", library("slow-provider.yaml"), "--webhooks", "manual")
    api = sdk(srv.url, timeout=1.0)
    req = payment(card())
    with pytest.raises(CheckoutException) as caught:
        api.payments.request_payment(req, idempotency_key="order-1-attempt")
    assert isinstance(caught.value.__cause__, requests.Timeout)

    retry = api.payments.request_payment(req, idempotency_key="order-1-attempt")
    assert retry.http_metadata.status_code == 201 and retry.approved is True


def test_connection_dropped_on_capture_then_retry_captures(process):
    srv = process("--scenario", library("capture-connection-drop.yaml"), "--webhooks", "manual")
    api = sdk(srv.url)
    auth = cit(api, capture=False)
    assert auth.status == "Authorized"
    with pytest.raises(CheckoutException) as caught:
        api.payments.capture_payment(auth.id)
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert api.payments.get_payment_details(auth.id).status == "Authorized"   # not processed

    captured = api.payments.capture_payment(auth.id)
    assert captured.http_metadata.status_code == 202
    assert api.payments.get_payment_details(auth.id).status == "Captured"
    path = f"/checkout/payments/{auth.id}/captures"
    assert rules_of(srv.url, path) == [["capture-dropped"], []]


def test_capture_response_lost_and_idempotent_retry_replays_it():
    with SandboxServer(NO_CLOCK, scenario_files=[library("capture-response-lost.yaml")]) as srv:
        api = sdk(srv.url)
        auth = cit(api, capture=False)
        with pytest.raises(CheckoutException) as caught:
            api.payments.capture_payment(auth.id, idempotency_key="capture-1")
        assert isinstance(caught.value.__cause__, requests.ConnectionError)
        assert api.payments.get_payment_details(auth.id).status == "Captured"   # it was processed

        replay = api.payments.capture_payment(auth.id, idempotency_key="capture-1")
        assert replay.http_metadata.status_code == 202
        lost = [e for e in srv.journal() if e["rules"] == ["capture-response-dropped"]]
        assert len(lost) == 1 and lost[0]["response"]["action_id"] == replay.action_id
        captures = [a for a in api.payments.get_payment_actions(auth.id).items if a.type == "Capture"]
        assert len(captures) == 1
