"""Who may sell series: creator profile facts in, a verdict listing every unmet rule out.

The rules are the product's own (its help pages): at least 18 years old (19 in South Korea), an
account older than 30 days, a public personal or business account, at least 3 public posts and
1,000 views in the last 30 days, at least 10,000 followers, original content, good standing. A
creator short only of followers may apply with a link to premium content sold elsewhere; an
operator approves or rejects the application.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from drm.errors import ApplicationRefused, CreatorNotEligible, InvalidField
from drm.ids import check_id
from drm.storage.database import Database, Row, Transaction

log = logging.getLogger(__name__)

MIN_AGE_YEARS = 18
MIN_AGE_YEARS_BY_COUNTRY = {"KR": 19}  # South Korea counts adulthood from 19
MIN_ACCOUNT_AGE_DAYS = 30
MIN_PUBLIC_POSTS_30D = 3
MIN_FOLLOWERS = 10_000
MIN_VIEWS_30D = 1_000
ACCOUNT_TYPES = frozenset({"personal", "business", "political"})
MAX_URL_CHARS = 2048

# Verdict and stored statuses.
ELIGIBLE = "eligible"
PENDING = "pending_manual_approval"
INELIGIBLE = "ineligible"
APPROVED = "approved"
REJECTED = "rejected"
MAY_PUBLISH = frozenset({ELIGIBLE, APPROVED})


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatorProfile:
    """Facts about a creator's account, as the account platform reports them."""

    creator_id: str
    birth_date: dt.date
    country: str  # ISO 3166-1 alpha-2, e.g. "KR"
    account_created_on: dt.date
    account_type: str  # personal | business | political
    is_private: bool
    public_posts_last_30_days: int
    followers: int
    views_last_30_days: int
    has_original_content: bool
    is_in_good_standing: bool  # no community-guideline violations
    premium_content_url: str = ""  # premium content sold elsewhere: the way in below 10,000 followers

    @classmethod
    def from_json(cls, creator_id: str, data: object) -> CreatorProfile:
        """Build from a JSON object, checking every field's type; raises InvalidField naming it."""
        if not isinstance(data, dict):
            raise InvalidField("profile", "expected a JSON object")
        fields = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(fields) - {"creator_id"})
        if unknown:
            raise InvalidField(unknown[0], "is not a profile field")
        values: dict[str, Any] = {"creator_id": check_id("creator_id", creator_id)}
        for name in ("birth_date", "account_created_on"):
            values[name] = _date(name, data.get(name))
        country = data.get("country")
        if not isinstance(country, str) or len(country) != 2 or not country.isalpha() or not country.isupper():
            raise InvalidField("country", f"expected an ISO 3166 alpha-2 code like 'US', got {country!r}")
        values["country"] = country
        if data.get("account_type") not in ACCOUNT_TYPES:
            raise InvalidField("account_type", f"expected one of {sorted(ACCOUNT_TYPES)}")
        values["account_type"] = data["account_type"]
        for name in ("is_private", "has_original_content", "is_in_good_standing"):
            if type(data.get(name)) is not bool:
                raise InvalidField(name, "expected true or false")
            values[name] = data[name]
        for name in ("public_posts_last_30_days", "followers", "views_last_30_days"):
            value = data.get(name)
            if type(value) is not int or not 0 <= value <= 10**12:
                raise InvalidField(name, f"expected a non-negative integer, got {value!r}")
            values[name] = value
        values["premium_content_url"] = check_url(data.get("premium_content_url", ""))
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["birth_date"] = self.birth_date.isoformat()
        data["account_created_on"] = self.account_created_on.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class UnmetRule:
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    status: str  # eligible | pending_manual_approval | ineligible
    unmet: tuple[UnmetRule, ...]  # every rule not met, in the order the rules are listed
    may_apply_with_premium_content: bool  # short only of followers: a premium-content link opens the way

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "unmet": [{"code": rule.code, "message": rule.message} for rule in self.unmet],
            "may_apply_with_premium_content": self.may_apply_with_premium_content,
        }


def check_url(value: object) -> str:
    """An https/http URL (or "") of at most 2048 characters; raises InvalidField."""
    if value == "":
        return ""
    if (not isinstance(value, str) or len(value) > MAX_URL_CHARS or not value.isprintable()
            or not value.startswith(("https://", "http://")) or " " in value):
        raise InvalidField("premium_content_url", "expected an http(s) URL of at most 2048 characters")
    return value


