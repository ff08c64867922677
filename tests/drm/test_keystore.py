import pickle
import threading

import pytest

from drm import (
    ContentKey,
    DrmError,
    DrmSettings,
    KeyStore,
    KeyUnwrapFailed,
    UnknownKey,
    check_id,
)
from tests.drm.fixtures import MASTER_1, MASTER_2, settings_for


@pytest.fixture
def store(db):
    return KeyStore(db, settings_for())


def test_create_and_get_round_trip(store, db):
    created = store.create_keys("s1", "e1", 3)
    assert [k.period for k in created] == [0, 1, 2]
    assert len({k.key for k in created}) == 3
    for key in created:
        assert len(key.key) == 16
        assert key.key_id.startswith("k_") and len(key.key_id) == 24
        check_id("key_id", key.key_id)
        assert (key.series_id, key.episode_id) == ("s1", "e1")
    # A fresh store has an empty cache, so this really unwraps from the table.
    fresh = KeyStore(db, settings_for())
    assert [fresh.get(k.key_id) for k in created] == created


def test_key_bytes_stay_out_of_repr(store):
    (key,) = store.create_keys("s1", "e1", 1)
    assert key.key.hex() not in repr(key)
    assert repr(key.key) not in repr(key)
    settings = settings_for()
    assert repr(MASTER_1) not in repr(settings) and "master_key=" not in repr(settings)


def test_unknown_and_malformed_key_ids(store):
    for key_id in ["k_nope", "../etc/passwd", "", "x" * 500]:
        with pytest.raises(UnknownKey) as caught:
            store.get(key_id)
        assert caught.value.code == "unknown_key"


def test_rows_are_inserted_in_one_transaction(store, db):
    store.create_keys("s1", "e1", 50)
    (count,) = db.query("SELECT count(*) FROM content_keys")[0]
    assert count == 50


def test_invalid_arguments(store):
    with pytest.raises(DrmError):
        store.create_keys("../s", "e1", 1)
    with pytest.raises(ValueError):
        store.create_keys("s1", "e1", 0)
    with pytest.raises(DrmError):
        store.delete_episode_keys("s1", "a/b")


def test_swapped_wrapped_blobs_fail_to_unwrap(store, db):
    first, second = store.create_keys("s1", "e1", 2)
    with db.transaction() as conn:
        blobs = {
            row["key_id"]: row["wrapped"]
            for row in conn.execute("SELECT key_id, wrapped FROM content_keys")
        }
        conn.execute("UPDATE content_keys SET wrapped = ? WHERE key_id = ?",
                     (blobs[second.key_id], first.key_id))
        conn.execute("UPDATE content_keys SET wrapped = ? WHERE key_id = ?",
                     (blobs[first.key_id], second.key_id))
    fresh = KeyStore(db, settings_for())
    for key in (first, second):
        with pytest.raises(KeyUnwrapFailed):
            fresh.get(key.key_id)


def test_edited_period_or_series_fails_to_unwrap(store, db):
    first, second = store.create_keys("s1", "e1", 2)
    with db.transaction() as conn:
        conn.execute("UPDATE content_keys SET period = 7 WHERE key_id = ?", (first.key_id,))
        conn.execute("UPDATE content_keys SET series_id = 's2' WHERE key_id = ?", (second.key_id,))
    fresh = KeyStore(db, settings_for())
    for key in (first, second):
        with pytest.raises(KeyUnwrapFailed):
            fresh.get(key.key_id)


def test_truncated_blob_fails_to_unwrap(store, db):
    (key,) = store.create_keys("s1", "e1", 1)
    with db.transaction() as conn:
        conn.execute("UPDATE content_keys SET wrapped = ? WHERE key_id = ?", (b"\x00", key.key_id))
    with pytest.raises(KeyUnwrapFailed):
        KeyStore(db, settings_for()).get(key.key_id)


def test_wrong_master_key_fails_to_unwrap(store, db):
    (key,) = store.create_keys("s1", "e1", 1)
    impostor = KeyStore(db, settings_for(master_key=MASTER_2))  # same id "mk1", other bytes
    with pytest.raises(KeyUnwrapFailed) as caught:
        impostor.get(key.key_id)
    assert caught.value.code == "key_unwrap_failed"


def test_unconfigured_master_key_id_fails_to_unwrap(store, db):
    (key,) = store.create_keys("s1", "e1", 1)
    rotated_without_old = KeyStore(db, settings_for(master_key=MASTER_2, master_key_id="mk2"))
    with pytest.raises(KeyUnwrapFailed, match="mk1"):
        rotated_without_old.get(key.key_id)


