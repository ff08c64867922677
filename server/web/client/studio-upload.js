// One episode file sent with tus-js-client to /v1/uploads (tus 1.0, README: Resumable uploads): per-file
// progress, pause and resume, and an automatic resume after a network drop. The server keeps every byte
// that arrived, so resuming asks it where to go on (HEAD) and sends only the rest.
import { Upload } from "tus-js-client";
import { config } from "./config.js";
import { uploadRefusal } from "./studio-messages.js";

// A chunk per request of the server's S3 part size (SERIES_UPLOAD_PART_BYTES, in the page's configuration):
// every request but the last ends on a part boundary, and a drop costs at most one chunk's progress.
const CHUNK_BYTES = config.upload_chunk_bytes || 8 * 1024 * 1024;
// tus-js-client retries a failed request after these delays (a lost connection, a 5xx, a 409/423 while
// another request lets go); past the last, we go on when the browser says the network is back, or every
// OFFLINE_RETRY_MS in case it never says so.
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000, 30000];
const OFFLINE_RETRY_MS = 5000;
const RETRIED_STATUSES = new Set([0, 409, 423, 429, 500, 502, 503, 504]);

let sequence = 0;

/** A new episode id for an upload: short, unique enough within a series, and valid as an id. */
export function newEpisodeId() {
  sequence += 1;
  return `ep-${Date.now().toString(36)}${sequence.toString(36)}${Math.random().toString(36).slice(2, 5)}`;
}

/** The title an episode gets from its file name: "my_first-cut.mp4" -> "my first cut". */
export function titleFromFile(name) {
  const title = name.replace(/\.[^.]+$/, "").replace(/[_-]+/g, " ").replace(/\s+/g, " ").trim();
  return (title || "New episode").slice(0, 200);
}

/**
 * An upload of `file` as episode `episodeId` of `seriesId`, reported through `onChange(upload)`:
 * state is "uploading" | "paused" | "offline" | "done" | "failed"; sentBytes/totalBytes; message (why
 * it failed or waits); jobId once the last byte arrived. `onCreated(upload)` when the server has created
 * the upload (and with it the episode, status "uploading").
 */
export class EpisodeUpload {
  constructor(file, { seriesId, episodeId, title, token, onChange, onCreated = () => {} }) {
    this.file = file;
    this.episodeId = episodeId;
    this.title = title;
    this.state = "uploading";
    this.sentBytes = 0;
    this.totalBytes = file.size;
    this.message = "";
    this.jobId = null;
    this._onChange = onChange;
    this._retryTimer = null;
    this._onOnline = () => { if (this.state === "offline") this._start(); };
    window.addEventListener("online", this._onOnline);
    this._tus = new Upload(file, {
      endpoint: "/v1/uploads",
      headers: { Authorization: `Bearer ${token}` },
      metadata: { series: seriesId, episode: episodeId, title, filename: file.name, filetype: file.type || "video/mp4" },
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS_MS,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        this.sentBytes = sent;
        this.totalBytes = total;
        if (this.state === "offline") [this.state, this.message] = ["uploading", ""];
        this._changed();
      },
      onShouldRetry: (error) => {
        const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
        if (status === 0 && this.state === "uploading") {
          // the connection went: say so now, not after the last retry
          [this.state, this.message] = ["offline", uploadRefusal(null)];
          this._changed();
        }
        return RETRIED_STATUSES.has(status);
      },
      onAfterResponse: (request, response) => {
        const jobId = response.getHeader("Series-Job-Id");
        if (jobId) this.jobId = jobId;
        if (request.getMethod() === "POST" && response.getStatus() === 201) onCreated(this);   // its episode exists now
      },
      onSuccess: () => { this._finish("done", ""); },
      onError: (error) => { this._failed(error); },
    });
  }

  get percent() {
    return this.totalBytes ? Math.floor((this.sentBytes / this.totalBytes) * 100) : 0;
  }

  get isActive() {
    return this.state === "uploading" || this.state === "offline";
  }

  /** Start, or resume an upload of the same file this browser began before (a reload, a closed tab). */
  async start() {
    try {
      const previous = await this._tus.findPreviousUploads();
      if (previous.length) this._tus.resumeFromPreviousUpload(previous[0]);
    } catch {
      // nothing remembered (private browsing, storage full): start afresh
    }
    this._start();
  }

  pause() {
    if (!this.isActive) return;
    clearTimeout(this._retryTimer);
    this.state = "paused";
    this._tus.abort();          // keeps the upload on the server; resume() asks where to go on
    this._changed();
  }

  resume() {
    if (this.state === "paused" || this.state === "offline" || this.state === "failed") this._start();
  }

  /** Stop and delete the upload on the server (its parts, and the episode it created). */
  async cancel() {
    clearTimeout(this._retryTimer);
    window.removeEventListener("online", this._onOnline);
    await this._tus.abort(true).catch(() => {});
    this._finish("cancelled", "");
  }

  _start() {
    clearTimeout(this._retryTimer);
    this.state = "uploading";
    this.message = "";
    this._changed();
    this._tus.start();
  }

  _failed(error) {
    if (!error.originalResponse || error.originalResponse.getStatus() === 0) {
      // the network went away mid-request: wait for it, then resume from the server's offset
      this.state = "offline";
      this.message = uploadRefusal(null);
      this._retryTimer = setTimeout(() => { if (this.state === "offline") this._start(); }, OFFLINE_RETRY_MS);
      this._changed();
      return;
    }
    this._finish("failed", uploadRefusal(error));
  }

  _finish(state, message) {
    window.removeEventListener("online", this._onOnline);
    this.state = state;
    this.message = message;
    this._changed();
  }

  _changed() {
    this._onChange(this);
  }
}
