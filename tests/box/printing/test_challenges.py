"""The box's store of the verifier's attestation challenges (challenges.sqlite): each taken once, oldest first,
never again however often a rewards report repeats it; the box's own random one, said so, when none is left."""

from box.printing import challenges


def test_each_challenge_is_taken_once_and_the_box_falls_back_to_its_own(tmp_path):
    store = challenges.ChallengeStore(challenges.challenges_file(str(tmp_path)))
    try:
        assert store.add(["aa" * 16, "bb" * 16, "not hex", "AA" * 16, "cc" * 8], now=1.0) == 2  # the rest ignored
        assert store.add(["aa" * 16, "bb" * 16], now=2.0) == 0  # the same report again adds nothing
        assert store.take(job=1, now=3.0) == (bytes.fromhex("aa" * 16), challenges.FROM_VERIFIER)
        assert store.add(["aa" * 16, "dd" * 16], now=4.0) == 1  # a used challenge is never taken again
        assert store.take(job=1, now=5.0) == (bytes.fromhex("bb" * 16), challenges.FROM_VERIFIER)
        assert store.take(job=2, now=6.0) == (bytes.fromhex("dd" * 16), challenges.FROM_VERIFIER)
        first, origin = store.take(job=2, now=7.0)
        second, _ = store.take(job=2, now=8.0)
        assert origin == challenges.FROM_BOX and len(first) == 16 and first != second
        assert store.unused() == 0
    finally:
        store.close()


def test_the_store_is_bounded_and_survives_a_restart(tmp_path):
    path = challenges.challenges_file(str(tmp_path))
    store = challenges.ChallengeStore(path)
    store.add(["%032x" % n for n in range(challenges.MAX_KEPT + 10)], now=1.0)
    assert store.unused() == challenges.MAX_KEPT
    store.close()
    store = challenges.ChallengeStore(path)
    try:
        assert store.unused() == challenges.MAX_KEPT
        assert store.take(job=1, now=2.0)[1] == challenges.FROM_VERIFIER
    finally:
        store.close()
