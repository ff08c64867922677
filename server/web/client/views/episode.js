// An episode: the player (player.js), where the viewer stopped, the next episode, and a clear message
// when a key is refused (not bought, refunded, expired pass), never an endless spinner.
import { html, nothing } from "lit-html";
import { api, onThisOrigin } from "../api.js";
import { clock } from "../format.js";
import { explainKeyRefusal } from "../messages.js";
import { session } from "../session.js";
import { mountPlayer } from "../player.js";
import { PlaybackTokenKeeper } from "../playback_token.js";
import { badge, loading } from "./common.js";

const PROGRESS_EVERY_S = 10;      // resume positions: a report every 10 s of playing (the API allows far more)
const RESUME_FROM_S = 5;          // shorter than this into an episode: start at the beginning

export async function episodePage(view) {
  const [seriesId, episodeId] = view.params;
  const seriesPath = `/series/${encodeURIComponent(seriesId)}`;
  const apiPath = `/v1/series/${encodeURIComponent(seriesId)}`;
  view.title("Episode");
  view.show(loading("Loading the episode…"));
  const series = await api(apiPath);
  const index = series.episodes.findIndex((e) => e.episode_id === episodeId);
  const episode = series.episodes[index];
  if (!episode) {
    view.show(html`<section class="notice" role="alert"><h1 tabindex="-1">No such episode</h1>
      <p><a href=${seriesPath}>See ${series.title}</a></p></section>`);
    return null;
  }
  const next = series.episodes[index + 1] || null;
  const title = episode.title || `Episode ${episode.episode_id}`;
  view.title(`${title} · ${series.title}`);

  let player = null, message = null, resumeAt = 0, playback = null, ended = false;

  const draw = () => view.show(html`
    <article class="watch" aria-labelledby="episode-title">
      <p class="crumbs"><a href=${seriesPath}>${series.title}</a></p>
      <h1 id="episode-title" tabindex="-1">${episode.position}. ${title}
        ${episode.is_free_preview ? badge("Free preview", "free") : nothing}</h1>
      <div class="stage">
        <div id="player-slot"></div>
        ${message ? refusal(message) : nothing}
      </div>
      ${resumeAt && !message ? html`<p class="resume">Resumed at ${clock(resumeAt)}.
        <button type="button" class="link-button" @click=${() => player?.seek(0)}>Start over</button></p>` : nothing}
      ${episode.description ? html`<p class="description">${episode.description}</p>` : nothing}
      ${next ? html`<p class=${`next${ended ? " up-next" : ""}`}>
        <a id="next-episode" href=${`${seriesPath}/episodes/${encodeURIComponent(next.episode_id)}`}>
          ${ended ? "Up next: " : "Next episode: "}${next.position}. ${next.title || `Episode ${next.episode_id}`}</a>
          ${next.is_free_preview ? badge("Free preview", "free") : nothing}</p>`
        : html`<p class="next">This is the last episode. <a href=${seriesPath}>Back to the series</a></p>`}
    </article>`);

  const refusal = (m) => html`
    <div class="player-message" role="alert" data-code=${m.code || ""}>
      <h2>${m.title}</h2>
      <p>${m.text}</p>
      ${m.action === "buy" ? html`<p><a class="button" href=${seriesPath}>See the series and buy it</a></p>`
        : m.action === "renew" || m.action === "retry" ? html`<p><button type="button" @click=${restart}>Continue watching</button></p>`
        : m.action === "sign-in" ? html`<p>Use the sign-in at the top of the page.</p>` : nothing}
    </div>`;

  async function refuse(code) {
    const at = player?.currentTime() || resumeAt;
    player?.destroy();
    player = null;
    resumeAt = at;
    message = await explainKeyRefusal(code, seriesId);
    draw();
    view.announce(message.title);
  }

  async function start() {
    message = null;
    draw();
    if (!session.isSignedIn) {
      message = { title: "Sign in to watch", text: "Episodes play for signed-in viewers, free previews too.", action: "sign-in" };
      draw();
      return;
    }
    try {
      playback = await api(`${apiPath}/episodes/${encodeURIComponent(episodeId)}/playback`, { method: "POST" });
    } catch (error) {
      if (error.status === 403 || error.status === 401) return refuse(error.code);
      throw error;
    }
    const tokens = new PlaybackTokenKeeper({
      token: playback.token,
      expiresAt: playback.expires_at,
      // with the account token when signed in; api() falls back to the playback token alone if that lapsed
      refresh: (token) => api("/v1/playback/refresh", { method: "POST", body: { token } }),
      onRefreshed: (answer) => { if (playback) playback.token = answer.token; },     // progress reports too
      onRefused: refuse,
    });
    // the player lives in an element lit-html draws but never looks into: it is ours to fill
    player = mountPlayer(document.getElementById("player-slot"), {
      tokens,
      title,
      src: onThisOrigin(playback.master_url),
      poster: episode.poster_url,
      // the playback answer's URL carries the token the gated storyboard needs (a <track> sends no header)
      storyboardUrl: playback.storyboard_url || null,
      startAt: resumeAt,
      onKeyRefused: refuse,
      onProgress: report,
      progressEveryS: PROGRESS_EVERY_S,
      onEnded: () => { ended = true; report(player.currentTime()); draw(); document.getElementById("next-episode")?.focus(); },
    });
  }

  async function restart() {
    await start();
  }

  async function report(positionS) {
    if (!playback) return;
    try {
      await api(`${apiPath}/episodes/${encodeURIComponent(episodeId)}/progress`,
        { method: "POST", body: { position_s: Math.round(positionS * 10) / 10 }, token: playback.token });
    } catch {
      // a lost report costs a few seconds of resume position: not worth interrupting the viewer
    }
  }

  if (session.isSignedIn && !episode.is_free_preview) {
    try {
      const library = await api("/v1/me/library?limit=50");
      const owned = library.series.find((s) => s.series_id === seriesId);
      const progress = owned?.episodes.find((e) => e.episode_id === episodeId)?.progress;
      if (progress && !progress.is_completed && progress.position_s >= RESUME_FROM_S) resumeAt = progress.position_s;
    } catch {
      // no resume position: start at the beginning
    }
  }
  await start();
  return { leave() { player?.destroy(); } };
}
