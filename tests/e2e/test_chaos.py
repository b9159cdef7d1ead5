"""Randomized fault campaign (issue 5): 60 seeded runs with random faults against in-process
boards on real PTYs and the flasher's real API. No run may end "verified" with wrong bytes on
the flash, and nothing may escape as an unexpected exception. Split in batches so the test
workers share the load. `bench/chaos.py` runs the longer campaign."""

import pytest

from flasher.bundle.builder import user_story
from emulator.host.campaign import run_campaign

pytestmark = pytest.mark.e2e
BATCH = 12


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("chaos") / "fw.zip"
    path.write_bytes(user_story().build())
    return path


@pytest.mark.parametrize("batch", range(5))
def test_fault_campaign_never_corrupts_silently(bundle, batch):
    campaign = run_campaign(bundle, range(1000 + batch * BATCH, 1000 + (batch + 1) * BATCH))
    counts = campaign.counts()
    bad = [r for r in campaign.results if r.outcome in ("corrupt", "crash", "unverified-ok")]
    assert not bad, [(r.seed, r.faults, r.outcome, r.detail) for r in bad]
    assert counts["verified"] + counts["clear"] == BATCH
    for r in campaign.results:
        if r.outcome == "clear":         # a clear error is one line naming what failed
            assert "\n" not in r.detail and len(r.detail) < 600
    # the faults really bit: most runs met at least one and the flasher still verified most
    assert counts["verified"] >= BATCH // 3
