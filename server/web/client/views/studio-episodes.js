// A series' episodes in the studio: each one's place, title, where its upload stands (checking the file,
// transcoding with its percent, packaging, publishing, published) or why it was rejected, in plain words;
// and moving (buttons, or Alt+Up/Down on the row), renaming, unpublishing and deleting it.
import { html, nothing } from "lit-html";
import { repeat } from "lit-html/directives/repeat.js";
import { clock } from "../format.js";
import { STAGES, episodeStage } from "../studio-messages.js";
import { badge } from "./common.js";

const STEP_ORDER = STAGES.map(([key]) => key);

/**
 * The list. `ui` holds what the creator is doing ({editing, confirming}: episode ids); `act(action, episode,
 * value?)` performs "up" | "down" | "rename" | "edit" | "cancel" | "unpublish" | "publish" | "preview" |
 * "ask-delete" | "delete".
 */
export function episodeList(episodes, ui, act) {
  if (!episodes.length) return html`<p class="notice">No episodes yet: upload the first one above.</p>`;
  const last = episodes.length;
  return html`
    <p id="reorder-help" class="help">Move an episode with its arrow buttons, or with Alt+Up and Alt+Down while its row has focus.</p>
    <ol class="studio-episodes" aria-describedby="reorder-help">
      ${repeat(episodes, (episode) => episode.episode_id, (episode) => row(episode, last, ui, act))}
    </ol>`;
}

function row(episode, last, ui, act) {
  const title = episode.title || `Episode ${episode.episode_id}`;
  const where = episodeStage(episode);
  const keys = (event) => {
    if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    event.preventDefault();
    act(event.key === "ArrowUp" ? "up" : "down", episode);
  };
  return html`
    <li class=${`studio-episode${where.failed ? " failed" : ""}`} data-episode=${episode.episode_id}
        data-stage=${where.stage} tabindex="0" @keydown=${keys}
        aria-label=${`${episode.position}. ${title}, ${where.label}`}>
      <span class="position" aria-hidden="true">${episode.position}</span>
      <div class="episode-body">
        ${ui.editing === episode.episode_id ? renameForm(episode, title, act) : html`
          <p class="episode-title">${title}
            ${episode.is_free_preview ? badge("Free preview", "free") : nothing}
            ${episode.status === "unpublished" ? badge("Unpublished", "locked") : nothing}
            ${episode.duration_s ? html`<span class="duration">${clock(episode.duration_s)}</span>` : nothing}</p>`}
        ${where.failed ? rejection(episode) : stages(where)}
      </div>
      <div class="episode-actions" role="group" aria-label=${`Actions for ${title}`}>
        <button type="button" class="icon" data-action="up" ?disabled=${episode.position === 1}
                aria-label=${`Move ${title} up`} @click=${() => act("up", episode)}>↑</button>
        <button type="button" class="icon" data-action="down" ?disabled=${episode.position === last}
                aria-label=${`Move ${title} down`} @click=${() => act("down", episode)}>↓</button>
        <button type="button" class="secondary" data-action="edit" @click=${() => act("edit", episode)}>Rename</button>
        ${where.stage === "published" ? html`
          <button type="button" class="secondary" data-action="preview" aria-pressed=${String(episode.is_free_preview)}
                  @click=${() => act("preview", episode)}>Free preview</button>
          <button type="button" class="secondary" data-action=${episode.status === "unpublished" ? "publish" : "unpublish"}
                  @click=${() => act(episode.status === "unpublished" ? "publish" : "unpublish", episode)}>
            ${episode.status === "unpublished" ? "Publish" : "Unpublish"}</button>` : nothing}
        ${ui.confirming === episode.episode_id ? html`
          <span class="confirm" role="alert">Delete “${title}”? Viewers lose it at once.
            <button type="button" class="danger" data-action="delete" @click=${() => act("delete", episode)}>Delete for good</button>
            <button type="button" class="secondary" data-action="keep" @click=${() => act("cancel", episode)}>Keep it</button></span>`
          : html`<button type="button" class="secondary danger-text" data-action="ask-delete" @click=${() => act("ask-delete", episode)}>Delete</button>`}
      </div>
    </li>`;
}

function renameForm(episode, title, act) {
  const submit = (event) => {
    event.preventDefault();
    act("rename", episode, new FormData(event.target).get("title").trim());
  };
  return html`
    <form class="rename" @submit=${submit} @keydown=${(e) => { if (e.key === "Escape") act("cancel", episode); }}>
      <label for=${`title-${episode.episode_id}`} class="visually-hidden">Title of episode ${episode.position}</label>
      <input id=${`title-${episode.episode_id}`} name="title" required maxlength="200" .value=${title} autofocus>
      <button type="submit">Save</button>
      <button type="button" class="secondary" @click=${() => act("cancel", episode)}>Cancel</button>
    </form>`;
}

function stages(where) {
  if (where.stage === "published") return html`<p class="stage-label" role="status">${where.label}</p>`;
  const at = STEP_ORDER.indexOf(where.stage);
  return html`
    <ol class="stages" aria-label="Progress">
      ${STAGES.map(([key, name], index) => html`
        <li class=${index < at ? "done" : index === at ? "current" : ""}
            aria-current=${index === at ? "step" : "false"}>${key === "transcoding" && index === at ? `${name} ${where.percent} %` : name}</li>`)}
    </ol>
    ${where.stage === "transcoding" ? html`<progress class="transcode-progress" max="100" .value=${where.percent}
        aria-label="Transcoding progress">${where.percent} %</progress>` : nothing}
    <p class="stage-label" role="status">${where.label}</p>`;
}

function rejection(episode) {
  const error = episode.error || {};
  return html`
    <div class="rejection" role="alert">
      <p><strong>This upload was rejected.</strong> ${error.reasons?.length ? "" : error.message || ""}</p>
      ${error.reasons?.length ? html`<ul class="reasons">${error.reasons.map((reason) => html`
        <li><span>${reason.message}</span>${reason.how_to_fix ? html` <span class="advice">To fix it: ${reason.how_to_fix}.</span>` : nothing}</li>`)}</ul>` : nothing}
      <p class="help">Upload a corrected file as a new episode, and delete this one.</p>
    </div>`;
}
