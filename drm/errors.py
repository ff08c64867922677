"""Errors raised by drm/: one root, a stable ``code`` on each, messages that name the value."""

from __future__ import annotations

# Spelled here (not in ids.py) because InvalidId's message quotes it and ids.py imports this module.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DrmError(Exception):
    code = "drm_error"


class TokenInvalid(DrmError):
    """Missing, malformed, badly signed, unknown-kid or wrong-audience playback token."""

    code = "token_invalid"


class TokenExpired(TokenInvalid):
    code = "token_expired"


class NotEntitled(DrmError):
    code = "not_entitled"

    def __init__(self, viewer_id: str, series_id: str) -> None:
        super().__init__(f"viewer {viewer_id} has not bought series {series_id}")
        self.viewer_id, self.series_id = viewer_id, series_id

    def __reduce__(self):  # process pools pickle errors; extra __init__ args need this
        return type(self), (self.viewer_id, self.series_id)


class UnknownKey(DrmError):
    code = "unknown_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"no content key {_shown(key_id)}: it was never created, "
            "or was deleted with its episode"
        )
        self.key_id = key_id

    def __reduce__(self):
        return type(self), (self.key_id,)


class WrongSeries(DrmError):
    """A valid playback token presented for another series' key."""

    code = "token_wrong_series"

    def __init__(self, token_series_id: str, wanted_series_id: str) -> None:
        super().__init__(
            f"playback token is for series {token_series_id}, not {wanted_series_id}; "
            f"request a token for series {wanted_series_id}"
        )
        self.token_series_id, self.wanted_series_id = token_series_id, wanted_series_id

    def __reduce__(self):
        return type(self), (self.token_series_id, self.wanted_series_id)


class KeyUnwrapFailed(DrmError):
    """A stored content key did not decrypt: wrong or missing master key, or a tampered row."""

    code = "key_unwrap_failed"


class InvalidId(DrmError):
    code = "invalid_id"

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"{kind} {_shown(value)} is not a valid id; ids must match {ID_PATTERN}")
        self.kind, self.value = kind, value

    def __reduce__(self):
        return type(self), (self.kind, self.value)


class InvalidField(DrmError):
    """A field of a request or record breaks a rule: out of range, wrong type, malformed."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.reason = field, message

    def __reduce__(self):
        return type(self), (self.field, self.reason)


class UnknownSeries(DrmError):
    code = "unknown_series"

    def __init__(self, series_id: str) -> None:
        super().__init__(f"there is no series {_shown(series_id)}; create it first")
        self.series_id = series_id

    def __reduce__(self):
        return type(self), (self.series_id,)


class UnknownEpisode(DrmError):
    code = "unknown_episode"

    def __init__(self, series_id: str, episode_id: str) -> None:
        super().__init__(f"series {series_id} has no episode {_shown(episode_id)}")
        self.series_id, self.episode_id = series_id, episode_id

    def __reduce__(self):
        return type(self), (self.series_id, self.episode_id)


class SeriesExists(DrmError):
    code = "series_exists"

    def __init__(self, series_id: str) -> None:
        super().__init__(f"series {series_id} already exists; choose another id or update it")
        self.series_id = series_id

    def __reduce__(self):
        return type(self), (self.series_id,)


class EpisodeLimitReached(DrmError):
    code = "episode_limit_reached"

    def __init__(self, series_id: str, limit: int) -> None:
        super().__init__(
            f"series {series_id} already holds {limit} episodes, the most a series may hold; "
            "start a new series"
        )
        self.series_id, self.limit = series_id, limit

    def __reduce__(self):
        return type(self), (self.series_id, self.limit)


class NotSeriesOwner(DrmError):
    code = "not_series_owner"

    def __init__(self, creator_id: str, series_id: str) -> None:
        super().__init__(f"series {series_id} does not belong to creator {creator_id}")
        self.creator_id, self.series_id = creator_id, series_id

    def __reduce__(self):
        return type(self), (self.creator_id, self.series_id)


class CreatorNotEligible(DrmError):
    code = "creator_not_eligible"

    def __init__(self, creator_id: str, status: str) -> None:
        super().__init__(
            f"creator {creator_id} may not publish series (eligibility: {status}); "
            "meet every eligibility rule or have an application approved"
        )
        self.creator_id, self.status = creator_id, status

    def __reduce__(self):
        return type(self), (self.creator_id, self.status)


class ApplicationRefused(DrmError):
    """A manual-approval application that the rules do not allow, or a decision on no application."""

    code = "application_refused"


class WebhookRejected(DrmError):
    """A payment webhook whose signature, timestamp or body cannot be trusted."""

    code = "webhook_rejected"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # webhook_signature_invalid, webhook_timestamp_outside_window, ...

    def __reduce__(self):
        return type(self), (self.code, str(self))


class DatabaseUnavailable(DrmError):
    """The database cannot be reached or refused the work for now (PostgreSQL down, restarting, every
    pooled connection busy). The work was not done, except when the connection was lost during COMMIT,
    where its outcome is unknown (drm's writes are idempotent, so a retry is safe). A key server answers 503."""

    code = "database_unavailable"


class SchemaTooNew(DrmError):
    code = "schema_too_new"

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"drm database schema version {found} is newer than this code's {known}; "
            "upgrade the service before opening it")
        self.found, self.known = found, known

    def __reduce__(self):
        return type(self), (self.found, self.known)


