"""glancesync.plan.waves: rollout_waves and wave_soak_hours over the plans of a run."""
from __future__ import annotations

import datetime

from glancesync.config import TargetConfig
from glancesync.image import Provenance
from glancesync.plan import Status, Waves, hold_waves, make_plan
from glancesync.plan.validation import FAILED, MARK_VALIDATED, MARK_VALIDATION
from glancesync.selection import select_master

from tests.unit.plan.builders import MASTER_PROJECT, MASTER_REGION, NOW, PROJECT, m, r

WAVES = Waves((("master:A",), ("master:B", "other:C")), 0.0, MASTER_REGION)


def plans(*regions, masters=(m("a"), m("b", "c2"))):
    selection = select_master(list(masters), MASTER_PROJECT, MASTER_REGION)
    return {region: make_plan(region, selection, [], PROJECT, TargetConfig(name="t"), now=NOW)
            for region in regions}


def copy(name="a", when="2029-12-31T00:00:00Z", **marks):
    image = r(name, provenance=Provenance(f"m-{name}", MASTER_REGION, "md5:c1", when))
    image.marks = dict(marks)
    return image


def test_the_first_wave_never_waits_and_the_next_waits_for_a_copy():
    made = plans("master:A", "master:B", "other:C", "master:D")
    held = hold_waves(made, WAVES, {"master:A": [], "master:B": [], "other:C": []}, NOW)
    assert len(made["master:A"].operations) == 2
    for region in ("master:B", "other:C", "master:D"):  # D: not named, the last wave
        assert made[region].operations == []
        line = made[region].status_of("a")
        assert line.status is Status.INFO_WAVE_WAITING, region
    assert "master:A has no accepted copy yet" in made["master:B"].status_of("a").reason
    assert "master:B has no accepted copy yet" in made["master:D"].status_of("a").reason
    assert held == 6


def test_a_wave_goes_once_every_region_of_the_previous_one_holds_a_copy():
    made = plans("master:B", "master:D")
    hold_waves(made, WAVES, {"master:A": [copy("a")], "master:B": [copy("a")],
                             "other:C": []}, NOW)
    assert [op.name for op in made["master:B"].operations] == ["a"]  # b waits
    assert made["master:B"].status_of("b").status is Status.INFO_WAVE_WAITING
    assert made["master:D"].operations == []  # other:C has none yet
    assert "other:C has no accepted copy" in made["master:D"].status_of("a").reason


def test_refused_or_unfinished_validations_and_unlisted_regions_are_not_ready():
    made = plans("master:B")
    hold_waves(made, WAVES, {"master:A": [copy("a", **{MARK_VALIDATION: FAILED}),
                                          copy("b", **{MARK_VALIDATION: "pending"})]}, NOW)
    assert made["master:B"].operations == []
    made = plans("master:B")
    hold_waves(made, WAVES, {"master:A": None}, NOW)
    assert "master:A could not be listed" in made["master:B"].status_of("a").reason


def test_the_soak_time_counts_from_the_validation_else_the_copy():
    waves = Waves(WAVES.waves, 24.0, MASTER_REGION)
    made = plans("master:B")
    validated = copy("a", when="2029-01-01T00:00:00Z",
                     **{MARK_VALIDATED: "2030-01-01T06:00:00Z"})  # 6 h before NOW
    old = copy("b", when="2029-12-30T00:00:00Z")  # 60 h before NOW
    hold_waves(made, waves, {"master:A": [validated, old]}, NOW)
    assert [op.name for op in made["master:B"].operations] == ["b"]
    assert "18.0 h of wave_soak_hours = 24 left" in made["master:B"].status_of("a").reason


