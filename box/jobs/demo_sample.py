"""The demo's sample job: queued once per data directory, held until the owner first reaches the dashboard, so
that the owner sees it start and its progress climb (rather than a print that ran during setup)."""

from box.jobs import job_states

SAMPLE_SETTING = "demo.sample_job"  # the sample's job number, kept once it was queued
START_SETTING = "demo.start_on_dashboard"  # the sample's number while it waits for the first dashboard visit


def queued_sample(store):
    """The number of the sample queued by an earlier demo run in this data directory, or None."""
    number = store.get_setting(SAMPLE_SETTING)
    if not isinstance(number, int):
        return None
    return number if any(True for _ in store.db["jobs"].rows_where("id = ?", [number])) else None


def remember(store, number: int) -> None:
    """Note the sample (queued `held`): no later run queues it again, and the first dashboard visit starts it."""
    store.set_setting(SAMPLE_SETTING, number)
    store.set_setting(START_SETTING, number)


def take_waiting(store):
    """The sample's number when it still waits for the owner's first dashboard visit (asked once), or None."""
    number = store.get_setting(START_SETTING)
    if number is None:
        return None
    store.set_setting(START_SETTING, None)
    rows = list(store.db["jobs"].rows_where("id = ? AND state = ?", [number, job_states.HELD]))
    return number if rows else None