def evaluate(profile: CreatorProfile, today: dt.date) -> Verdict:
    """Judge the profile against every rule; the verdict lists all unmet rules, not just the first."""
    unmet = []
    minimum_age = MIN_AGE_YEARS_BY_COUNTRY.get(profile.country, MIN_AGE_YEARS)
    age = _years_between(profile.birth_date, today)
    if age < minimum_age:
        where = " in South Korea" if profile.country == "KR" else ""
        unmet.append(UnmetRule("too_young", f"Creators must be at least {minimum_age}{where}; you are {age}."))
    account_days = (today - profile.account_created_on).days
    if account_days <= MIN_ACCOUNT_AGE_DAYS:
        unmet.append(UnmetRule(
            "account_too_new",
            f"The account must be older than {MIN_ACCOUNT_AGE_DAYS} days; it is {max(account_days, 0)} days old."))
    if profile.is_private:
        unmet.append(UnmetRule("account_private", "Private accounts cannot sell series; make the account public."))
    if profile.account_type == "political":
        unmet.append(UnmetRule("account_political", "Political accounts cannot sell series."))
    if profile.public_posts_last_30_days < MIN_PUBLIC_POSTS_30D:
        unmet.append(UnmetRule(
            "too_few_posts",
            f"Post at least {MIN_PUBLIC_POSTS_30D} public videos in 30 days; "
            f"there were {profile.public_posts_last_30_days}."))
    if profile.followers < MIN_FOLLOWERS:
        unmet.append(UnmetRule(
            "too_few_followers",
            f"At least {MIN_FOLLOWERS:,} followers are needed; the account has {profile.followers:,}."))
    if profile.views_last_30_days < MIN_VIEWS_30D:
        unmet.append(UnmetRule(
            "too_few_views",
            f"At least {MIN_VIEWS_30D:,} views in the last 30 days are needed; "
            f"there were {profile.views_last_30_days:,}."))
    if not profile.has_original_content:
        unmet.append(UnmetRule("content_not_original", "Only creators of original content can sell series."))
    if not profile.is_in_good_standing:
        unmet.append(UnmetRule(
            "not_in_good_standing", "The account has community-guideline violations; it must be in good standing."))
    only_followers = [rule.code for rule in unmet] == ["too_few_followers"]
    if not unmet:
        status = ELIGIBLE
    elif only_followers and profile.premium_content_url:
        status = PENDING
    else:
        status = INELIGIBLE
    return Verdict(status=status, unmet=tuple(unmet), may_apply_with_premium_content=only_followers)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatorStatus:
    creator_id: str
    status: str  # eligible | pending_manual_approval | ineligible | approved | rejected
    unmet: tuple[UnmetRule, ...]
    premium_content_url: str
    decided_by: str  # the operator who approved or rejected, else ""
    reason: str
    updated_at: float

    @property
    def may_publish(self) -> bool:
        return self.status in MAY_PUBLISH

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unmet"] = [{"code": rule.code, "message": rule.message} for rule in self.unmet]
        data["may_publish"] = self.may_publish
        return data