def test_a_record_in_the_future_is_not_believed():
    # This host's clock was set back (or another host's runs ahead): never a
    # shorter soak, and the reason says to check the clocks.
    made = plans("master:B")
    ahead = copy("a", when=(NOW + datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    hold_waves(made, Waves(WAVES.waves, 0.0, MASTER_REGION), {"master:A": [ahead]}, NOW)
    reason = made["master:B"].status_of("a").reason
    assert "in the future of this host's clock" in reason and "check the clocks" in reason
    # A few minutes ahead is usual skew: not held for it.
    made = plans("master:B")
    near = copy("a", when=(NOW + datetime.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    hold_waves(made, WAVES, {"master:A": [near]}, NOW)
    assert [op.name for op in made["master:B"].operations] == ["a"]


def test_only_new_copies_wait():
    selection = select_master([m("a", type="new")], MASTER_PROJECT, MASTER_REGION)
    stale = r("a")
    stale.properties = {"type": "old"}
    made = {"master:B": make_plan("master:B", selection, [stale], PROJECT,
                                  TargetConfig(name="t", metadata_set=frozenset({"type"})),
                                  now=NOW)}
    assert made["master:B"].operations
    assert hold_waves(made, WAVES, {"master:A": []}, NOW) == 0
    assert made["master:B"].operations  # a metadata update goes through


def test_copies_of_another_master_region_or_image_do_not_count():
    made = plans("master:B")
    foreign = r("a", provenance=Provenance("m-a", "ElsewhereMaster", "md5:c1",
                                           "2029-12-31T00:00:00Z"))
    other = r("a", provenance=Provenance("m-zzz", MASTER_REGION, "md5:c1",
                                         "2029-12-31T00:00:00Z"))
    hold_waves(made, WAVES, {"master:A": [foreign, other]}, NOW)
    assert made["master:B"].status_of("a").status is Status.INFO_WAVE_WAITING


def test_accepted_since_is_the_earliest_time_and_true_only_without_any():
    from glancesync.plan.waves import accepted_since
    master = m("a")
    untimed, early, late = copy(when=None), copy(when="2029-01-01T00:00:00Z"), copy()
    assert accepted_since([untimed], master, MASTER_REGION) is True
    assert accepted_since([untimed, untimed], master, MASTER_REGION) is True
    expected = datetime.datetime(2029, 1, 1, tzinfo=datetime.timezone.utc)
    for images in ([early, untimed], [untimed, early], [early, late], [late, early],
                   [untimed, late, early]):
        assert accepted_since(images, master, MASTER_REGION) == expected, images
    assert accepted_since([], master, MASTER_REGION) is None


def _reason(copies, soak=0.0, previous=("master:A", "other:C")):
    waves = Waves((previous, ("master:B",)), soak, MASTER_REGION)
    made = plans("master:B", masters=(m("a"),))
    hold_waves(made, waves, copies, NOW)
    line = made["master:B"].status_of("a")
    return None if line.status is not Status.INFO_WAVE_WAITING else line.reason


def test_every_region_of_the_previous_wave_is_named_in_the_reason():
    assert _reason({"master:A": None, "other:C": []}) == (
        "missing in the region; stream; waits for its wave: master:A could not be listed;"
        " other:C has no accepted copy yet")


def test_a_copy_without_a_time_is_enough_only_without_a_soak_time():
    assert _reason({"master:A": [copy(when=None)]}, previous=("master:A",)) is None
    assert _reason({"master:A": [copy(when=None)]}, soak=1, previous=("master:A",)) == (
        "missing in the region; stream; waits for its wave: master:A's copy records no time"
        " to count wave_soak_hours from")


def test_the_clock_skew_allowed_is_five_minutes_and_the_hours_left_are_exact():
    at_skew = (NOW + datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _reason({"master:A": [copy(when=at_skew)]}, previous=("master:A",)) is None
    beyond = (NOW + datetime.timedelta(minutes=5, seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _reason({"master:A": [copy(when=beyond)]}, previous=("master:A",)) == (
        "missing in the region; stream; waits for its wave: master:A's copy was accepted at"
        " 2030-01-01T12:05:01Z, in the future of this host's clock (2030-01-01T12:00:00Z):"
        " check the clocks")
    now = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _reason({"master:A": [copy(when=now)]}, soak=1000, previous=("master:A",)) == (
        "missing in the region; stream; waits for its wave: master:A since"
        " 2030-01-01T12:00:00Z, 1000.0 h of wave_soak_hours = 1000 left")


def test_a_time_recorded_with_an_offset_is_shown_in_utc():
    # 13:10 at +01:00 is 12:10 UTC, ten minutes ahead of this host: the reason
    # must not print 13:10 with a Z.
    ahead = copy(when="2030-01-01T13:10:00+01:00")
    assert _reason({"master:A": [ahead]}, previous=("master:A",)) == (
        "missing in the region; stream; waits for its wave: master:A's copy was accepted at"
        " 2030-01-01T12:10:00Z, in the future of this host's clock (2030-01-01T12:00:00Z):"
        " check the clocks")
