// A playing player's playback token, kept fresh. Playback tokens last minutes (SERIES_TOKEN_TTL_S), and
// every key and playlist URI carries one (players do not pass a parent's query on, and Safari cannot add
// headers), so the token must change inside the URIs hls.js is about to request: xhrSetup (hls.js's
// documented per-request hook) opens each request on its URL with the current token in place of the
// one the playlist was written with. The refresh (POST /v1/playback/refresh) keeps the token's session,
// so a refreshed player never counts twice against the viewer's limit of concurrent sessions.

const RETRY_MS = 5000;          // a refresh that failed for the network: try again this soon
const MIN_DELAY_MS = 1000;

export class PlaybackTokenKeeper {
  /**
   * token/expiresAt (unix s): the playback token the player starts with. refresh(token) resolves to
   * {token, expires_at} or rejects with an ApiError; onRefreshed(answer) is told of each new token, and
   * onRefused(code) when the service refuses to refresh (401/403: revoked, expired past its grace).
   */
  constructor({ token, expiresAt, refresh, onRefreshed = () => {}, onRefused = () => {} }) {
    Object.assign(this, { token, expiresAt, refresh, onRefreshed, onRefused });
    this.listeners = [];
    this.timer = null;
    this.stopped = false;
    this.onVisible = () => {
      // a tab in the background (or a laptop asleep) may have missed its timer
      if (document.visibilityState === "visible" && this.leftMs() < this.lifetimeMs() / 3) this.refreshNow();
    };
    document.addEventListener("visibilitychange", this.onVisible);
    this.schedule();
  }

  leftMs() { return this.expiresAt * 1000 - Date.now(); }

  lifetimeMs() { return this.lifetime ?? (this.lifetime = Math.max(this.leftMs(), MIN_DELAY_MS)); }

  /** Refresh when a third of the token's life is left: time for a retry or two before it expires. */
  schedule(delayMs = this.leftMs() - this.lifetimeMs() / 3) {
    clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => this.refreshNow(), Math.max(MIN_DELAY_MS, delayMs));
  }

  async refreshNow() {
    if (this.stopped || this.refreshing) return;
    this.refreshing = true;
    try {
      const answer = await this.refresh(this.token);
      if (this.stopped) return;
      this.token = answer.token;
      this.expiresAt = answer.expires_at;
      this.onRefreshed(answer);
      for (const listener of this.listeners) listener(answer);
      this.schedule();
    } catch (error) {
      if (this.stopped) return;
      if (error.status === 401 || error.status === 403) {
        this.stop();
        this.onRefused(error.code);
      } else {
        this.schedule(RETRY_MS);
      }
    } finally {
      this.refreshing = false;
    }
  }

  /** `url` with the current token in place of the one it was written with (URLs without one unchanged). */
  withToken(url) {
    const parsed = new URL(url, location.href);
    if (!parsed.searchParams.has("token")) return url;
    parsed.searchParams.set("token", this.token);
    return parsed.href;
  }

  /** Call `listener(answer)` after each refresh (as onRefreshed, for more than one party). */
  subscribe(listener) { this.listeners.push(listener); }

  /** hls.js config: every request hls.js makes goes out with the current token. */
  hlsConfig() {
    return { xhrSetup: (xhr, url) => { xhr.open("GET", this.withToken(url), true); } };
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisible);
  }

  /** The player is gone: stop refreshing, and free its place among the viewer's sessions at once. */
  end() {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    const body = new Blob([JSON.stringify({ token: this.token })], { type: "application/json" });
    navigator.sendBeacon?.("/v1/playback/end", body);    // survives the page being closed
  }
}