class SchemaNotMigrated(DrmError):
    """A shared database at an older schema: services refuse to migrate it themselves."""

    code = "schema_not_migrated"

    def __init__(self, where: str, found: int, wanted: int) -> None:
        super().__init__(
            f"the database {where} is at schema version {found}, this code needs {wanted}; "
            "run `series db migrate` once, then start the services")
        self.where, self.found, self.wanted = where, found, wanted

    def __reduce__(self):
        return type(self), (self.where, self.found, self.wanted)


class EpisodeUnpublished(DrmError):
    """The creator unpublished the episode: its keys go only to the operator's test viewers."""

    code = "episode_unpublished"

    def __init__(self, series_id: str, episode_id: str) -> None:
        super().__init__(f"episode {episode_id} of series {series_id} is unpublished by its creator; "
                         "it cannot be played until it is published again")
        self.series_id, self.episode_id = series_id, episode_id

    def __reduce__(self):
        return type(self), (self.series_id, self.episode_id)


class EpisodeDeleted(DrmError):
    """The episode was deleted; its files and keys are removed after the grace period, then its id is free."""

    code = "episode_deleted"

    def __init__(self, series_id: str, episode_id: str) -> None:
        super().__init__(f"episode {episode_id} of series {series_id} was deleted; its id can be used again once "
                         "`series gc` has removed its files (after SERIES_GC_GRACE_S), or choose another id")
        self.series_id, self.episode_id = series_id, episode_id

    def __reduce__(self):
        return type(self), (self.series_id, self.episode_id)


class EpisodeExists(DrmError):
    code = "episode_exists"

    def __init__(self, series_id: str, episode_id: str) -> None:
        super().__init__(f"series {series_id} already has an episode {episode_id}; choose another id or update it")
        self.series_id, self.episode_id = series_id, episode_id

    def __reduce__(self):
        return type(self), (self.series_id, self.episode_id)


class SeriesStateConflict(DrmError):
    """A change the series' status does not allow: publishing an archived series, deleting one with
    buyers, adding episodes to an archived one. The message says what to do instead."""

    code = "series_state_conflict"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code     # series_archived, series_has_buyers

    def __reduce__(self):
        return type(self), (self.code, str(self))


class InvalidCursor(DrmError):
    """A page cursor that is malformed, from another listing, or outdated by a reorder."""

    code = "invalid_cursor"


class IdempotencyKeyReused(DrmError):
    """The Idempotency-Key was used before with a different request (IETF draft: 422)."""

    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key[:80]!r} was already used for a different request; "
                         "use a new key for a new request")
        self.key = key

    def __reduce__(self):
        return type(self), (self.key,)


class IdempotencyKeyInFlight(DrmError):
    """A request with this Idempotency-Key is still being processed (IETF draft: 409)."""

    code = "idempotency_key_in_flight"

    def __init__(self, key: str) -> None:
        super().__init__(f"a request with Idempotency-Key {key[:80]!r} is still being processed; "
                         "retry in a moment to get its answer")
        self.key = key

    def __reduce__(self):
        return type(self), (self.key,)


class TokenRevoked(TokenInvalid):
    """A token issued before its account's tokens were revoked (`series tokens revoke`)."""

    code = "token_revoked"


class SessionLimitReached(DrmError):
    """A new playback session beyond the viewer's limit of concurrent sessions: refused, the others play on."""

    code = "session_limit_reached"

    def __init__(self, viewer_id: str, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"viewer {viewer_id} is already watching in {limit} other sessions, the most at once; stop playback "
            f"on one of them, or retry in {retry_after_s} s, when the least recently active one may have lapsed")
        self.viewer_id, self.limit, self.retry_after_s = viewer_id, limit, retry_after_s

    def __reduce__(self):
        return type(self), (self.viewer_id, self.limit, self.retry_after_s)