def test_rewrap_all_then_drop_the_old_master_key(store, db):
    created = store.create_keys("s1", "e1", 3) + store.create_keys("s2", "e9", 2)
    during = settings_for(
        master_key=MASTER_2, master_key_id="mk2", old_master_keys={"mk1": MASTER_1}
    )
    rotating = KeyStore(db, during)
    assert [rotating.get(k.key_id) for k in created] == created  # old rows readable mid-rotation
    assert rotating.rewrap_all() == 5
    assert rotating.rewrap_all() == 0
    assert {row["master_key_id"] for row in db.query("SELECT master_key_id FROM content_keys")} == {
        "mk2"
    }
    after = KeyStore(db, settings_for(master_key=MASTER_2, master_key_id="mk2"))
    assert [after.get(k.key_id) for k in created] == created
    with pytest.raises(KeyUnwrapFailed):
        KeyStore(db, settings_for()).get(created[0].key_id)


def test_rewrap_all_is_all_or_nothing(store, db):
    good, bad = store.create_keys("s1", "e1", 2)
    with db.transaction() as conn:
        conn.execute("UPDATE content_keys SET period = 9 WHERE key_id = ?", (bad.key_id,))
    during = settings_for(
        master_key=MASTER_2, master_key_id="mk2", old_master_keys={"mk1": MASTER_1}
    )
    with pytest.raises(KeyUnwrapFailed):
        KeyStore(db, during).rewrap_all()
    rows = db.query("SELECT master_key_id FROM content_keys")
    assert {row["master_key_id"] for row in rows} == {"mk1"}
    assert KeyStore(db, settings_for()).get(good.key_id) == good


def test_keys_persist_across_reopen(open_db):
    with open_db() as first:
        created = KeyStore(first, settings_for()).create_keys("s1", "e1", 4)
    with open_db() as second:
        reopened = KeyStore(second, settings_for())
        assert [reopened.get(k.key_id) for k in created] == created


def test_delete_episode_keys_keeps_the_listed_ones(store):
    kept, dropped_1, dropped_2 = store.create_keys("s1", "e1", 3)
    (other_episode,) = store.create_keys("s1", "e2", 1)
    assert store.delete_episode_keys("s1", "e1", keep_key_ids=[kept.key_id]) == 2
    assert store.get(kept.key_id) == kept
    assert store.get(other_episode.key_id) == other_episode
    for key in (dropped_1, dropped_2):
        with pytest.raises(UnknownKey):
            store.get(key.key_id)  # evicted from the cache too
    assert store.delete_episode_keys("s1", "e1") == 1
    assert store.delete_episode_keys("s1", "e1") == 0


def test_many_threads_share_one_database(store, db):
    created = store.create_keys("s1", "e1", 8)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            reader = KeyStore(db, settings_for())
            for key in created:
                assert reader.get(key.key_id) == key
            reader.create_keys("s2", f"e{index}", 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (count,) = db.query("SELECT count(*) FROM content_keys")[0]
    assert count == 8 + 8 * 3


@pytest.mark.parametrize(
    "overrides",
    [
        {"master_key": b"short"},
        {"master_key": "x" * 32},
        {"old_master_keys": {"mk0": b"short"}},
        {"old_master_keys": {"mk1": MASTER_2}},
        {"token_signing_keys": {"a": b"too short"}},
        {"token_signing_kid": "missing"},
        {"token_ttl_s": 0},
    ],
)
def test_bad_settings_are_refused_without_echoing_secrets(overrides):
    with pytest.raises(ValueError) as caught:
        settings_for(**overrides)
    assert "short" not in str(caught.value) and "xxxx" not in str(caught.value)


def test_settings_copy_their_mappings_and_pickle():
    signing = {"a": b"a" * 32}
    settings = settings_for(token_signing_keys=signing)
    signing["evil"] = b"e"
    assert "evil" not in settings.token_signing_keys
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert isinstance(settings, DrmSettings)


def test_keystore_errors_pickle():
    for error in (UnknownKey("k_x"), KeyUnwrapFailed("k_x did not unwrap")):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.__dict__) == (type(error), str(error), error.__dict__)


def test_content_key_is_frozen():
    key = ContentKey(key_id="k_1", series_id="s", episode_id="e", period=0, key=b"\0" * 16)
    with pytest.raises(AttributeError):
        key.period = 1  # type: ignore[misc]
