// The player: media-chrome's controls (web components: keyboard and screen-reader ready, a quality menu,
// a captions menu, storyboard previews on the seek bar) over hls-video-element, which runs hls.js.
// Loaded only on episode pages (esbuild splits it off the storefront's bundle).
import "hls-video-element";
import { Hls } from "hls-video-element";
import "media-chrome/dist/media-controller.js";
import "media-chrome/dist/media-control-bar.js";
import "media-chrome/dist/media-play-button.js";
import "media-chrome/dist/media-seek-backward-button.js";
import "media-chrome/dist/media-seek-forward-button.js";
import "media-chrome/dist/media-time-range.js";
import "media-chrome/dist/media-time-display.js";
import "media-chrome/dist/media-mute-button.js";
import "media-chrome/dist/media-volume-range.js";
import "media-chrome/dist/media-fullscreen-button.js";
import "media-chrome/dist/media-loading-indicator.js";
import "media-chrome/dist/media-preview-thumbnail.js";
import "media-chrome/dist/media-preview-time-display.js";
import "media-chrome/dist/menu/media-rendition-menu.js";
import "media-chrome/dist/menu/media-rendition-menu-button.js";
import "media-chrome/dist/menu/media-captions-menu.js";
import "media-chrome/dist/menu/media-captions-menu-button.js";
import { html, render } from "lit-html";
import { config } from "./config.js";

/**
 * Play `src` (a master playlist URL with its playback token) in `stage`. Returns {seek, currentTime, destroy}.
 * onKeyRefused(code) is called with the problem code when the key server refuses a key (or a playlist is
 * refused): the caller replaces the player with a message. Posters, caption tracks (from the master
 * playlist) and the storyboard (a WebVTT thumbnails track) appear when the episode has them.
 * `tokens` (a PlaybackTokenKeeper) keeps the playback token fresh and puts it into every request; the
 * player ends its session (frees its place among the viewer's sessions) when destroyed or the page goes.
 */
