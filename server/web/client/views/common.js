// Pieces several views draw.
import { html, nothing } from "lit-html";

/** A poster when the catalog has one (poster_url, null until posters are served), else a lettered tile. */
export function poster(url, title, { portrait = false } = {}) {
  if (url) return html`<img class="poster" src=${url} alt="" loading="lazy" decoding="async">`;
  const letter = (title || "?").trim().charAt(0).toUpperCase();
  return html`<div class=${`poster placeholder${portrait ? " portrait" : ""}`} aria-hidden="true"><span>${letter}</span></div>`;
}

export function loading(text) {
  return html`<p class="loading" role="status">${text}</p>`;
}

export function badge(text, kind = "") {
  return text ? html`<span class=${`badge ${kind}`}>${text}</span>` : nothing;
}
