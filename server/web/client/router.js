// The single-page routing the web app and the creator studio share: one view per path drawn into <main>,
// the new page's heading focused after each client-side navigation (a screen reader hears the new page,
// as after a page load), and links inside the app followed without a reload.
import { html, render } from "lit-html";
import { describe } from "./messages.js";

/**
 * Start routing. `routes` is [[pattern, async () => view]]; a view is `async (context) => ({leave()} | null)`.
 * `home` is [path, label] for the "back" link of error pages; `site` ends every document title.
 * Returns {route, navigate, announce}.
 */
export function startRouter(routes, { home = ["/", "Back to the storefront"], site = "Premium series" } = {}) {
  const main = document.getElementById("main");
  main.replaceChildren();          // the shell's "Loading…": lit-html draws beside what a container holds
  let current = null;              // the view on screen: {leave()} when it has something to stop
  const homeLink = () => html`<p><a href=${home[0]}>${home[1]}</a></p>`;

  function context(params) {
    return {
      params: params.map(decodeURIComponent),
      query: new URLSearchParams(location.search),
      show(template) { render(template, main); },
      title(text) { document.title = `${text} · ${site}`; },
      navigate,
      announce,
    };
  }

  let routing = 0;                 // the latest route(): a view an earlier one was still loading is left at once

  async function route() {
    const mine = ++routing;
    current?.leave?.();
    current = null;
    for (const [pattern, load] of routes) {
      const match = location.pathname.match(pattern);
      if (!match) continue;
      try {
        const view = await load();
        const shown = await view(context(match.slice(1)));
        // a sign-in during the page's first load routes again: the stale view must not keep a player
        // (it would be a second playback session of the viewer's)
        if (mine !== routing) return shown?.leave?.();
        current = shown;
      } catch (error) {
        render(html`<section class="notice" role="alert"><h1 tabindex="-1">Something went wrong</h1>
          <p>${error.code ? describe(error) : String(error.message || error)}</p>${homeLink()}</section>`, main);
      }
      focusHeading();
      return;
    }
    render(html`<section class="notice"><h1 tabindex="-1">Page not found</h1>${homeLink()}</section>`, main);
    focusHeading();
  }

  function focusHeading() {
    const heading = main.querySelector("h1");
    if (heading && document.activeElement?.closest?.("#site-header") == null) heading.focus({ preventScroll: true });
  }

  function navigate(path, { replace = false } = {}) {
    history[replace ? "replaceState" : "pushState"](null, "", path);
    window.scrollTo(0, 0);
    route();
  }

  function announce(text) {
    const region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    setTimeout(() => { region.textContent = text; }, 50);
  }

  // Links inside the app navigate without a reload; other links (and modified clicks) behave as links do.
  document.addEventListener("click", (event) => {
    const link = event.target.closest?.("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || link.target || link.hasAttribute("download")) return;
    if (!routes.some(([pattern]) => pattern.test(url.pathname))) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", route);
  return { route, navigate, announce };
}