class CreatorRegistry:
    """Recorded verdicts and manual-approval decisions, in the drm database."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def record(self, profile: CreatorProfile) -> tuple[Verdict, CreatorStatus]:
        """Judge fresh facts and store the result. An approval stays while only followers are short.

        Facts without a premium-content link keep the stored one: the platform's facts do not carry
        the link a creator applied with, and dropping it would silently withdraw a pending application.
        """
        with self._db.transaction() as tx:
            previous = _locked_status(tx, profile.creator_id)
            if not profile.premium_content_url and previous is not None and previous.premium_content_url:
                profile = _with_url(profile, previous.premium_content_url)
            verdict, status = self._judge(profile, previous)
            self._store(tx, profile, verdict, status, previous)
        log.info("creator %s: %s (%d unmet)", profile.creator_id, status, len(verdict.unmet))
        return verdict, self.get(profile.creator_id)  # type: ignore[return-value]

    def apply(self, creator_id: str, premium_content_url: str) -> CreatorStatus:
        """A creator short only of followers applies with a premium-content link: pending approval.

        Raises ApplicationRefused if no facts are recorded or other rules are unmet, InvalidField for a
        bad URL. A refused application stores nothing: the creator's record stays as it was.
        """
        check_url(premium_content_url)
        if not premium_content_url:
            raise InvalidField("premium_content_url", "is required to apply")
        with self._db.transaction() as tx:
            row = _locked_row(tx, creator_id)
            if row is None:
                raise ApplicationRefused(
                    f"no profile facts are recorded for creator {creator_id}; check eligibility first")
            profile = CreatorProfile.from_json(creator_id, json.loads(row["profile"]))
            current = _status(row)
            if current.may_publish:
                raise ApplicationRefused(f"creator {creator_id} is already {current.status}; no application is needed")
            if current.status == REJECTED:      # the rejection stands until an operator decides otherwise
                why = f": {current.reason}" if current.reason else ""
                raise ApplicationRefused(
                    f"creator {creator_id}'s application was rejected by {current.decided_by}{why}")
            profile = _with_url(profile, premium_content_url)
            verdict, status = self._judge(profile, current)
            if status != PENDING:
                codes = ", ".join(rule.code for rule in verdict.unmet)
                raise ApplicationRefused(
                    f"creator {creator_id} cannot apply: only a follower count below {MIN_FOLLOWERS:,} may be "
                    f"made up by premium content sold elsewhere; unmet: {codes}")
            self._store(tx, profile, verdict, status, current)
        log.info("creator %s applied: %s", creator_id, status)
        return self.get(creator_id)  # type: ignore[return-value]

    def decide(self, creator_id: str, *, approve: bool, operator: str, reason: str = "") -> CreatorStatus:
        """An operator approves or rejects a pending application; ApplicationRefused if none is pending."""
        new_status = APPROVED if approve else REJECTED
        with self._db.transaction() as tx:
            current = _locked_status(tx, creator_id)
            if current is None or current.status != PENDING:
                found = current.status if current else "no record"
                raise ApplicationRefused(f"creator {creator_id} has no pending application ({found})")
            tx.execute(
                "UPDATE creators SET status = ?, decided_by = ?, reason = ?, updated_at = ? WHERE creator_id = ?",
                (new_status, operator, reason, self._clock(), creator_id),
            )
        log.info("creator %s %s by %s", creator_id, new_status, operator)
        return self.get(creator_id)  # type: ignore[return-value]

    def get(self, creator_id: str) -> CreatorStatus | None:
        rows = self._db.query("SELECT * FROM creators WHERE creator_id = ?", (creator_id,))
        return _status(rows[0]) if rows else None

    def list(self, status: str | None = None) -> list[CreatorStatus]:
        if status is None:
            rows = self._db.query("SELECT * FROM creators ORDER BY updated_at, creator_id")
        else:
            rows = self._db.query(
                "SELECT * FROM creators WHERE status = ? ORDER BY updated_at, creator_id", (status,))
        return [_status(row) for row in rows]

    def require_may_publish(self, creator_id: str) -> None:
        """Return quietly for an eligible or approved creator; raise CreatorNotEligible otherwise."""
        current = self.get(creator_id)
        if current is None or not current.may_publish:
            raise CreatorNotEligible(creator_id, current.status if current else "not checked")

    def _judge(self, profile: CreatorProfile, previous: CreatorStatus | None) -> tuple[Verdict, str]:
        verdict = evaluate(profile, dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).date())
        status = verdict.status
        # An operator's decision stands while the facts still leave only the follower count short.
        if previous is not None and previous.status == APPROVED and verdict.may_apply_with_premium_content:
            status = APPROVED
        elif previous is not None and previous.status == REJECTED and status == PENDING:
            status = REJECTED
        return verdict, status

    def _store(self, tx: Transaction, profile: CreatorProfile, verdict: Verdict, status: str,
               previous: CreatorStatus | None) -> None:
        # the operator's name and reason belong to the decision, so they go when the status changes
        is_same_decision = previous is not None and previous.status == status
        decided_by, reason = (previous.decided_by, previous.reason) if is_same_decision else ("", "")
        unmet = json.dumps([[rule.code, rule.message] for rule in verdict.unmet])
        tx.execute(
            "INSERT INTO creators (creator_id, status, profile, unmet, premium_content_url, decided_by, reason,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (creator_id) DO UPDATE SET"
            " status = excluded.status, profile = excluded.profile, unmet = excluded.unmet,"
            " premium_content_url = excluded.premium_content_url, decided_by = excluded.decided_by,"
            " reason = excluded.reason, updated_at = excluded.updated_at",
            (profile.creator_id, status, json.dumps(profile.as_json()), unmet, profile.premium_content_url,
             decided_by, reason, self._clock()),
        )


def _locked_row(tx: Transaction, creator_id: str) -> Row | None:
    # A lock, not FOR UPDATE: the creator may have no row yet, and a first record() must not race another.
    tx.lock(f"creator:{creator_id}")
    return tx.fetch_one("SELECT * FROM creators WHERE creator_id = ?", (creator_id,))


def _locked_status(tx: Transaction, creator_id: str) -> CreatorStatus | None:
    row = _locked_row(tx, creator_id)
    return _status(row) if row is not None else None


def _with_url(profile: CreatorProfile, url: str) -> CreatorProfile:
    data = profile.as_json()
    data["premium_content_url"] = url
    return CreatorProfile.from_json(profile.creator_id, data)


def _status(row: Row) -> CreatorStatus:
    return CreatorStatus(
        creator_id=row["creator_id"], status=row["status"],
        unmet=tuple(UnmetRule(code, message) for code, message in json.loads(row["unmet"])),
        premium_content_url=row["premium_content_url"], decided_by=row["decided_by"],
        reason=row["reason"], updated_at=row["updated_at"],
    )


def _date(name: str, value: object) -> dt.date:
    if not isinstance(value, str):
        raise InvalidField(name, "expected an ISO date like 2001-12-31")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidField(name, f"{value[:40]!r} is not an ISO date like 2001-12-31") from None


def _years_between(born: dt.date, today: dt.date) -> int:
    had_birthday = (today.month, today.day) >= (born.month, born.day)
    return today.year - born.year - (0 if had_birthday else 1)