export function mountPlayer(stage, { title, src, poster, storyboardUrl, startAt = 0, onKeyRefused, onProgress,
  progressEveryS = 10, onEnded, tokens = null }) {
  const holder = document.createElement("div");
  holder.className = "player-holder";
  stage.replaceChildren(holder);
  render(html`
    <media-controller class="player" defaultsubtitles>
      <media-loading-indicator slot="centered-chrome" noautohide></media-loading-indicator>
      <media-rendition-menu hidden anchor="auto"></media-rendition-menu>
      <media-captions-menu hidden anchor="auto"></media-captions-menu>
      <media-control-bar>
        <media-play-button></media-play-button>
        <media-seek-backward-button seekoffset="10"></media-seek-backward-button>
        <media-seek-forward-button seekoffset="10"></media-seek-forward-button>
        <media-time-range>
          <media-preview-thumbnail slot="preview"></media-preview-thumbnail>
          <media-preview-time-display slot="preview"></media-preview-time-display>
        </media-time-range>
        <media-time-display showduration></media-time-display>
        <media-mute-button></media-mute-button>
        <media-volume-range></media-volume-range>
        <media-captions-menu-button></media-captions-menu-button>
        <media-rendition-menu-button></media-rendition-menu-button>
        <media-fullscreen-button></media-fullscreen-button>
      </media-control-bar>
    </media-controller>`, holder);
  const controller = holder.querySelector("media-controller");
  controller.setAttribute("aria-label", `Video player: ${title}`);

  const video = document.createElement("hls-video");
  video.setAttribute("slot", "media");
  video.setAttribute("playsinline", "");
  video.setAttribute("crossorigin", "anonymous");
  if (poster) video.setAttribute("poster", poster);
  if (storyboardUrl) {
    const track = document.createElement("track");
    Object.assign(track, { kind: "metadata", label: "thumbnails", src: storyboardUrl, default: true });
    video.append(track);
  }
  video.config = {
    workerPath: config.hls_worker_url,        // our own file: the pages' CSP allows no blob: workers
    enableWorker: Boolean(config.hls_worker_url),
    startPosition: startAt > 0 ? startAt : -1,
    // at most 30 s ahead, whatever the bit rate (hls.js would otherwise fill 60 MB, minutes of a small
    // rung): less wasted on a viewer who leaves, and a refund or an expired pass meets a key request soon
    maxBufferLength: 30,
    maxMaxBufferLength: 30,
    renderTextTracksNatively: true,
    ...tokens?.hlsConfig(),
  };
  controller.prepend(video);
  video.setAttribute("src", src);
  video.setAttribute("autoplay", "");

  let destroyed = false, refused = false, lastReport = 0;
  const refuse = (code) => {
    if (refused || destroyed) return;
    refused = true;
    video.pause?.();
    video.api?.stopLoad();
    onKeyRefused(code);
  };
  whenReady(video, (hls) => {
    hls.on(Hls.Events.ERROR, (_, data) => {
      const status = data.response?.code ?? data.networkDetails?.status;
      const refusedRequest = data.details === Hls.ErrorDetails.KEY_LOAD_ERROR
        || data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR || data.details === Hls.ErrorDetails.LEVEL_LOAD_ERROR;
      if (refusedRequest && status >= 400 && status < 500) {
        refuse(problemCode(data.networkDetails) || (status === 401 ? "token_invalid" : status === 403 ? "not_entitled" : `http_${status}`));
      } else if (data.fatal) {
        refuse(data.type === Hls.ErrorTypes.NETWORK_ERROR ? "network_error" : "media_error");
      }
    });
  });
  // the picture's own shape: portrait episodes are shown portrait, not letterboxed into 16:9
  video.addEventListener("loadedmetadata", () => {
    const { videoWidth: width, videoHeight: height } = video;
    if (width && height) {
      holder.style.setProperty("--aspect", `${width} / ${height}`);
      holder.classList.toggle("portrait", height > width);
    }
  });
  video.addEventListener("timeupdate", () => {
    const now = video.currentTime;
    if (Math.abs(now - lastReport) >= progressEveryS) { lastReport = now; onProgress(now); }
  });
  video.addEventListener("pause", () => { if (!refused && video.currentTime > 0) onProgress(video.currentTime); });
  video.addEventListener("ended", () => onEnded());
  const endSession = () => tokens?.end();
  window.addEventListener("pagehide", endSession);
  // Without MSE (iOS Safari before 17.1) the browser's own HLS player runs: nothing can rewrite its
  // requests, so after a refresh it is given the master playlist again with the new token, where it is
  // (a moment of rebuffering every few minutes instead of a refusal once the first token expires).
  tokens?.subscribe(() => {
    if (video.api || destroyed || refused || !video.nativeEl?.src) return;
    const at = video.currentTime, wasPaused = video.paused;
    video.nativeEl.src = tokens.withToken(src);
    video.nativeEl.addEventListener("loadedmetadata", () => {
      video.currentTime = at;
      if (!wasPaused) video.play?.();
    }, { once: true });
  });

  return {
    seek(seconds) { video.currentTime = seconds; },
    currentTime() { return video.currentTime || 0; },
    destroy() {
      destroyed = true;
      window.removeEventListener("pagehide", endSession);
      endSession();
      video.removeAttribute("src");      // hls-video-element destroys its Hls instance and detaches
      holder.remove();
    },
  };
}

/** hls-video-element makes its Hls instance (`.api`) a moment after `src` is set. */
function whenReady(video, then) {
  let tries = 0;
  const look = () => {
    if (video.api) return then(video.api);
    if (++tries < 200) setTimeout(look, 10);
  };
  look();
}

/** The problem+json `code` of a refused request, from hls.js's XHR (its body is an ArrayBuffer). */
function problemCode(xhr) {
  try {
    const body = xhr?.response;
    const text = typeof body === "string" ? body : new TextDecoder().decode(body);
    return JSON.parse(text).code || null;
  } catch {
    return null;
  }
}
