"""The drm database's schema as an ordered list of steps, for SQLite and PostgreSQL alike (migrations.py
applies them).

A migration is appended, never edited once released: files and databases in the field have run it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drm.storage.database import Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    version: int
    summary: str
    script: str            # for both engines; {text} {real} {blob} {identity} filled in by the dialect
    postgresql: str = ""   # PostgreSQL only, run as written after `script` (functions, triggers)
    # run last, in the same transaction, for what SQL alone cannot say on both engines
    upgrade: Callable[[Transaction], None] | None = None


MIGRATIONS: tuple[Migration, ...] = (
    Migration(version=1, summary="content keys and entitlements", script="""
        CREATE TABLE IF NOT EXISTS content_keys (
            key_id        {text} PRIMARY KEY,
            series_id     {text} NOT NULL,
            episode_id    {text} NOT NULL,
            period        INTEGER NOT NULL,
            wrapped       {blob} NOT NULL,
            master_key_id {text} NOT NULL,
            created_at    {real} NOT NULL
        );
        CREATE INDEX IF NOT EXISTS content_keys_episode ON content_keys (series_id, episode_id);
        CREATE INDEX IF NOT EXISTS content_keys_master ON content_keys (master_key_id);
        CREATE TABLE IF NOT EXISTS content_key_versions (
            key_id     {text} PRIMARY KEY REFERENCES content_keys (key_id) ON DELETE CASCADE,
            series_id  {text} NOT NULL,
            episode_id {text} NOT NULL,
            version    INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS content_key_versions_episode
            ON content_key_versions (series_id, episode_id, version);
        CREATE TABLE IF NOT EXISTS entitlements (
            viewer_id  {text} NOT NULL,
            series_id  {text} NOT NULL,
            source     {text} NOT NULL,
            granted_at {real} NOT NULL,
            revoked_at {real} NULL,
            reason     {text} NOT NULL DEFAULT '',
            PRIMARY KEY (viewer_id, series_id)
        )
    """),
    Migration(version=2, summary="the catalog, creators' eligibility, payments, an audit trail", script="""
        ALTER TABLE entitlements ADD COLUMN reference {text} NOT NULL DEFAULT '';
        CREATE TABLE series (
            series_id    {text} PRIMARY KEY,
            creator_id   {text} NOT NULL,
            title        {text} NOT NULL,
            price_cents  INTEGER NOT NULL CHECK (price_cents BETWEEN 100 AND 19000),
            currency     {text} NOT NULL,
            created_at   {real} NOT NULL,
            updated_at   {real} NOT NULL
        );
        CREATE INDEX series_creator ON series (creator_id);
        CREATE TABLE episodes (
            series_id         {text} NOT NULL REFERENCES series (series_id),
            episode_id        {text} NOT NULL,
            duration_s        {real} NOT NULL,
            is_free_preview   INTEGER NOT NULL DEFAULT 0,
            published_version INTEGER NULL,
            created_at        {real} NOT NULL,
            updated_at        {real} NOT NULL,
            PRIMARY KEY (series_id, episode_id)
        );
        CREATE TABLE creators (
            creator_id          {text} PRIMARY KEY,
            status              {text} NOT NULL,
            profile             {text} NOT NULL,
            unmet               {text} NOT NULL,
            premium_content_url {text} NOT NULL DEFAULT '',
            decided_by          {text} NOT NULL DEFAULT '',
            reason              {text} NOT NULL DEFAULT '',
            updated_at          {real} NOT NULL
        );
        CREATE TABLE payments (
            payment_id   {text} PRIMARY KEY,
            viewer_id    {text} NOT NULL,
            series_id    {text} NOT NULL,
            status       {text} NOT NULL,
            amount_cents INTEGER NOT NULL,
            currency     {text} NOT NULL,
            updated_at   {real} NOT NULL
        );
        CREATE TABLE payment_events (
            payment_id  {text} NOT NULL,
            event_type  {text} NOT NULL,
            event_id    {text} NOT NULL,
            received_at {real} NOT NULL,
            PRIMARY KEY (payment_id, event_type)
        );
        CREATE TABLE entitlement_events (
            event_id   {identity},
            viewer_id  {text} NOT NULL,
            series_id  {text} NOT NULL,
            action     {text} NOT NULL,
            source     {text} NOT NULL,
            reason     {text} NOT NULL,
            actor      {text} NOT NULL,
            reference  {text} NOT NULL,
            at         {real} NOT NULL
        );
        CREATE INDEX entitlement_events_pair ON entitlement_events (viewer_id, series_id)
    """),
    Migration(
        version=3,
        summary="the entitlement change feed: an outbox written with every grant and revoke",
        # Its own narrow table, not the audit trail: readers poll it every second, it is pruned
        # after a while, and the audit trail's retention is a separate decision.
        script="""
            CREATE TABLE entitlement_changes (
                change_id  {identity},
                viewer_id  {text} NOT NULL,
                series_id  {text} NOT NULL,
                at         {real} NOT NULL
            );
            CREATE INDEX entitlement_changes_at ON entitlement_changes (at);
            CREATE INDEX payments_pair ON payments (viewer_id, series_id)
        """,
        # Readers poll by transaction id, not change_id: identity values are taken in insertion
        # order but become visible in commit order, so "above the last id seen" can skip a row
        # that commits late. The trigger notifies listeners at commit, from this table only.
        postgresql="""
            ALTER TABLE entitlement_changes ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
            CREATE INDEX entitlement_changes_txid ON entitlement_changes (txid);
            CREATE FUNCTION entitlement_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('entitlements', NEW.viewer_id || '/' || NEW.series_id);
                RETURN NULL;
            END
            $$;
            CREATE TRIGGER entitlement_changes_notify AFTER INSERT ON entitlement_changes
                FOR EACH ROW EXECUTE FUNCTION entitlement_changes_notify();
        """,
    ),
    Migration(
        version=4,
        summary="the catalog as an API: series status and descriptions, episode positions, titles and status, "
                "viewers' progress, idempotency keys",
        # Positions are written through negative values (see _write_order in drm/catalog/episode_store.py)
        # so the unique index holds at every statement on SQLite, which checks it row by row. Existing
        # episodes are numbered in the order they were added, as they were listed.
        script="""
            ALTER TABLE series ADD COLUMN description {text} NOT NULL DEFAULT '';
            ALTER TABLE series ADD COLUMN status {text} NOT NULL DEFAULT 'published';
            ALTER TABLE series ADD COLUMN cover_episode_id {text} NULL;
            ALTER TABLE series ADD COLUMN published_at {real} NULL;
            ALTER TABLE series ADD COLUMN deleted_at {real} NULL;
            ALTER TABLE series ADD COLUMN order_version INTEGER NOT NULL DEFAULT 0;
            UPDATE series SET published_at = created_at;
            CREATE INDEX series_creator_page ON series (creator_id, created_at, series_id);
            CREATE INDEX series_status_page ON series (status, created_at, series_id);
            ALTER TABLE episodes ADD COLUMN position INTEGER NULL;
            ALTER TABLE episodes ADD COLUMN title {text} NOT NULL DEFAULT '';
            ALTER TABLE episodes ADD COLUMN description {text} NOT NULL DEFAULT '';
            ALTER TABLE episodes ADD COLUMN renditions {text} NOT NULL DEFAULT '[]';
            ALTER TABLE episodes ADD COLUMN ready_at {real} NULL;
            ALTER TABLE episodes ADD COLUMN unpublished_at {real} NULL;
            ALTER TABLE episodes ADD COLUMN deleted_at {real} NULL;
            ALTER TABLE episodes ADD COLUMN job_id {text} NULL;
            ALTER TABLE episodes ADD COLUMN stage {text} NULL;
            ALTER TABLE episodes ADD COLUMN stage_percent {real} NOT NULL DEFAULT 0;
            ALTER TABLE episodes ADD COLUMN error {text} NULL;
            UPDATE episodes SET ready_at = updated_at WHERE published_version IS NOT NULL;
            UPDATE episodes SET title = 'Episode ' || episode_id;
            UPDATE episodes SET position = (
                SELECT COUNT(*) FROM episodes other WHERE other.series_id = episodes.series_id
                AND (other.created_at < episodes.created_at
                     OR (other.created_at = episodes.created_at AND other.episode_id <= episodes.episode_id)));
            CREATE UNIQUE INDEX episodes_position ON episodes (series_id, position);
            CREATE INDEX episodes_job ON episodes (job_id);
            CREATE TABLE viewer_progress (
                viewer_id   {text} NOT NULL,
                series_id   {text} NOT NULL,
                episode_id  {text} NOT NULL,
                position_s  {real} NOT NULL,
                completed   INTEGER NOT NULL DEFAULT 0,
                updated_at  {real} NOT NULL,
                PRIMARY KEY (viewer_id, series_id, episode_id)
            );
            CREATE TABLE idempotency_keys (
                scope           {text} NOT NULL,
                idempotency_key {text} NOT NULL,
                fingerprint     {text} NOT NULL,
                status          INTEGER NULL,
                headers         {text} NOT NULL DEFAULT '{{}}',
                body            {blob} NULL,
                locked_until    {real} NOT NULL,
                expires_at      {real} NOT NULL,
                PRIMARY KEY (scope, idempotency_key)
            );
            CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)
        """,
    ),
    Migration(
        version=5,
        summary="ingest jobs and episode version numbers join the versioned schema",
        # Owned by server/ (server/jobs/job_store.py, server/publishing/versions.py), kept here because
        # the database has one schema version. SQLite files in the field may hold both tables already
        # (the service created them itself before): IF NOT EXISTS, and _add_job_columns. spool_host: the
        # host whose disk holds a streamed upload (instances on other hosts cannot run that job).
        script="""
            CREATE TABLE IF NOT EXISTS ingest_jobs (
                job_id           {text} PRIMARY KEY,
                series_id        {text} NOT NULL,
                episode_id       {text} NOT NULL,
                state            {text} NOT NULL,
                stage_fraction   {real} NOT NULL DEFAULT 0,
                source_kind      {text} NOT NULL,
                source_bucket    {text} NULL,
                source_key       {text} NULL,
                spool_path       {text} NULL,
                spool_host       {text} NULL,
                size_bytes       BIGINT NULL,
                idempotency_key  {text} NOT NULL UNIQUE,
                fingerprint      {text} NOT NULL,
                webhook_url      {text} NULL,
                webhook_status   {text} NULL,
                attempt          INTEGER NOT NULL DEFAULT 1,
                version          INTEGER NULL,
                report           {text} NULL,
                error_code       {text} NULL,
                error_message    {text} NULL,
                created_at       {real} NOT NULL,
                updated_at       {real} NOT NULL,
                started_at       {real} NULL,
                finished_at      {real} NULL,
                owner_id         {text} NULL,
                lease_expires_at {real} NULL
            );
            CREATE INDEX IF NOT EXISTS ingest_jobs_state ON ingest_jobs (state, created_at);
            CREATE INDEX IF NOT EXISTS ingest_jobs_episode ON ingest_jobs (series_id, episode_id);
            CREATE TABLE IF NOT EXISTS episode_versions (
                series_id     {text} NOT NULL,
                episode_id    {text} NOT NULL,
                last_version  INTEGER NOT NULL,
                switch_holder {text} NULL,
                switch_until  {real} NULL,
                PRIMARY KEY (series_id, episode_id)
            )
        """,
        upgrade=lambda tx: _add_job_columns(tx),
    ),
    Migration(
        version=6,
        summary="episode changes in the change feed: what key servers cache per episode is invalidated too",
        # A row with episode_id set says an episode's facts changed (free preview, and whatever else the
        # key path caches per episode); its viewer_id is '' (no id is empty). Entitlement rows keep
        # episode_id NULL. The trigger's payload: 'viewer/series', or '/series/episode'.
        script="""
            ALTER TABLE entitlement_changes ADD COLUMN episode_id {text} NULL
        """,
        postgresql="""
            CREATE OR REPLACE FUNCTION entitlement_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.episode_id IS NULL THEN
                    PERFORM pg_notify('entitlements', NEW.viewer_id || '/' || NEW.series_id);
                ELSE
                    PERFORM pg_notify('entitlements', '/' || NEW.series_id || '/' || NEW.episode_id);
                END IF;
                RETURN NULL;
            END
            $$;
        """,
    ),
    Migration(
        version=7,
        summary="resumable (tus) uploads: offset, S3 multipart parts and tail, owner, expiry, the PATCH lease",
        # Owned by server/ingest/upload_store.py; here so that every engine and instance has it before the
        # first upload. `parts` is JSON [[number, etag, size], ...]: read and written whole under the lease.
        script="""
            CREATE TABLE resumable_uploads (
                upload_id       {text} PRIMARY KEY,
                owner           {text} NOT NULL,
                series_id       {text} NOT NULL,
                episode_id      {text} NOT NULL,
                title           {text} NULL,
                filename        {text} NOT NULL,
                metadata        {text} NOT NULL,
                webhook_url     {text} NULL,
                length_bytes    INTEGER NOT NULL,
                offset_bytes    INTEGER NOT NULL DEFAULT 0,
                object_key      {text} NOT NULL,
                multipart_id    {text} NULL,
                parts           {text} NOT NULL DEFAULT '[]',
                tail_key        {text} NULL,
                tail_bytes      INTEGER NOT NULL DEFAULT 0,
                state           {text} NOT NULL,
                created_episode INTEGER NOT NULL DEFAULT 0,
                holder          {text} NULL,
                held_until      {real} NULL,
                job_id          {text} NULL,
                error           {text} NULL,
                created_at      {real} NOT NULL,
                updated_at      {real} NOT NULL,
                expires_at      {real} NOT NULL,
                ended_at        {real} NULL,
                cleared_at      {real} NULL
            );
            CREATE INDEX resumable_uploads_owner ON resumable_uploads (owner, state);
            CREATE INDEX resumable_uploads_state ON resumable_uploads (state, expires_at);
            CREATE INDEX resumable_uploads_episode ON resumable_uploads (series_id, episode_id, state)
        """,
    ),
    Migration(
        version=8,
        summary="jobs on a distributed engine (its job id, cancel requests, each attempt's end); durable "
                "completion-webhook deliveries",
        # Owned by server/jobs/ (job_store.py, deliveries.py). engine_job_id: the Procrastinate job running this
        # one (NULL on the in-process runner, or not yet handed over); cancel_requested_at fences every later
        # progress write, so the running child stops itself on any host. A delivery is one event to one URL,
        # retried on a schedule; each attempt is kept with its outcome.
        script="""
            ALTER TABLE ingest_jobs ADD COLUMN engine_job_id INTEGER NULL;
            ALTER TABLE ingest_jobs ADD COLUMN cancel_requested_at {real} NULL;
            CREATE TABLE ingest_job_attempts (
                job_id          {text} NOT NULL,
                attempt         INTEGER NOT NULL,
                ended_at        {real} NOT NULL,
                error_code      {text} NOT NULL,
                error_message   {text} NOT NULL,
                PRIMARY KEY (job_id, attempt)
            );
            CREATE TABLE webhook_deliveries (
                delivery_id     {text} PRIMARY KEY,
                job_id          {text} NOT NULL,
                message_id      {text} NOT NULL UNIQUE,
                url             {text} NOT NULL,
                body            {text} NOT NULL,
                state           {text} NOT NULL,
                attempts        INTEGER NOT NULL DEFAULT 0,
                next_attempt_at {real} NULL,
                last_status     {text} NULL,
                holder          {text} NULL,
                held_until      {real} NULL,
                created_at      {real} NOT NULL,
                updated_at      {real} NOT NULL,
                delivered_at    {real} NULL
            );
            CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
            CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, created_at);
            CREATE TABLE webhook_attempts (
                delivery_id     {text} NOT NULL,
                attempt         INTEGER NOT NULL,
                attempted_at    {real} NOT NULL,
                status          {text} NOT NULL,
                http_status     INTEGER NULL,
                PRIMARY KEY (delivery_id, attempt)
            )
        """,
    ),
    Migration(
        version=9,
        summary="playback sessions (the concurrent-session limit) and account-token revocations",
        # A session is the playback token's sid; its row lives while its viewer keeps fetching keys
        # (last_seen_at), and the key servers count a viewer's live rows against the limit. A revocation
        # refuses every account (and playback) token of `subject` issued at or before `not_before`.
        script="""
            CREATE TABLE playback_sessions (
                viewer_id    {text} NOT NULL,
                session_id   {text} NOT NULL,
                started_at   {real} NOT NULL,
                last_seen_at {real} NOT NULL,
                PRIMARY KEY (viewer_id, session_id)
            );
            CREATE INDEX playback_sessions_seen ON playback_sessions (last_seen_at);
            CREATE TABLE account_revocations (
                subject    {text} PRIMARY KEY,
                not_before BIGINT NOT NULL,
                revoked_at {real} NOT NULL,
                revoked_by {text} NOT NULL
            )
        """,
    ),
    Migration(
        version=10,
        summary="ingest jobs carry the poster time an upload service names",
        script="""
            ALTER TABLE ingest_jobs ADD COLUMN poster_at_s {real} NULL
        """,
    ),
    Migration(
        version=11,
        summary="forensic watermarking: a series opts in; the sessions that fetched a watermarked episode",
        # Owned by drm/access/watermark_sessions.py. Not playback_sessions: that table is pruned as sessions lapse,
        # and this one is evidence, kept as long as a leak of the episode may surface. One row per session
        # and version of an episode (a version's reference decodes its leaks); payment_id is the
        # entitlement's reference when the session started (the payment id of a purchase, '' otherwise).
        script="""
            ALTER TABLE series ADD COLUMN watermark INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE watermark_sessions (
                series_id   {text} NOT NULL,
                episode_id  {text} NOT NULL,
                version     INTEGER NOT NULL,
                session_id  {text} NOT NULL,
                viewer_id   {text} NOT NULL,
                source      {text} NOT NULL,
                payment_id  {text} NOT NULL,
                fetched_at  {real} NOT NULL,
                PRIMARY KEY (series_id, episode_id, version, session_id)
            );
            CREATE INDEX watermark_sessions_viewer ON watermark_sessions (viewer_id, fetched_at)
        """,
    ),
    Migration(
        version=12,
        summary="a watermarked session records which watermark secret its A/B sequence was keyed with",
        # The secret can then be rotated: a session keeps its secret for as long as it plays, and a trace
        # recomputes each session's sequence with the secret it names. '' on the rows made before: keyed
        # with whichever secret the service had then (a trace tries each one the service still knows).
        script="""
            ALTER TABLE watermark_sessions ADD COLUMN secret_id {text} NOT NULL DEFAULT ''
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
# payload "viewer_id/series_id" for an entitlement, "/series_id/episode_id" for an episode; ids contain no "/"
NOTIFY_CHANNEL = "entitlements"


def _add_job_columns(tx: Transaction) -> None:
    """SQLite files whose ingest_jobs table the service made itself get the columns it lacks (a new table
    has them all): the lease columns (older files), and spool_host."""
    if tx.dialect.name != "sqlite":
        return
    columns = {row["name"] for row in tx.fetch_all("PRAGMA table_info(ingest_jobs)")}
    for column in ("owner_id TEXT NULL", "lease_expires_at REAL NULL", "spool_host TEXT NULL"):
        if column.split()[0] not in columns:
            tx.execute(f"ALTER TABLE ingest_jobs ADD COLUMN {column}")
