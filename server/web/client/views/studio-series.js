// One series in the studio: its details (title, description, price, sale status, the poster's place),
// episode uploads with a progress bar each, the episodes as their jobs move through their stages (live:
// polled while anything moves), and the series' sales and refunds.
import { html, nothing } from "lit-html";
import { api } from "../api.js";
import { config } from "../config.js";
import { bytes, date, plural, price, spoken } from "../format.js";
import { describe } from "../messages.js";
import { EpisodeUpload, newEpisodeId, titleFromFile } from "../studio-upload.js";
import { episodeList } from "./studio-episodes.js";
import { currencyOptions, priceCents } from "./studio-home.js";
import { badge, loading } from "./common.js";

const POLL_MS = 1000;            // while an upload or a job moves: the stages change every few seconds
const SETTLED = new Set(["ready", "unpublished", "errored"]);
const SALE_KINDS = { sale: "Sale", refund: "Refund", charge_back: "Charge-back", refused: "Refused payment" };

export async function studioSeries(view, creator) {
  const [seriesId] = view.params;
  view.title("Series");
  if (!creator.isSignedIn) {
    view.show(html`<section class="notice"><h1 tabindex="-1">Sign in to manage this series</h1>
      <p>Use the creator sign-in at the top of the page.</p></section>`);
    return null;
  }
  view.show(loading("Loading the series…"));
  const path = `/v1/series/${encodeURIComponent(seriesId)}`;
  const call = (url, options = {}) => api(url, { ...options, session: creator });
  let series = await call(path);
  let sales = null, salesError = "";
  let detailsNotice = "", detailsKind = "", saving = false, episodesNotice = "", liveError = "", pickError = "";
  const rules = config.episode_rules || {};
  const uploads = [];
  const ui = { editing: null, confirming: null };
  let timer = null, left = false;

  const draw = () => {
    if (left) return;
    view.title(`${series.title} · Studio`);
    view.show(html`
      <article class="studio-series" aria-labelledby="series-title">
        <p class="crumbs"><a href="/studio">Your studio</a></p>
        <h1 id="series-title" tabindex="-1">${series.title}</h1>
        <p class="meta">${badge(series.status, series.status === "published" ? "owned" : "")}
          <span>${plural(series.episode_count, "episode")} on sale</span>
          <span class="price">${price(series.price_cents, series.currency)}</span>
          ${series.status === "published" ? html`<a href=${`/series/${encodeURIComponent(seriesId)}`}>See it as viewers do</a>` : nothing}</p>
        ${uploadPanel()}
        <section class="panel" aria-labelledby="episodes-title">
          <h2 id="episodes-title">Episodes</h2>
          <p class="notice" role="status" aria-live="polite">${episodesNotice}</p>
          <p class="notice error live-error">${liveError}</p>
          ${episodeList(series.episodes, ui, act)}
        </section>
        <div class="studio-grid">
          ${detailsPanel()}
          ${salesPanel()}
        </div>
      </article>`);
  };

  const detailsPanel = () => html`
    <section class="panel" aria-labelledby="details-title">
      <h2 id="details-title">Details</h2>
      <form class="series-form" @submit=${saveDetails}>
        <div class="field"><label for="edit-title">Title</label>
          <input id="edit-title" name="title" required maxlength="200" .value=${series.title}></div>
        <div class="field"><label for="edit-description">Description</label>
          <textarea id="edit-description" name="description" maxlength="5000" rows="3" .value=${series.description || ""}></textarea></div>
        <div class="field price-field"><label for="edit-price">Price</label>
          <input id="edit-price" name="price" type="number" inputmode="decimal" min="1" max="190" step="0.01" required
                 aria-describedby="edit-price-help" .value=${(series.price_cents / 100).toFixed(2)}>
          <label for="edit-currency" class="visually-hidden">Currency</label>
          <select id="edit-currency" name="currency">${currencyOptions(series.currency)}</select>
          <p id="edit-price-help" class="help">From 1 to 190. A new price applies to purchases from now on.</p></div>
        <div class="field"><label><input id="edit-watermark" name="watermark" type="checkbox"
                 aria-describedby="edit-watermark-help" .checked=${Boolean(series.watermark)}> Forensic watermark</label>
          <p id="edit-watermark-help" class="help">Each viewer gets an invisibly marked copy, so a leaked copy names
            the buyer who leaked it. Applies to episodes uploaded from now on; about twice the storage.</p></div>
        <section class="poster-slot" aria-labelledby="poster-title">
          <h3 id="poster-title">Poster</h3>
          <p class="help">Posters arrive with the pictures API; until then viewers see a lettered tile.</p>
        </section>
        <div class="form-actions">
          <button type="submit" ?disabled=${saving}>Save details</button>
          ${series.status === "published"
            ? html`<button type="button" class="secondary" @click=${() => setStatus("unpublish")}>Stop selling</button>`
            : series.status !== "archived" ? html`<button type="button" class="secondary" @click=${() => setStatus("publish")}>Put on sale</button>` : nothing}
        </div>
        <p class=${`notice ${detailsKind}`} role="status">${detailsNotice}</p>
      </form>
    </section>`;

  const uploadPanel = () => html`
    <section class="panel" aria-labelledby="upload-title">
      <h2 id="upload-title">Upload episodes</h2>
      <p class="help" id="upload-help">Video files (MP4, MOV, MKV, WebM) of ${spoken(rules.min_duration_s || 30)} to
        ${spoken(rules.max_duration_s || 1200)}, up to ${bytes(rules.max_upload_bytes || 8 * 1024 ** 3)}. Each becomes a new
        episode at the end of the list. Uploads survive a lost connection: they go on where they stopped.</p>
      <p class="notice error" role="alert">${pickError}</p>
      <label class="file-pick"><span class="button">Choose video files</span>
        <input id="episode-files" type="file" accept="video/*" multiple aria-describedby="upload-help"
               class="visually-hidden" @change=${pickFiles}></label>
      ${uploads.length ? html`<ul class="uploads">${uploads.map(uploadRow)}</ul>` : nothing}
    </section>`;

  const uploadRow = (upload) => html`
    <li class="upload" data-state=${upload.state} data-episode=${upload.episodeId}>
      <p class="upload-name">${upload.title} <span class="help">${upload.file.name}</span></p>
      <progress max="100" .value=${upload.percent} aria-label=${`Upload of ${upload.file.name}`}>${upload.percent} %</progress>
      <p class="upload-status" role="status">${uploadStatus(upload)}</p>
      <div class="upload-actions">
        ${upload.isActive ? html`<button type="button" class="secondary" data-action="pause" @click=${() => upload.pause()}>Pause</button>` : nothing}
        ${upload.state === "paused" || upload.state === "failed" ? html`<button type="button" class="secondary" data-action="resume" @click=${() => upload.resume()}>Resume</button>` : nothing}
        ${upload.state !== "done" && upload.state !== "cancelled" ? html`<button type="button" class="secondary danger-text" data-action="cancel" @click=${() => cancelUpload(upload)}>Cancel</button>` : nothing}
      </div>
      ${upload.message ? html`<p class=${`notice ${upload.state === "failed" ? "error" : ""}`} role="alert">${upload.message}</p>` : nothing}
    </li>`;

  const uploadStatus = (upload) => {
    const sent = `${upload.percent} % · ${bytes(upload.sentBytes)} of ${bytes(upload.totalBytes)}`;
    switch (upload.state) {
      case "uploading": return `Uploading: ${sent}`;
      case "paused": return `Paused at ${sent}`;
      case "offline": return `Waiting for the network: ${sent}`;
      case "done": return "Uploaded: its processing shows in the episode list.";
      case "cancelled": return "Cancelled.";
      default: return `Stopped at ${sent}`;
    }
  };

  const salesPanel = () => html`
    <section class="panel sales" aria-labelledby="sales-title">
      <h2 id="sales-title">Sales and refunds</h2>
      ${salesError ? html`<p class="notice error" role="alert">${salesError}</p>` : !sales ? loading("Loading sales…") : html`
        <p class="meta"><span><strong>${sales.buyers}</strong> ${sales.buyers === 1 ? "buyer" : "buyers"} now</span>
          ${sales.comps ? html`<span>${plural(sales.comps, "complimentary viewer")}</span>` : nothing}
          ${sales.refused_payments ? html`<span>${plural(sales.refused_payments, "payment")} that granted nothing</span>` : nothing}</p>
        ${sales.totals.length === 0 ? html`<p class="notice">No sales yet.</p>` : html`
        <table class="sales-totals">
          <caption class="visually-hidden">Totals per currency</caption>
          <thead><tr><th scope="col">Currency</th><th scope="col">Sales</th><th scope="col">Refunds</th><th scope="col">Charge-backs</th><th scope="col">Net</th></tr></thead>
          <tbody>${sales.totals.map((t) => html`<tr>
            <th scope="row">${t.currency}</th>
            <td>${t.sales} · ${price(t.gross_cents, t.currency)}</td>
            <td>${t.refunds} · ${price(t.refunded_cents, t.currency)}</td>
            <td>${t.charge_backs} · ${price(t.charged_back_cents, t.currency)}</td>
            <td><strong>${price(t.net_cents, t.currency)}</strong></td></tr>`)}</tbody>
        </table>`}
        ${sales.recent.length ? html`<h3>Latest</h3><ul class="sales-recent">${sales.recent.map((e) => html`
          <li><span>${date(e.at)}</span> <span>${SALE_KINDS[e.kind] || e.kind}</span> <span>${price(e.amount_cents, e.currency)}</span></li>`)}</ul>` : nothing}`}
      <button type="button" class="secondary" @click=${loadSales}>Refresh</button>
    </section>`;

  async function loadSales() {
    try {
      sales = await call(`${path}/sales`);
      salesError = "";
    } catch (error) {
      salesError = `The sales could not be loaded. ${describe(error)}`;
    }
    draw();
  }

  async function saveDetails(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const cents = priceCents(form.get("price"));
    if (cents === null) {
      [detailsNotice, detailsKind] = ["The price must be between 1 and 190.", "error"];
      return draw();
    }
    saving = true;
    draw();
    try {
      series = { ...series, ...(await call(path, { method: "PATCH", body: {
        title: form.get("title").trim(), description: form.get("description").trim(), price_cents: cents,
        currency: form.get("currency"), watermark: form.get("watermark") === "on" } })) };
      [detailsNotice, detailsKind] = ["Saved.", "success"];
    } catch (error) {
      [detailsNotice, detailsKind] = [describe(error), "error"];
    }
    saving = false;
    draw();
  }

  async function setStatus(verb) {
    try {
      series = { ...series, ...(await call(`${path}/${verb}`, { method: "POST" })) };
      [detailsNotice, detailsKind] = [verb === "publish" ? "On sale." : "No longer sold; buyers keep it.", "success"];
    } catch (error) {
      [detailsNotice, detailsKind] = [describe(error), "error"];
    }
    draw();
  }

  function pickFiles(event) {
    // a file over the size cap is refused here, before a byte is sent (the service refuses it too)
    const tooLarge = [...event.target.files].filter((file) => rules.max_upload_bytes && file.size > rules.max_upload_bytes);
    pickError = tooLarge.map((file) => `${file.name} is ${bytes(file.size)}; files may be at most ${bytes(rules.max_upload_bytes)}.`).join(" ");
    for (const file of event.target.files) {
      if (tooLarge.includes(file)) continue;
      const upload = new EpisodeUpload(file, { seriesId, episodeId: newEpisodeId(), title: titleFromFile(file.name),
        token: creator.token, onChange: () => { draw(); schedule(); }, onCreated: () => refresh() });
      uploads.push(upload);
      upload.start();
    }
    event.target.value = "";
    draw();
  }

  async function cancelUpload(upload) {
    await upload.cancel();
    uploads.splice(uploads.indexOf(upload), 1);
    await refresh();
  }

  const episodeUrl = (episode) => `${path}/episodes/${encodeURIComponent(episode.episode_id)}`;

  async function act(action, episode, value) {
    const title = episode.title || `Episode ${episode.episode_id}`;
    try {
      if (action === "edit" || action === "ask-delete") {
        ui.editing = action === "edit" ? episode.episode_id : null;
        ui.confirming = action === "ask-delete" ? episode.episode_id : null;
        draw();
        if (action === "edit") document.getElementById(`title-${episode.episode_id}`)?.focus();
        return;
      }
      if (action === "cancel") {
        ui.editing = ui.confirming = null;
        draw();
        return focusOn(episode.episode_id, "edit");
      }
      if (action === "up" || action === "down") {
        const position = episode.position + (action === "up" ? -1 : 1);
        if (position < 1 || position > series.episodes.length) return;
        await call(episodeUrl(episode), { method: "PATCH", body: { position } });
        episodesNotice = `Moved “${title}” to position ${position}.`;
      } else if (action === "rename") {
        await call(episodeUrl(episode), { method: "PATCH", body: { title: value } });
        ui.editing = null;
        episodesNotice = `Renamed to “${value}”.`;
      } else if (action === "preview") {
        await call(episodeUrl(episode), { method: "PATCH", body: { is_free_preview: !episode.is_free_preview } });
        episodesNotice = episode.is_free_preview ? `“${title}” is no longer a free preview.` : `“${title}” is a free preview now.`;
      } else if (action === "unpublish" || action === "publish") {
        await call(`${episodeUrl(episode)}/${action}`, { method: "POST" });
        episodesNotice = action === "unpublish" ? `“${title}” is hidden from viewers.` : `“${title}” is back for viewers.`;
      } else if (action === "delete") {
        await call(episodeUrl(episode), { method: "DELETE" });
        ui.confirming = null;
        episodesNotice = `Deleted “${title}”.`;
      }
    } catch (error) {
      episodesNotice = describe(error);
    }
    view.announce(episodesNotice);
    await refresh();
    if (action === "up" || action === "down") focusOn(episode.episode_id, action);
  }

  function focusOn(episodeId, action) {
    const row = document.querySelector(`.studio-episode[data-episode="${CSS.escape(episodeId)}"]`);
    const button = row?.querySelector(`[data-action="${action}"]:not([disabled])`);
    (button || row)?.focus();
  }

  async function refresh() {
    try {
      series = await call(path);
      liveError = "";
    } catch (error) {
      // the list stays as it was; the next poll tries again
      liveError = `The episodes could not be brought up to date. ${describe(error)}`;
    }
    // an upload whose episode is processing is shown by its episode from now on
    for (const upload of [...uploads]) {
      const episode = series.episodes.find((e) => e.episode_id === upload.episodeId);
      if (upload.state === "done" && episode && episode.status !== "uploading") uploads.splice(uploads.indexOf(upload), 1);
    }
    draw();
  }

  const moving = () => uploads.some((u) => u.isActive || u.state === "done")
    || series.episodes.some((e) => !SETTLED.has(e.status) && (e.processing?.job_id || uploads.some((u) => u.episodeId === e.episode_id)));

  function schedule() {
    if (timer || left || !moving()) return;
    timer = setTimeout(async () => {
      timer = null;
      await refresh();
      schedule();
    }, POLL_MS);
  }

  // closing or reloading the tab mid-upload asks first (choosing the same file again would resume it)
  const guard = (event) => {
    if (!uploads.some((upload) => upload.isActive)) return;
    event.preventDefault();
    event.returnValue = "";
  };
  window.addEventListener("beforeunload", guard);

  draw();
  loadSales();
  schedule();
  return {
    leave() {
      // leaving the page within the studio pauses its uploads; the same files chosen again resume them
      left = true;
      clearTimeout(timer);
      window.removeEventListener("beforeunload", guard);
      for (const upload of uploads) if (upload.isActive) upload.pause();
    },
  };
}
